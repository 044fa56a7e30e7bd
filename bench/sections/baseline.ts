import { request } from 'undici';
import { BaselineServer } from '../baseline-server.js';
import { askBody, baselineImages } from '../baseline-images.js';
import type { BenchImage } from '../baseline-images.js';
import type { BenchContext } from '../context.js';
import { probeHealthDuringBursts } from '../health-probes.js';
import { ServerHandle } from '../server-handle.js';
import { percentile, round } from '../stats.js';
import { ASKS, BURSTS, HEIGHT, MARKS, WIDTH, largeJpeg, rssAfterIdle } from './large-images.js';

// Our server against the seed-style Python baseline (bench/baseline/), both at their shipped
// defaults and measured interleaved in one run: per image, c1 latency in alternating rounds,
// then closed-loop throughput at concurrency 8 in alternating rounds, CPU per request from
// /proc, peak RSS, and /health while 8 asks with 36 MP images are in flight. Both get the same
// JSON body from the same load generator (fetch). The client's own share of the non-model time
// is not the same for both: at 1024x768 the asks are also sent with undici's request() (what
// the SDK's Node entry uses), alternating with fetch (clientOverhead). Prefix cache off in
// every ask ("cache": false): the baseline has none, and repeating one image would otherwise
// measure the cache.

const ROUNDS = 4;
const THROUGHPUT_ROUNDS = 2;
const CONCURRENCY = 8;
const PARITY_QUESTIONS = 3;
const RSS_EVERY_MS = 50;

interface Target {
  readonly name: 'ours' | 'baseline';
  readonly url: string;
  cpuMs(): number;
  rssMiB(): number;
}

interface Answered {
  readonly wallMs: number;
  readonly modelMs: number;
  /** The server's own timings (names as each reports them). */
  readonly timings: Record<string, number>;
  readonly answer: string;
}

/** The load generator's HTTP client: fetch unless said otherwise (see above). */
type HttpClient = 'request' | 'fetch';

/** Wall time outside the server's model time: the non-model time of one ask. */
const nonModelMs = (s: Answered): number => s.wallMs - s.modelMs;

/** One POST of an ask body: its wall time and the parsed answer (an HTTP error throws). */
async function postAsk<T>(
  target: Target,
  body: string,
  client: HttpClient = 'fetch',
): Promise<{ wallMs: number; json: T }> {
  const url = `${target.url}/v1/som/ask`;
  const headers = { 'content-type': 'application/json' };
  const sent = performance.now();
  let status: number;
  let text: string;
  if (client === 'fetch') {
    const response = await fetch(url, { method: 'POST', headers, body });
    text = await response.text();
    status = response.status;
  } else {
    const response = await request(url, { method: 'POST', headers, body });
    text = await response.body.text();
    status = response.statusCode;
  }
  const wallMs = performance.now() - sent;
  if (status < 200 || status >= 300)
    throw new Error(`${target.name}: HTTP ${status}: ${text.slice(0, 300)}`);
  return { wallMs, json: JSON.parse(text) as T };
}

async function ask(target: Target, body: string, client?: HttpClient): Promise<Answered> {
  const { wallMs, json } = await postAsk<{ answer: string; timings: Record<string, number> }>(
    target,
    body,
    client,
  );
  const t = json.timings;
  // ours reports the model's stages, the baseline its sum (vision + prefill + decode) as modelMs
  const modelMs = t['modelMs'] ?? t['visionMs']! + t['prefillMs']! + t['decodeMs']!;
  return { wallMs, modelMs, timings: t, answer: json.answer };
}

