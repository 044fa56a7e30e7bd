import type { BenchContext } from '../context.js';
import { withServer } from '../context.js';
import { runClosedLoop } from '../load.js';
import { batchingOf } from '../settings.js';
import { round, summarize } from '../stats.js';

/**
 * Serving overhead at concurrency 1: everything but the model's own runs. "Model" is the
 * engine's vision + prefill + decode time; the rest of the client-measured wall time is HTTP,
 * tRPC, validation, JPEG decode, mark drawing, preprocessing and the response (and the SDK).
 */
export async function overhead(context: BenchContext) {
  const { settings, workload, log } = context;
  return withServer(context, { batching: batchingOf(settings, true) }, async (_server, client) => {
    const run = await runClosedLoop(client, workload, {
      concurrency: 1,
      requests: settings.overheadRequests,
      maxTokens: settings.maxTokens,
    });
    const rows = run.samples.map(({ wallMs, response }) => {
      const t = response.timings;
      const modelMs = t.visionMs + t.prefillMs + t.decodeMs;
      return {
        wallMs,
        totalMs: t.totalMs,
        modelMs,
        overheadMs: wallMs - modelMs,
        serverOverheadMs: t.totalMs - modelMs,
        share: (wallMs - modelMs) / wallMs,
        imageMs: t.imageMs,
        preprocessMs: t.preprocessMs,
        queueMs: t.queueMs,
        visionMs: t.visionMs,
        prefillMs: t.prefillMs,
        decodeMs: t.decodeMs,
        completionTokens: response.usage.completionTokens,
      };
    });
    const pick = (key: keyof (typeof rows)[number]) => summarize(rows.map((r) => r[key]));
    const result = {
      requests: run.samples.length,
      errors: run.errors,
      image: `${workload.marks.length} marks on a 1024x768 JPEG (${workload.jpeg.length} bytes), sent as base64 JSON by the SDK`,
      overheadMs: pick('overheadMs'),
      serverOverheadMs: pick('serverOverheadMs'),
      overheadShare: pick('share'),
      wallMs: pick('wallMs'),
      serverTotalMs: pick('totalMs'),
      modelMs: pick('modelMs'),
      breakdownMs: {
        image: pick('imageMs'),
        preprocess: pick('preprocessMs'),
        queue: pick('queueMs'),
        vision: pick('visionMs'),
        prefill: pick('prefillMs'),
        decode: pick('decodeMs'),
      },
      completionTokens: pick('completionTokens'),
    };
    log(
      `overhead: p50 ${round(result.overheadMs.p50)} ms, p95 ${round(result.overheadMs.p95)} ms, share p50 ${round(100 * result.overheadShare.p50, 1)}% of wall p50 ${round(result.wallMs.p50)} ms`,
    );
    return result;
  });
}
