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

/** GET /ready: 200 once the model is loaded and warmed up, 503 before and while shutting down. */
export const ReadinessSchema = z.strictObject({
  ready: z.boolean(),
  modelLoaded: z.boolean(),
  warm: z.boolean(),
  shuttingDown: z.boolean(),
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
    dtype: z.enum(['fp32', 'fp16']),
    cropSize: z.number().int().positive(),
    maxCrops: z.number().int().positive(),
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