/** Closed loop: `concurrency` callers until `requests` are answered or `seconds` have passed. */
async function closedLoop(
  target: Target,
  bodies: readonly string[],
  concurrency: number,
  limit: { requests?: number; seconds?: number },
) {
  const samples: Answered[] = [];
  let next = 0;
  let errors = 0;
  let firstError: string | undefined;
  const cpuBefore = target.cpuMs();
  const started = performance.now();
  const more = (): boolean =>
    limit.requests !== undefined
      ? next < limit.requests
      : performance.now() - started < limit.seconds! * 1000;
  const caller = async (): Promise<void> => {
    while (more()) {
      const i = next++;
      try {
        samples.push(await ask(target, bodies[i % bodies.length]!));
      } catch (error) {
        errors++;
        firstError ??= (error as Error).message;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, caller));
  const elapsedMs = performance.now() - started;
  return {
    samples,
    errors,
    firstError,
    elapsedMs,
    cpuMs: target.cpuMs() - cpuBefore,
  };
}

/** value = ours / baseline over the pooled samples; min..max over the rounds. */
function ratio(value: number, perRound: readonly number[]) {
  return {
    value: round(value, 3),
    min: round(Math.min(...perRound), 3),
    max: round(Math.max(...perRound), 3),
  };
}

const p = (values: readonly number[], q: number): number => round(percentile(values, q));

async function latency(targets: readonly [Target, Target], image: BenchImage, requests: number) {
  const perRound = Math.ceil(requests / ROUNDS);
  const all: [Answered[], Answered[]] = [[], []];
  const roundP50: Array<[number, number, number, number]> = [];
  for (let r = 0; r < ROUNDS; r++) {
    const stats: number[] = [];
    for (const [k, target] of targets.entries()) {
      const run = await closedLoop(target, image.bodies, 1, { requests: perRound });
      if (run.errors > 0) throw new Error(`c1 ${image.name}: ${run.firstError}`);
      all[k]!.push(...run.samples);
      stats.push(
        percentile(
          run.samples.map((s) => s.wallMs),
          50,
        ),
        percentile(run.samples.map(nonModelMs), 50),
      );
    }
    roundP50.push(stats as [number, number, number, number]);
  }
  const timing = (samples: Answered[], name: string) =>
    p(
      samples.map((s) => s.timings[name] ?? NaN),
      50,
    );
  const side = (samples: Answered[]) => ({
    requests: samples.length,
    // where the non-model time goes, p50 of each: image (decode + marks), preprocessing,
    // queue (ours), and transport = wall - the server's totalMs (HTTP, JSON, framework, client)
    partsMs: {
      image: timing(samples, 'imageMs'),
      preprocess: timing(samples, 'preprocessMs'),
      queue: timing(samples, 'queueMs'),
      transport: p(
        samples.map((s) => s.wallMs - s.timings['totalMs']!),
        50,
      ),
    },
    wallMs: {
      p50: p(
        samples.map((s) => s.wallMs),
        50,
      ),
      p95: p(
        samples.map((s) => s.wallMs),
        95,
      ),
    },
    modelMs: {
      p50: p(
        samples.map((s) => s.modelMs),
        50,
      ),
    },
    nonModelMs: {
      p50: p(samples.map(nonModelMs), 50),
      p95: p(samples.map(nonModelMs), 95),
    },
  });
  const ours = side(all[0]);
  const baseline = side(all[1]);
  return {
    ours,
    baseline,
    ratio: {
      wallP50: ratio(
        ours.wallMs.p50 / baseline.wallMs.p50,
        roundP50.map((s) => s[0] / s[2]),
      ),
      nonModelP50: ratio(
        ours.nonModelMs.p50 / baseline.nonModelMs.p50,
        roundP50.map((s) => s[1] / s[3]),
      ),
    },
  };
}

/**
 * The load generator's own share of the non-model time: the same asks sent with fetch() and
 * with undici's request(), alternating, to each server; p50 of each, and the non-model ratio
 * as each client sees it.
 */
async function clientOverhead(
  targets: readonly [Target, Target],
  image: BenchImage,
  requests: number,
) {
  const perRound = Math.ceil(requests / ROUNDS);
  const nonModel = (samples: Answered[]) => p(samples.map(nonModelMs), 50);
  const runs = targets.map(() => ({ fetch: [] as Answered[], request: [] as Answered[] }));
  for (let r = 0; r < ROUNDS; r++) {
    for (const [k, target] of targets.entries()) {
      const clients =
        r % 2 === 0 ? (['fetch', 'request'] as const) : (['request', 'fetch'] as const);
      for (const client of clients) {
        for (let i = 0; i < perRound; i++)
          runs[k]![client].push(await ask(target, image.bodies[i % image.bodies.length]!, client));
      }
    }
  }
  const side = (k: number) => ({
    nonModelMs: { fetch: nonModel(runs[k]!.fetch), request: nonModel(runs[k]!.request) },
  });
  const ours = side(0);
  const baseline = side(1);
  return {
    image: image.name,
    requestsPerClient: perRound * ROUNDS,
    ours,
    baseline,
    nonModelRatio: {
      fetch: round(ours.nonModelMs.fetch / baseline.nonModelMs.fetch, 3),
      request: round(ours.nonModelMs.request / baseline.nonModelMs.request, 3),
    },
  };
}

async function throughput(targets: readonly [Target, Target], image: BenchImage, seconds: number) {
  const totals = targets.map(() => ({ requests: 0, errors: 0, ms: 0, cpuMs: 0 }));
  const rounds: Array<{ rps: number[]; cpu: number[] }> = [];
  for (let r = 0; r < THROUGHPUT_ROUNDS; r++) {
    const rps: number[] = [];
    const cpu: number[] = [];
    for (const [k, target] of targets.entries()) {
      const run = await closedLoop(target, image.bodies, CONCURRENCY, {
        seconds: seconds / THROUGHPUT_ROUNDS,
      });
      if (run.samples.length === 0) throw new Error(`c8 ${image.name}: ${run.firstError}`);
      const total = totals[k]!;
      total.requests += run.samples.length;
      total.errors += run.errors;
      total.ms += run.elapsedMs;
      total.cpuMs += run.cpuMs;
      rps.push((run.samples.length * 1000) / run.elapsedMs);
      cpu.push(run.cpuMs / run.samples.length);
    }
    rounds.push({ rps, cpu });
  }
  const side = (t: (typeof totals)[number]) => ({
    requests: t.requests,
    errors: t.errors,
    seconds: round(t.ms / 1000, 1),
    requestsPerSecond: round((t.requests * 1000) / t.ms),
    cpuMsPerRequest: round(t.cpuMs / t.requests, 1),
  });
  const ours = side(totals[0]!);
  const baseline = side(totals[1]!);
  return {
    ours,
    baseline,
    ratio: {
      requestsPerSecond: ratio(
        ours.requestsPerSecond / baseline.requestsPerSecond,
        rounds.map((x) => x.rps[0]! / x.rps[1]!),
      ),
      cpuMsPerRequest: ratio(
        ours.cpuMsPerRequest / baseline.cpuMsPerRequest,
        rounds.map((x) => x.cpu[0]! / x.cpu[1]!),
      ),
    },
  };
}

/**
 * The same asks to both servers, one at a time, two ways:
 * - model parity: both are sent the identical marked image (ours returns the image its model
 *   saw, as PNG; then both get it with no marks to draw), so only decode, preprocessing and the
 *   model are compared: the answers must be identical;
 * - end to end: each draws the marks itself (canvas and PIL rasterise label glyphs differently,
 *   so a retrained model whose top two tokens are close can answer differently): reported.
 */
async function parity(targets: readonly [Target, Target], images: readonly BenchImage[]) {
  const differing: Array<{ image: string; ours: string; baseline: string }> = [];
  const endToEndDiffering: Array<{ image: string; ours: string; baseline: string }> = [];
  let asked = 0;
  for (const image of images) {
    for (const body of image.bodies.slice(0, PARITY_QUESTIONS)) {
      const request = JSON.parse(body) as object;
      const marked = await askForMarkedImage(targets[0], request);
      const baseline = await ask(targets[1], body);
      asked++;
      if (marked.answer !== baseline.answer)
        endToEndDiffering.push({
          image: image.name,
          ours: marked.answer,
          baseline: baseline.answer,
        });
      const same = JSON.stringify({ ...request, image: marked.image, marks: [], cache: false });
      const [ours, theirs] = [await ask(targets[0], same), await ask(targets[1], same)];
      if (ours.answer !== marked.answer)
        throw new Error(
          `ours answered its own marked image ${JSON.stringify(ours.answer)}, the ask ${JSON.stringify(marked.answer)}`,
        );
      if (ours.answer !== theirs.answer)
        differing.push({ image: image.name, ours: ours.answer, baseline: theirs.answer });
    }
  }
  return {
    asked,
    identical: asked - differing.length,
    differing,
    endToEnd: { identical: asked - endToEndDiffering.length, differing: endToEndDiffering },
  };
}

/** An ask to our server that also returns the marked image, as the PNG base64 an ask accepts. */
async function askForMarkedImage(target: Target, request: object) {
  const body = JSON.stringify({ ...request, returnMarkedImage: true, markedImageFormat: 'png' });
  const { json } = await postAsk<{ answer: string; markedImage: { data: string } }>(target, body);
  return { answer: json.answer, image: json.markedImage.data };
}

/**
 * Bursts of 8 concurrent asks with a 36 MP JPEG while /health is polled (and, for ours, the
 * event loop read); several bursts, since one of ours now ends within a second.
 */
async function largeImages(
  target: Target,
  asks: number,
  bursts: number,
  body: string,
  ours?: ServerHandle,
) {
  const rssBefore = target.rssMiB();
  let rssPeak = rssBefore;
  const rssTimer = setInterval(() => (rssPeak = Math.max(rssPeak, target.rssMiB())), RSS_EVERY_MS);
  ours?.resetLoopDelay();
  const started = performance.now();
  const { healthMs, burstMaxMs, outcomes } = await probeHealthDuringBursts(target.url, bursts, () =>
    Promise.allSettled(Array.from({ length: asks }, () => ask(target, body))),
  );
  clearInterval(rssTimer);
  const loop = await ours?.readLoopDelay();
  const afterIdle = await rssAfterIdle(() => target.rssMiB());
  const failed = outcomes.filter((o) => o.status === 'rejected');
  return {
    asks,
    bursts,
    errors: failed.length,
    firstError: failed.length > 0 ? String(failed[0]!.reason) : undefined,
    seconds: round((performance.now() - started) / 1000, 1),
    healthProbes: healthMs.length,
    healthMs: {
      p50: p(healthMs, 50),
      p99: p(healthMs, 99),
      max: p(healthMs, 100),
      burstMax: burstMaxMs,
    },
    ...(loop ? { eventLoopMs: { p99: round(loop.p99), max: round(loop.max) } } : {}),
    rssMiB: { before: round(rssBefore, 1), peak: round(rssPeak, 1), afterIdle },
  };
}

export async function baseline(context: BenchContext) {
  const { settings, log } = context;
  const modelDir = process.env['MAGMA_MODEL_DIR']!;
  const images = await baselineImages(settings.maxTokens);
  const large = askBody(await largeJpeg(), MARKS, 'What colour is mark #2?', settings.maxTokens);
  const python = await BaselineServer.start(modelDir);
  let node: ServerHandle | undefined;
  try {
    node = await ServerHandle.start({ batching: {}, shippedDefaults: true });
    const server = node;
    const targets: [Target, Target] = [
      {
        name: 'ours',
        url: server.url,
        cpuMs: () => {
          const cpu = server.cpuMs();
          return cpu.main + cpu.other;
        },
        rssMiB: () => server.rssMiB(),
      },
      {
        name: 'baseline',
        url: python.url,
        cpuMs: () => python.cpuMs(),
        rssMiB: () => python.rssMiB(),
      },
    ];
    const peaks = { ours: 0, baseline: 0 };
    const rssTimer = setInterval(() => {
      for (const t of targets) peaks[t.name] = Math.max(peaks[t.name], t.rssMiB());
    }, RSS_EVERY_MS);
    try {
      for (const t of targets) await closedLoop(t, images[2]!.bodies, 2, { requests: 8 }); // warm-up

      const check = await parity(targets, images);
      if (check.differing.length > 0) {
        log(
          `!!!!! PARITY FAILED: ${check.differing.length} of ${check.asked} answers differ between ours and the baseline !!!!!`,
        );
        for (const d of check.differing.slice(0, 5))
          log(
            `!!!!!   ${d.image}: ours ${JSON.stringify(d.ours)}, baseline ${JSON.stringify(d.baseline)}`,
          );
      } else
        log(
          `parity: ${check.identical}/${check.asked} identical answers on identical marked images`,
        );
      log(
        `end to end, each server drawing its own marks: ${check.endToEnd.identical}/${check.asked} identical answers`,
      );
      for (const d of check.endToEnd.differing.slice(0, 5))
        log(`  ${d.image}: ours ${JSON.stringify(d.ours)}, baseline ${JSON.stringify(d.baseline)}`);

      const perImage = [];
      let clients: Awaited<ReturnType<typeof clientOverhead>> | undefined;
      for (const image of images) {
        const c1 = await latency(targets, image, settings.baselineRequests);
        // right after this image's c1, in the same conditions
        if (image === images[2])
          clients = await clientOverhead(targets, image, settings.baselineRequests);
        const c8 = await throughput(targets, image, settings.baselineSeconds);
        log(
          `${image.name}: c1 p50 ${c1.ours.wallMs.p50} vs ${c1.baseline.wallMs.p50} ms (x${c1.ratio.wallP50.value}), non-model p50 ${c1.ours.nonModelMs.p50} vs ${c1.baseline.nonModelMs.p50} ms (x${c1.ratio.nonModelP50.value}); c8 ${c8.ours.requestsPerSecond} vs ${c8.baseline.requestsPerSecond} req/s (x${c8.ratio.requestsPerSecond.value}); CPU/request ${c8.ours.cpuMsPerRequest} vs ${c8.baseline.cpuMsPerRequest} ms`,
        );
        perImage.push({ image: image.name, bytes: image.bytes, c1, c8 });
      }
      if (clients !== undefined)
        log(
          `client overhead at ${clients.image}: non-model p50 with fetch / request: ours ${clients.ours.nonModelMs.fetch} / ${clients.ours.nonModelMs.request} ms, baseline ${clients.baseline.nonModelMs.fetch} / ${clients.baseline.nonModelMs.request} ms; ratio ${clients.nonModelRatio.fetch} / ${clients.nonModelRatio.request}`,
        );
      const asks = settings.quick ? 2 : ASKS;
      const bursts = settings.quick ? 1 : BURSTS;
      const largeResults = {
        image: `${WIDTH}x${HEIGHT} JPEG, ${MARKS.length} marks`,
        ours: await largeImages(targets[0], asks, bursts, large, server),
        baseline: await largeImages(targets[1], asks, bursts, large),
      };
      log(
        `large images (${bursts} bursts): /health p99 ours ${largeResults.ours.healthMs.p99} ms over ${largeResults.ours.healthProbes} probes (per burst max ${largeResults.ours.healthMs.burstMax.join(' ')}), baseline ${largeResults.baseline.healthMs.p99} ms; RSS peak ours ${largeResults.ours.rssMiB.peak} MiB, baseline ${largeResults.baseline.rssMiB.peak} MiB`,
      );
      return {
        settings: {
          c1RequestsPerServer: Math.ceil(settings.baselineRequests / ROUNDS) * ROUNDS,
          rounds: ROUNDS,
          c8SecondsPerServer: settings.baselineSeconds,
          throughputRounds: THROUGHPUT_ROUNDS,
          maxTokens: settings.maxTokens,
          marks: 5,
          client: 'fetch',
        },
        parity: check,
        images: perImage,
        ...(clients !== undefined ? { clientOverhead: clients } : {}),
        largeImages: largeResults,
        peakRssMiB: { ours: round(peaks.ours, 1), baseline: round(peaks.baseline, 1) },
      };
    } finally {
      clearInterval(rssTimer);
    }
  } finally {
    await node?.stop();
    await python.stop();
  }
}
