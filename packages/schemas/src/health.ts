import { z } from 'zod';

export const ExecutionProviderSchema = z.enum(['cpu', 'cuda', 'webgpu']);
export type ExecutionProvider = z.infer<typeof ExecutionProviderSchema>;

/** GET /health: the process is alive. */
export const HealthSchema = z.strictObject({
  status: z.literal('ok'),
  version: z.string(),
  uptimeMs: z.number().min(0),
});
export type Health = z.infer<typeof HealthSchema>;

/** Bundle dtypes: fp32, fp16, and weight-only int4/int8 variants (docs/BUNDLE.md). */
export const ModelDtypeSchema = z.enum(['fp32', 'fp16', 'q4', 'q8', 'q4f16', 'q8f16']);

/** What the loaded model holds in memory: bytes per graph file and the KV cache's growth per token. */
export const ModelMemorySchema = z.strictObject({
  graphs: z.array(
    z.strictObject({
      graph: z.string(),
      file: z.string(),
      dtype: ModelDtypeSchema,
      bytes: z.number().int().min(0),
    }),
  ),
  weightBytes: z.number().int().min(0),
  kvBytesPerToken: z.number().int().positive(),
  kvElementBytes: z.number().int().positive(),
  maxBatchSize: z.number().int().positive(),
  maxContextTokens: z.number().int().positive(),
  worstCaseBytes: z.number().int().min(0),
});
export type ModelMemory = z.infer<typeof ModelMemorySchema>;

/** GET /ready: 200 once the model is loaded and warmed up, 503 before and while shutting down. */
export const ReadinessSchema = z.strictObject({
  ready: z.boolean(),
  modelLoaded: z.boolean(),
  warm: z.boolean(),
  shuttingDown: z.boolean(),
  /** Once the model is loaded. */
  memory: ModelMemorySchema.optional(),
  /** Why not ready, when not. */
  reason: z.string().optional(),
});
export type Readiness = z.infer<typeof ReadinessSchema>;

/** The `info` procedure: what the server runs and the limits in force. */
export const ServerInfoSchema = z.strictObject({
  version: z.string(),
  model: z.strictObject({
    id: z.string(),
    revision: z.string(),
    executionProvider: ExecutionProviderSchema,
    dtype: ModelDtypeSchema,
    cropSize: z.number().int().positive(),
    maxCrops: z.number().int().positive(),
    memory: ModelMemorySchema.optional(),
  }),
  ready: ReadinessSchema,
  queue: z.strictObject({
    depth: z.number().int().min(0),
    inFlight: z.number().int().min(0),
    capacity: z.number().int().min(0),
  }),
  limits: z.strictObject({
    maxImageBytes: z.number().int().positive(),
    maxUploadBytes: z.number().int().positive(),
    maxImagePixels: z.number().int().positive(),
    maxMarks: z.number().int().positive(),
    maxPromptChars: z.number().int().positive(),
    maxTokens: z.number().int().positive(),
    requestTimeoutMs: z.number().int().positive(),
  }),
});
export type ServerInfo = z.infer<typeof ServerInfoSchema>;
