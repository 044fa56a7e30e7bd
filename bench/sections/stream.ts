import type { BenchContext } from '../context.js';
import { withServer } from '../context.js';
import { batchingOf } from '../settings.js';
import { round, summarize } from '../stats.js';

const MIN_CLIENT_TOKENS = 4;

/**
 * Single-stream generation through askStream, one request at a time: time to the first token
 * event (client clock) and decode speed, from the server's decode time and from the client's
 * clock between the first token event and the done event.
 */
export async function stream(context: BenchContext) {
  const { settings, workload, log } = context;
  return withServer(context, { batching: batchingOf(settings, true) }, async (_server, client) => {
    const rows: Array<{ ttftMs: number; decodeTps: number; clientTps: number; tokens: number }> =
      [];
    for (let i = 0; i < settings.streamRequests; i++) {
      const sent = performance.now();
      let first: number | undefined;
      for await (const event of client.askStream(workload.ask(i, settings.maxTokens))) {
        if (event.type === 'token') {
          first ??= performance.now();
          continue;
        }
        const done = performance.now();
        const { completionTokens } = event.response.usage;
        const firstAt = first ?? done;
        // the first token comes from the prefill; the decode steps make the rest
        const decodeTokens = completionTokens - 1;
        rows.push({
          ttftMs: firstAt - sent,
          decodeTps:
            decodeTokens > 0 ? (decodeTokens / event.response.timings.decodeMs) * 1000 : NaN,
          // with few tokens the events arrive together and the client's interval means nothing
          clientTps:
            decodeTokens >= MIN_CLIENT_TOKENS ? (decodeTokens / (done - firstAt)) * 1000 : NaN,
          tokens: completionTokens,
        });
      }
    }
    const valid = (values: number[]) => values.filter((v) => Number.isFinite(v));
    const result = {
      requests: rows.length,
      ttftMs: summarize(rows.map((r) => r.ttftMs)),
      decodeTokensPerSecond: summarize(valid(rows.map((r) => r.decodeTps))),
      clientTokensPerSecond: summarize(valid(rows.map((r) => r.clientTps))),
      completionTokens: summarize(rows.map((r) => r.tokens)),
    };
    log(
      `stream: TTFT p50 ${round(result.ttftMs.p50)} ms, decode ${round(result.decodeTokensPerSecond.p50, 1)} tok/s (server), ${round(result.clientTokensPerSecond.p50, 1)} tok/s (client), ${result.completionTokens.mean} tokens/answer`,
    );
    return result;
  });
}
