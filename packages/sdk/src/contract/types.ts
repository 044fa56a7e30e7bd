// The contract's types as plain TypeScript, so the SDK's published declarations need neither
// zod nor @magma-som/schemas (a user installs the SDK alone). They mirror the schemas'
// inferred types; test/contract-types.test.ts fails to type-check when the two differ.

/** Image formats the server decodes (GIF: first frame). */
export type ImageMediaType = 'image/png' | 'image/jpeg' | 'image/webp' | 'image/gif';

/** Every error a client can receive. */
export type ErrorCode =
  | 'INVALID_INPUT'
  | 'INVALID_IMAGE'
  | 'INVALID_MARKS'
  | 'PAYLOAD_TOO_LARGE'
  | 'UNAUTHORIZED'
  | 'NOT_FOUND'
  | 'IMAGE_NOT_FOUND'
  | 'METHOD_NOT_ALLOWED'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'URI_TOO_LONG'
  | 'HEADERS_TOO_LARGE'
  | 'REQUEST_TIMEOUT'
  | 'RATE_LIMITED'
  | 'OVERLOADED'
  | 'MODEL_NOT_READY'
  | 'DEADLINE_EXCEEDED'
  | 'CANCELLED'
  | 'INFERENCE_FAILED'
  | 'INTERNAL'
  | 'JOBS_NOT_ENABLED'
  | 'IDEMPOTENCY_KEY_REUSED';

/** One problem with a request: where (`['marks', 1, 'x2']`) and what. */
export interface ErrorIssue {
  path: (string | number)[];
  message: string;
}

/** The body of an error, as the server sends it. */
export interface ErrorData {
  code: ErrorCode;
  message: string;
  httpStatus: number;
  retryable: boolean;
  requestId?: string | undefined;
  issues?: ErrorIssue[] | undefined;
  retryAfterMs?: number | undefined;
}

/** Optional per-mark drawing overrides. Magma was trained on red marks; change them knowingly. */
export interface MarkStyle {
  /** `#rrggbb`. */
  color?: string | undefined;
}

/** A numbered region: box corners in pixels of the submitted image, and the label drawn on it. */
export interface Mark {
  label: number;
  x1: number;
  y1: number;
  x2: number;
  y2: number;
  style?: MarkStyle | undefined;
}

/** How the answer is generated; every field has a server default. */
export interface GenerationOptionsInput {
  /** Default 128. */
  maxTokens?: number | undefined;
  /** 0 (default) = greedy. Above 0 samples; pass `seed` to make it reproducible. */
  temperature?: number | undefined;
  /** Nucleus sampling mass; used only when temperature > 0. Default 1. */
  topP?: number | undefined;
  seed?: number | undefined;
  /** Generation stops when the answer ends with one of these; the stop text is not returned. */
  stop?: string[] | undefined;
  /** Keep Magma's robot action tokens out of answers. Default true. */
  suppressActionTokens?: boolean | undefined;
}

/** Everything in an ask except the image. */
export interface AskFieldsInput {
  prompt: string;
  marks?: Mark[] | undefined;
  options?: GenerationOptionsInput | undefined;
  /** Return the image exactly as the model saw it (marks drawn). Default false. */
  returnMarkedImage?: boolean | undefined;
  /** Default 'png'. */
  markedImageFormat?: 'png' | 'jpeg' | undefined;
  /** How big labels and outlines are drawn: 'model' (default) or Magma's own rule, 'magma'. */
  markSizing?: 'model' | 'magma' | undefined;
  /** Use the server's prefix cache. Default true. */
  cache?: boolean | undefined;
}

/** An ask as it goes over the wire: the image as base64, a data URL or an upload's id. */
export interface AskRequestInput extends AskFieldsInput {
  image: string;
}

export type FinishReason = 'stop' | 'length' | 'cancelled';

/** A mark the answer names, as "Mark: N" (Magma's form) or "#N". */
export interface MarkReference {
  label: number;
  /** The text that named it, e.g. "Mark: 2" or "#2". */
  text: string;
  /** Character offset of `text` in the answer. */
  offset: number;
  /** The submitted mark with that label; absent when the answer names a label nobody drew. */
  mark?: Mark | undefined;
}

