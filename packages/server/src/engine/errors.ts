/** Why an engine call failed; the server maps each code to an HTTP status. */
export type EngineErrorCode =
  | 'INVALID_BUNDLE'
  | 'PROVIDER_UNAVAILABLE'
  | 'MODEL_NOT_READY'
  | 'INVALID_INPUT'
  | 'CANCELLED'
  | 'INFERENCE_FAILED'
  /** Start-up only: weights + worst-case KV cache exceed the configured memory budget (memory.ts). */
  | 'MEMORY_BUDGET_EXCEEDED';

const CODES: ReadonlySet<string> = new Set<EngineErrorCode>([
  'INVALID_BUNDLE',
  'PROVIDER_UNAVAILABLE',
  'MODEL_NOT_READY',
  'INVALID_INPUT',
  'CANCELLED',
  'INFERENCE_FAILED',
  'MEMORY_BUDGET_EXCEEDED',
]);

export class EngineError extends Error {
  override readonly name = 'EngineError';

  constructor(
    readonly code: EngineErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The plain shape an error takes to cross the worker boundary. */
export interface SerializedEngineError {
  readonly code: EngineErrorCode;
  readonly message: string;
}

export function serializeError(
  error: unknown,
  fallback: EngineErrorCode = 'INFERENCE_FAILED',
): SerializedEngineError {
  if (error instanceof EngineError) return { code: error.code, message: error.message };
  const message = error instanceof Error ? error.message : String(error);
  return { code: fallback, message };
}

export function deserializeError(error: SerializedEngineError): EngineError {
  const code = CODES.has(error.code) ? error.code : 'INFERENCE_FAILED';
  return new EngineError(code, error.message);
}
