import type { AskFields, AskResponse, ImageUploadResponse, ServerInfo } from '@magma-som/schemas';
import type { JobsApi } from '../jobs/jobs-api.js';

/**
 * The image of an ask: a base64 string (JSON path) or raw file bytes (upload path). `checked`:
 * the string passed the contract's ImageInputSchema, so its base64 is not checked again.
 */
export type AskImageSource =
  | { readonly kind: 'base64'; readonly value: string; readonly checked?: boolean }
  | { readonly kind: 'bytes'; readonly bytes: Uint8Array };

/** One ask as the pipeline takes it, whichever procedure it came through. */
export interface AskCall {
  readonly fields: AskFields;
  readonly image: AskImageSource;
  readonly requestId: string;
  /** Aborts when the client disconnects. */
  readonly signal: AbortSignal;
  /** The client sent options.maxTokens itself (an explicit value over the cap is refused). */
  readonly explicitMaxTokens?: boolean;
  /** Receives generated text as it appears (askStream). */
  readonly onToken?: (text: string) => void;
  /** The client's Idempotency-Key header: a retry with it reuses the first request's answer. */
  readonly idempotencyKey?: string | undefined;
  /** Who sent it (API key id or address): idempotency keys are per client. */
  readonly clientKey?: string | undefined;
}

/** Structured log lines, pino style; every line carries the request id. */
export interface RequestLog {
  info(details: object, message: string): void;
  warn(details: object, message: string): void;
  error(details: object, message: string): void;
}

/** What procedures call; implemented by the server, typed with schema types only. */
export interface ServerServices {
  ask(call: AskCall): Promise<AskResponse>;
  /** Stores an image for asks by id (`image: "img_..."`). */
  uploadImage(bytes: Uint8Array): Promise<ImageUploadResponse>;
  info(): ServerInfo;
  /** Batch jobs (JOBS_NOT_ENABLED without Redis). */
  readonly jobs: JobsApi;
  /** Counts a finished procedure call for /metrics. */
  recordCall(procedure: string, outcome: string, durationMs: number): void;
}

/**
 * The tRPC context: plain data, no Fastify, sharp or onnxruntime types, so the router type can
 * be published with the SDK without pulling the server's dependencies along.
 */
export interface RequestContext {
  readonly requestId: string;
  /** Aborts when the client disconnects before the response is sent. */
  readonly signal: AbortSignal;
  /** Who the rate limit and logs attribute the request to: an API key id or the address. */
  readonly clientKey: string;
  /** The Idempotency-Key header, if sent. */
  readonly idempotencyKey?: string | undefined;
  readonly ip: string;
  readonly log: RequestLog;
  readonly services: ServerServices;
}