export interface Usage {
  /** Tokens fed to the model, image positions included. */
  promptTokens: number;
  /** Visual tokens of the image (part of promptTokens). */
  imageTokens: number;
  completionTokens: number;
  totalTokens: number;
  /** Prompt tokens taken from the prefix cache instead of being computed. */
  cachedTokens: number;
}

export interface Timings {
  queueMs: number;
  imageMs: number;
  preprocessMs: number;
  visionMs: number;
  prefillMs: number;
  decodeMs: number;
  totalMs: number;
}

export interface MarkedImage {
  format: 'png' | 'jpeg';
  /** Base64 of the encoded image. */
  data: string;
  width: number;
  height: number;
}

export interface AskResponse {
  requestId: string;
  answer: string;
  references: MarkReference[];
  finishReason: FinishReason;
  usage: Usage;
  timings: Timings;
  model: { id: string; revision: string };
  /** Crop grid the image was processed with (rows x cols). */
  grid: { rows: number; cols: number };
  markedImage?: MarkedImage | undefined;
}

/** Events of a streamed ask: text as it is generated, then the whole response. */
export type AskStreamEvent =
  { type: 'token'; text: string } | { type: 'done'; response: AskResponse };

/** What images.upload answers. */
export interface ImageUploadResponse {
  /** Send it as an ask's `image` instead of the bytes. */
  imageId: string;
  bytes: number;
  /** Kept at least this long after the upload and after each ask that uses it. */
  ttlSeconds: number;
}

/** GET /health: the process is alive. */
export interface Health {
  status: 'ok';
  version: string;
  uptimeMs: number;
}

export type ModelDtype = 'fp32' | 'fp16' | 'q4' | 'q8' | 'q4f16' | 'q8f16';

/** What the loaded model holds in memory. */
export interface ModelMemory {
  graphs: { graph: string; file: string; dtype: ModelDtype; bytes: number }[];
  weightBytes: number;
  kvBytesPerToken: number;
  kvElementBytes: number;
  maxBatchSize: number;
  maxContextTokens: number;
  worstCaseBytes: number;
}

/** GET /ready: ready once the model is loaded and warmed up. */
export interface Readiness {
  ready: boolean;
  modelLoaded: boolean;
  warm: boolean;
  shuttingDown: boolean;
  memory?: ModelMemory | undefined;
  /** Why not ready, when not. */
  reason?: string | undefined;
}

/** The `info` procedure: what the server runs and the limits in force. */
export interface ServerInfo {
  version: string;
  model: {
    id: string;
    revision: string;
    executionProvider: 'cpu' | 'cuda' | 'webgpu';
    dtype: ModelDtype;
    cropSize: number;
    maxCrops: number;
    memory?: ModelMemory | undefined;
  };
  ready: Readiness;
  queue: { depth: number; inFlight: number; capacity: number };
  limits: {
    maxImageBytes: number;
    maxUploadBytes: number;
    maxImagePixels: number;
    maxMarks: number;
    maxPromptChars: number;
    maxTokens: number;
    requestTimeoutMs: number;
  };
}

/**
 * queued: nothing answered yet; running: some items answered; completed: every item has a
 * result; cancelled: cancelled before it completed.
 */
export type BatchState = 'queued' | 'running' | 'completed' | 'cancelled';

export interface BatchCreateRequestInput {
  items: AskRequestInput[];
  idempotencyKey?: string | undefined;
}

export interface BatchStatus {
  batchId: string;
  state: BatchState;
  total: number;
  /** Items answered. */
  done: number;
  /** Items that failed with an error (after their retries). */
  failed: number;
  /** Items that were still waiting when the batch was cancelled. */
  cancelled: number;
  /** Items without a result yet. */
  pending: number;
  /** ISO 8601. */
  createdAt: string;
  /** When the last item got its result, or the batch was cancelled. */
  finishedAt?: string | undefined;
  /** When the batch and its results are deleted (set once it finishes). */
  expiresAt?: string | undefined;
  idempotencyKey?: string | undefined;
}

/** One item's outcome: the same AskResponse an ask answers, or the typed error it failed with. */
export type BatchItemResult =
  | { index: number; status: 'done'; response: AskResponse; attempts: number }
  | { index: number; status: 'failed'; error: ErrorData; attempts: number };

/** Results of items cursor .. cursor+limit-1 that have one; nextCursor is absent on the last page. */
export interface BatchResultsPage {
  batchId: string;
  items: BatchItemResult[];
  pending: number;
  nextCursor?: number | undefined;
}
