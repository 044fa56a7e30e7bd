export { createClient, MagmaClient } from './client.js';
export { Jobs } from './jobs/jobs.js';
export type { CreateBatchOptions } from './jobs/jobs.js';
export { BatchHandle } from './jobs/batch-handle.js';
export type { ResultsOptions, WaitOptions } from './jobs/batch-handle.js';
export type { ClientOptions, RequestOptions, RetryOptions, RetryEvent } from './options.js';
export type { LogLevel, Logger } from './logger.js';
export type { AskInput } from './prepare-ask.js';
export type { ImageSource } from './image-source.js';
export type { Box, MarkInput } from './marks.js';
export {
  MagmaError,
  APIError,
  BadRequestError,
  PermissionDeniedError,
  ConflictError,
  UnprocessableEntityError,
  IdempotencyKeyReusedError,
  InvalidInputError,
  InvalidImageError,
  InvalidMarksError,
  PayloadTooLargeError,
  AuthenticationError,
  NotFoundError,
  ImageNotFoundError,
  MethodNotAllowedError,
  UnsupportedMediaTypeError,
  UriTooLongError,
  HeadersTooLargeError,
  RequestTimeoutError,
  RateLimitError,
  OverloadedError,
  ModelNotReadyError,
  DeadlineExceededError,
  CancelledError,
  InferenceFailedError,
  InternalServerError,
  APIConnectionError,
  APITimeoutError,
  APIUserAbortError,
  ClientClosedError,
} from './errors.js';
export type { APIErrorInit, ClientErrorCode, HttpErrorCode, MagmaErrorInit } from './errors.js';
// The contract's types, so users need only this package.
export type {
  AskResponse,
  AskStreamEvent,
  BatchItemResult,
  BatchResultsPage,
  BatchState,
  BatchStatus,
  ErrorCode,
  ErrorIssue,
  FinishReason,
  ImageUploadResponse,
  GenerationOptionsInput,
  Health,
  Mark,
  MarkReference,
  MarkStyle,
  MarkedImage,
  Readiness,
  ServerInfo,
  Timings,
  Usage,
} from './contract/types.js';
