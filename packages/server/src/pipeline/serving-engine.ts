import type { GenerateRequest, GenerateResult, ModelInfo } from '../engine/types.js';

/** The part of the engine the server uses; `Engine` from src/engine satisfies it. */
export interface ServingEngine {
  readonly info: ModelInfo;
  generate(request: GenerateRequest): Promise<GenerateResult>;
  /** One short real inference, run once before the server reports ready. */
  warmup(): Promise<void>;
  close(): Promise<void>;
}
