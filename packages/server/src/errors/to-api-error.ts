import { EngineError } from '../engine/errors.js';
import type { EngineErrorCode } from '../engine/errors.js';
import { ImageError } from '../images/index.js';
import { ApiError, issuesFrom } from './api-error.js';
import type { ErrorCode } from '@magma-som/schemas';

const ENGINE_CODES: Record<EngineErrorCode, ErrorCode> = {
  CANCELLED: 'CANCELLED',
  INFERENCE_FAILED: 'INFERENCE_FAILED',
  MODEL_NOT_READY: 'MODEL_NOT_READY',
  INVALID_INPUT: 'INVALID_INPUT',
  // Start-up faults; a request only sees them if the engine is broken, which is the server's fault.
  INVALID_BUNDLE: 'INTERNAL',
  PROVIDER_UNAVAILABLE: 'INTERNAL',
  MEMORY_BUDGET_EXCEEDED: 'INTERNAL',
};

// Inference failures may carry onnxruntime internals; clients get a fixed text, logs the real one.
const SAFE_ENGINE_MESSAGES: Partial<Record<ErrorCode, string>> = {
  INFERENCE_FAILED: 'the model failed while answering; the engine restarts itself',
  INTERNAL: 'the model is not available',
};

/**
 * Turns anything thrown while serving a request into an ApiError. Unknown errors become
 * INTERNAL with a fixed message: their text may hold paths or internals, so it is only logged.
 */
export function toApiError(error: unknown): ApiError {
  if (error instanceof ApiError) return error;
  if (error instanceof ImageError)
    return new ApiError(error.code, error.message, {}, { cause: error });
  if (error instanceof EngineError) {
    const code = ENGINE_CODES[error.code];
    const message = SAFE_ENGINE_MESSAGES[code] ?? error.message;
    return new ApiError(code, message, {}, { cause: error });
  }
  if (hasIssues(error)) {
    // An image string over the contract's length is an oversized image: 413 like one just
    // over the server's byte limit, not a schema error.
    if (error.issues.some(isImageTooBig)) {
      return new ApiError(
        'PAYLOAD_TOO_LARGE',
        'the image is larger than the JSON path accepts; use the binary upload (askUpload)',
        {},
        { cause: error },
      );
    }
    return new ApiError(
      'INVALID_INPUT',
      'the request does not match the schema',
      { issues: issuesFrom(error.issues) },
      { cause: error },
    );
  }
  return new ApiError('INTERNAL', 'internal server error', {}, { cause: error });
}

function hasIssues(error: unknown): error is { issues: unknown[] } {
  return (
    typeof error === 'object' &&
    error !== null &&
    Array.isArray((error as { issues?: unknown }).issues)
  );
}

function isImageTooBig(issue: unknown): boolean {
  const { code, path } = issue as { code?: unknown; path?: unknown };
  return code === 'too_big' && Array.isArray(path) && path.length === 1 && path[0] === 'image';
}
