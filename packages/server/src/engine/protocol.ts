import type { SerializedEngineError } from './errors.js';
import type { PrefixCacheChange } from './prefix-cache.js';
import type { SchedulerRequest } from './sequence.js';
import type { EngineOptions, GenerateResult, ModelInfo } from './types.js';

// Messages between the Engine (main thread) and its worker.

/** The options the worker needs, as plain data (workerData). */
export type WorkerOptions = Omit<EngineOptions, 'onRestart'>;

export type ToWorker =
  | { readonly type: 'generate'; readonly request: SchedulerRequest }
  | { readonly type: 'cancel'; readonly id: number }
  | { readonly type: 'close' }
  /** Test hook: throw an uncaught error in the worker (a crash that can be caused on purpose). */
  | { readonly type: 'crash' };

export type FromWorker =
  | { readonly type: 'ready'; readonly info: ModelInfo }
  | { readonly type: 'startup-error'; readonly error: SerializedEngineError }
  | { readonly type: 'token'; readonly id: number; readonly text: string }
  | { readonly type: 'result'; readonly id: number; readonly result: GenerateResult }
  | { readonly type: 'error'; readonly id: number; readonly error: SerializedEngineError }
  /** A request sent without pixels found its cached prefix evicted: the engine resends it with them. */
  | { readonly type: 'prefix-miss'; readonly id: number }
  | { readonly type: 'prefix-cache'; readonly change: PrefixCacheChange }
  | { readonly type: 'closed' };
