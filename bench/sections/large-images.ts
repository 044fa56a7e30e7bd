import sharp from 'sharp';
import type { BenchContext } from '../context.js';
import { withServer } from '../context.js';
import { batchingOf } from '../settings.js';
import { probeHealthDuringBursts } from '../health-probes.js';
import { percentile, round } from '../stats.js';

// Large images in flight: 8 concurrent asks, each with a 36-megapixel JPEG and 5 marks, while
// /health is polled from here and the server's RSS is read from /proc. The image work runs in
// the server's image pool under its pixel budget (MAGMA_DECODE_PIXEL_BUDGET, default = one
// 40 MP image): /health should keep answering within milliseconds and RSS stay bounded.

export const WIDTH = 7200;
export const HEIGHT = 5000;
export const ASKS = 8;
/**
 * Bursts of ASKS asks, one after the other: a burst now ends within a second, about 30 probes,
 * so one burst's p99 would be its slowest probe; five give about 150.
 */
export const BURSTS = 5;
const RSS_EVERY_MS = 50;
/**
 * RSS is read again this long after the last burst, with no collection forced: an idle server
 * should give its image memory back by itself (the image workers let their scratch buffers go
 * after 2 s without a task).
 */
export const IDLE_AFTER_MS = 5000;

/** The RSS IDLE_AFTER_MS from now (the server left idle meanwhile). */
export async function rssAfterIdle(rssMiB: () => number): Promise<number> {
  await new Promise((resolve) => setTimeout(resolve, IDLE_AFTER_MS));
  return round(rssMiB(), 1);
}

export async function largeJpeg(): Promise<Buffer> {
  // A photo-sized image with some structure (five dark rectangles on a gradient-free background).
  const block = await sharp({
    create: { width: 900, height: 700, channels: 3, background: { r: 40, g: 60, b: 120 } },
  })
    .png()
    .toBuffer();
  return sharp({
    create: { width: WIDTH, height: HEIGHT, channels: 3, background: { r: 200, g: 190, b: 170 } },
  })
    .composite(
      [0, 1, 2, 3, 4].map((i) => ({ input: block, left: 300 + i * 1300, top: 600 + i * 700 })),
    )
    .jpeg({ quality: 85 })
    .toBuffer();
}

export const MARKS = [0, 1, 2, 3, 4].map((i) => ({
  label: i + 1,
  x1: 300 + i * 1300,
  y1: 600 + i * 700,
  x2: 1200 + i * 1300,
  y2: 1300 + i * 700,
}));

export async function largeImages(context: BenchContext) {
  const { settings, log } = context;
  const jpeg = await largeJpeg();
  const asks = settings.quick ? 2 : ASKS;
  return withServer(context, { batching: batchingOf(settings, true) }, async (server, client) => {
    await server.collectGarbage();
    const rssBeforeMiB = server.rssMiB();
    let rssPeakMiB = rssBeforeMiB;
    const rssTimer = setInterval(() => {
      rssPeakMiB = Math.max(rssPeakMiB, server.rssMiB());
    }, RSS_EVERY_MS);

    server.resetLoopDelay();
    const started = performance.now();
    const { healthMs, burstMaxMs, outcomes } = await probeHealthDuringBursts(
      server.url,
      settings.quick ? 1 : BURSTS,
      () =>
        Promise.allSettled(
          Array.from({ length: asks }, () =>
            client.ask({
              image: jpeg,
              marks: MARKS,
              prompt: 'What colour is mark #2?',
              options: { maxTokens: settings.maxTokens },
              // every ask decodes its image: with the prefix cache, seven of the eight would wait
              // for the first one's prefix and skip the image work this section measures
              cache: false,
            }),
          ),
        ),
    );
    const seconds = (performance.now() - started) / 1000;
    clearInterval(rssTimer);
    const loop = await server.readLoopDelay();
    const rssAfterIdleMiB = await rssAfterIdle(() => server.rssMiB());
    const errors = outcomes.filter((o) => o.status === 'rejected');
    const sorted = [...healthMs].sort((a, b) => a - b);
    const result = {
      image: `${WIDTH}x${HEIGHT} JPEG (${jpeg.length} bytes), ${MARKS.length} marks`,
      asks,
      bursts: burstMaxMs.length,
      errors: errors.length,
      firstError:
        errors.length > 0 ? String((errors[0] as PromiseRejectedResult).reason) : undefined,
      seconds: round(seconds, 1),
      healthProbes: healthMs.length,
      healthMs: {
        p50: round(percentile(sorted, 50)),
        p99: round(percentile(sorted, 99)),
        max: round(sorted[sorted.length - 1] ?? NaN),
        burstMax: burstMaxMs,
      },
      eventLoopMs: { p99: round(loop.p99), max: round(loop.max) },
      rssMiB: {
        before: round(rssBeforeMiB, 1),
        peak: round(rssPeakMiB, 1),
        afterIdle: rssAfterIdleMiB,
      },
    };
    log(
      `large images: ${burstMaxMs.length} bursts of ${asks} asks in ${result.seconds} s; /health p99 ${result.healthMs.p99} ms over ${healthMs.length} probes (max ${result.healthMs.max}, per burst ${burstMaxMs.join(' ')}); event loop p99 ${result.eventLoopMs.p99} ms; RSS ${result.rssMiB.before} -> peak ${result.rssMiB.peak} MiB, ${result.rssMiB.afterIdle} MiB ${IDLE_AFTER_MS / 1000} s after`,
    );
    return result;
  });
}
