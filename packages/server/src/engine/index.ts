export { Engine } from './engine.js';
export { EngineError } from './errors.js';
export type { EngineErrorCode } from './errors.js';
export type {
  CachedGenerateRequest,
  EngineOptions,
  ExecutionProviderName,
  FinishReason,
  GenerateRequest,
  GenerateResult,
  ModelImage,
  ModelInfo,
  PrefillPolicy,
} from './types.js';
export type { PrefixCacheStats } from './prefix-cache.js';
export { loadBundle } from './bundle.js';
export type { Bundle, ModelConfig } from './bundle.js';
export { MAGMA_SYSTEM_PROMPT, PromptTokenizer } from './prompt.js';
export {
  isProcessedImage,
  preprocessImage,
  selectCropGrid,
  stitchImageFeatures,
  visualTokenCount,
} from './image-processor.js';
export type { CropGrid, ProcessedImage, ProcessorSettings } from './image-processor.js';
// Lower-level pieces, for parity tests and tools that drive the graphs without the worker.
export { MagmaModel } from './magma-model.js';
export { openModel } from './model-sessions.js';
export type { ModelSessions } from './model-sessions.js';
