import { readFileSync } from 'node:fs';

// Renders a bench-results JSON file as the Markdown tables of BENCHMARKS.md:
//   node --import tsx bench/summary.ts bench-results/bench-<date>.json

interface Dist {
  p50: number;
  p95: number;
  p99: number;
  max: number;
  mean: number;
}
interface Point {
  concurrency: number;
  requests: number;
  errors: number;
  requestsPerSecond: number;
  tokensPerSecond: number;
  latencyMs: Dist;
  completionTokensMean: number;
  eventLoopP99Ms: number;
  cpuMsPerRequest?: { client: number; serverMain: number; serverOther: number };
}
/* eslint-disable @typescript-eslint/no-explicit-any -- a loosely typed view of our own JSON */
type Report = { command: string; machine: Record<string, unknown>; results: Record<string, any> };

const ms = (v: number): string => (Number.isFinite(v) ? v.toFixed(1) : '-');

export function renderSummary(report: Report): string {
  const { machine, results } = report;
  const lines: string[] = [];
  lines.push(`Command: \`${report.command}\``);
  lines.push(
    `Date: ${machine['date']}; machine: ${machine['cpus']} x ${machine['cpu']}, ${machine['memoryGiB']} GiB, ${machine['platform']}; Node ${machine['node']}; onnxruntime-node ${machine['onnxruntimeNode']} (${machine['executionProvider']}); model ${machine['model']}; commit ${machine['commit']}; load average at start ${(machine['loadAverageAtStart'] as number[]).join(', ')}.`,
  );
  const o = results['overhead'];
  if (o) {
    lines.push('', `Serving overhead, concurrency 1, ${o.requests} requests (${o.image}):`, '');
    lines.push('| ms | p50 | p95 |', '|---|---|---|');
    const row = (name: string, d: Dist) => lines.push(`| ${name} | ${ms(d.p50)} | ${ms(d.p95)} |`);
    row('client wall time', o.wallMs);
    row('model (vision + prefill + decode)', o.modelMs);
    row('**overhead = wall - model**', o.overheadMs);
    row('server-side overhead (totalMs - model)', o.serverOverheadMs);
    row('  image decode + marks (imageMs)', o.breakdownMs.image);
    row('  engine preprocessing', o.breakdownMs.preprocess);
    row('  engine queue + hand-over', o.breakdownMs.queue);
    row('vision', o.breakdownMs.vision);
    row('prefill', o.breakdownMs.prefill);
    row('decode', o.breakdownMs.decode);
    lines.push(
      `| overhead share of wall time | ${(100 * o.overheadShare.p50).toFixed(1)}% | ${(100 * o.overheadShare.p95).toFixed(1)}% |`,
    );
  }
  const s = results['stream'];
  if (s) {
    lines.push('', `Single stream (askStream, one at a time, ${s.requests} requests):`, '');
    lines.push('| | p50 | p95 |', '|---|---|---|');
    lines.push(`| time to first token (ms) | ${ms(s.ttftMs.p50)} | ${ms(s.ttftMs.p95)} |`);
    lines.push(
      `| decode tokens/s (server decodeMs) | ${ms(s.decodeTokensPerSecond.p50)} | ${ms(s.decodeTokensPerSecond.p95)} |`,
      `| decode tokens/s (client clock) | ${ms(s.clientTokensPerSecond.p50)} | ${ms(s.clientTokensPerSecond.p95)} |`,
      `| completion tokens per answer | ${ms(s.completionTokens.p50)} | ${ms(s.completionTokens.p95)} |`,
    );
  }
  const d = results['decode'];
  if (d) {
    lines.push(
      '',
      `One batched decode step, engine direct (${d.promptTokens}-token prompts, median of ${d.steps / 2}):`,
      '',
    );
    lines.push(
      '| batch | fed back (ms) | per sequence (ms) | re-padded (ms) |',
      '|---|---|---|---|',
    );
    for (const r of d.rows)
      lines.push(
        `| ${r.batch} | ${ms(r.fedBackMs)} | ${ms(r.fedBackMsPerSequence)} | ${ms(r.repaddedMs)} |`,
      );
  }
  const t = results['throughput'];
  if (t) {
    lines.push('', 'Throughput (closed loop, SDK `ask`):', '');
    lines.push(
      '| engine | concurrency | requests | req/s | p50 ms | p95 ms | tokens/answer | event-loop p99 ms | CPU ms/request: client, server main, server other |',
      '|---|---|---|---|---|---|---|---|---|',
    );
    for (const [mode, points] of Object.entries(t.modes as Record<string, Point[]>))
      for (const p of points)
        lines.push(
          `| ${mode} | ${p.concurrency} | ${p.requests}${p.errors ? ` (+${p.errors} errors)` : ''} | ${p.requestsPerSecond.toFixed(2)} | ${ms(p.latencyMs.p50)} | ${ms(p.latencyMs.p95)} | ${p.completionTokensMean} | ${ms(p.eventLoopP99Ms)} | ${p.cpuMsPerRequest ? `${p.cpuMsPerRequest.client}, ${p.cpuMsPerRequest.serverMain}, ${p.cpuMsPerRequest.serverOther}` : '-'} |`,
        );
    lines.push(
      '',
      'Ratios (same run): ' +
        Object.entries(t.ratios)
          .map(([k, v]) => `${k} = ${v}`)
          .join('; '),
    );
  }
  const e = results['eventloop'];
  if (e) {
    lines.push(
      '',
      `Event-loop delay of the server's main thread, saturated (concurrency ${e.concurrency}, ${e.requests} requests in ${e.seconds} s): p50 ${ms(e.saturatedMs.p50)} ms, **p99 ${ms(e.saturatedMs.p99)} ms**, max ${ms(e.saturatedMs.max)} ms (idle: p99 ${ms(e.idleMs.p99)} ms).`,
    );
  }
  const m = results['memory'];
  if (m) {
    lines.push(
      '',
      `Memory (server RSS after a GC, concurrency ${m.concurrency}): ${m.rssAfterWarmupMiB} MiB after warm-up, ${m.rssFinalMiB} MiB after ${m.requests} more requests (**${m.growthPercent}%**), peak ${m.rssPeakMiB} MiB, trend ${m.trendMiBPer1000Requests} MiB per 1000 requests. Readings: ${m.readings.map((r: { answered: number; rssMiB: number }) => `${r.answered}: ${r.rssMiB}`).join(', ')}.`,
    );
  }
  const p = results['prefix'];
  if (p) {
    const sq = p.sequential;
    lines.push(
      '',
      `Prefix cache (${p.images} images x ${p.questionsPerImage} questions, 1024x768 JPEG with 5 marks, maxTokens ${p.maxTokens}):`,
      '',
      '| | p50 ms | p95 ms |',
      '|---|---|---|',
      `| concurrency 1, first question of an image (miss) | ${ms(sq.firstMs.p50)} | ${ms(sq.firstMs.p95)} |`,
      `| concurrency 1, later questions (hits) | ${ms(sq.laterMs.p50)} | ${ms(sq.laterMs.p95)} |`,
    );
    lines.push(
      '',
      '| concurrency 8 | images sent | requests | req/s | p50 ms | p95 ms | from cache |',
      '|---|---|---|---|---|---|---|',
    );
    const transports = Object.entries(p.concurrent as Record<string, any>);
    for (const [transport, t] of transports)
      for (const [mode, point] of Object.entries(t.modes as Record<string, any>))
        lines.push(
          `| ${mode} | ${transport} | ${point.requests}${point.errors ? ` (+${point.errors} errors)` : ''} | ${point.requestsPerSecond.toFixed(2)} | ${ms(point.latencyMs.p50)} | ${ms(point.latencyMs.p95)} | ${point.answersFromCache} |`,
        );
    lines.push(
      '',
      `Later / first p50 = ${sq.laterOverFirstP50}; cache on / off throughput, median round of ${transports[0]?.[1].rounds ?? 1} (each round's ratio): ${transports.map(([transport, t]) => `${t.throughputRatio}x with images ${transport} (${(t.roundRatios ?? []).join(', ')}; ${t.answersDiffering} answers differing)`).join(', ')}.`,
    );
    if ((transports[0]?.[1].warmupRounds ?? 0) > 0)
      lines.push(
        '',
        `Measured after ${transports[0]![1].warmupRounds} warm-up rounds per server, not counted; their ratios, first to last: ${transports.map(([transport, t]) => `images ${transport}: ${(t.warmupRatios ?? []).join(', ')}`).join('; ')}.`,
      );
  }
  const l = results['largeimages'];
  if (l) {
    lines.push(
      '',
      `Large images in flight (${l.bursts ?? 1} bursts of ${l.asks} concurrent asks, ${l.image}, ${l.seconds} s${l.errors ? `, ${l.errors} errors` : ''}): /health p50 ${ms(l.healthMs.p50)} ms, **p99 ${ms(l.healthMs.p99)} ms**, max ${ms(l.healthMs.max)} ms over ${l.healthProbes} probes; server event-loop delay p99 ${ms(l.eventLoopMs.p99)} ms, max ${ms(l.eventLoopMs.max)} ms; RSS ${l.rssMiB.before} MiB before, **peak ${l.rssMiB.peak} MiB**${l.rssMiB.afterIdle !== undefined ? `, ${l.rssMiB.afterIdle} MiB 5 s after` : ''}.`,
    );
  }
  const b = results['baseline'];
  if (b) lines.push('', ...renderBaseline(b));
  const j = results['batch'];
  if (j) lines.push('', ...renderBatchJobs(j));
  lines.push('', ...renderTargets(results));
  return lines.join('\n');
}

/** Batch jobs through Redis: 1 and 2 worker processes against direct asks. */
function renderBatchJobs(j: any): string[] {
  const row = (name: string, r: any) =>
    `| ${name} | ${r.seconds} | ${r.itemsPerSecond} | ${r.msPerItem} |`;
  return [
    `Batch jobs (${j.items} items, ${j.image}, maxTokens ${j.maxTokens}, ${j.concurrencyPerProcess} in flight per process; one redis-server, an API process and the workers as child processes; medians of ${j.rounds} rounds):`,
    '',
    '| | wall s | items/s | ms per item |',
    '|---|---|---|---|',
    row('direct `ask`, one server (no queue)', j.direct),
    row('batch, 1 worker process', j.workers1),
    row('batch, 2 worker processes', j.workers2),
    '',
    `Queue overhead per item (1 worker vs direct): **${j.queueOverheadMsPerItem} ms**; 2 workers / 1 worker throughput = ${j.ratios.workers2OverWorkers1}x; 1 worker / direct = ${j.ratios.workers1OverDirect}x; creating the batch (items inline) took ${j.workers1.createSeconds} s and ${j.workers2.createSeconds} s.`,
  ];
}

const x = (r: { value: number; min: number; max: number }): string =>
  `${r.value.toFixed(2)} (${r.min.toFixed(2)}-${r.max.toFixed(2)})`;

const differences = (differing: any[]): string =>
  differing
    .slice(0, 3)
    .map((d) => `${d.image}: ${JSON.stringify(d.ours)} vs ${JSON.stringify(d.baseline)}`)
    .join('; ');

/** Ours against the Python baseline: per image, ratio ours / baseline (min-max over rounds). */
function renderBaseline(b: any): string[] {
  const s = b.settings;
  const lines = [
    `Ours vs the Python baseline (bench/baseline/, FastAPI + PyTorch), both at shipped defaults, interleaved; ${s.marks} marks, maxTokens ${s.maxTokens}, prefix cache off; c1: ${s.c1RequestsPerServer} requests per server and image in ${s.rounds} alternating rounds; c8: ${s.c8SecondsPerServer} s per server and image in ${s.throughputRounds} alternating rounds. Ratios are ours / baseline, (min-max over the rounds). Load generator: ${s.client ?? 'fetch'}.`,
    '',
    b.parity.differing.length === 0
      ? `Parity (both sent the identical marked image): **${b.parity.identical}/${b.parity.asked} identical answers**.`
      : `**PARITY FAILED (both sent the identical marked image): ${b.parity.differing.length} of ${b.parity.asked} answers differ** (${differences(b.parity.differing)}).`,
    ...(b.parity.endToEnd
      ? [
          '',
          `End to end, each server drawing its own marks (canvas vs PIL glyphs): ${b.parity.endToEnd.identical}/${b.parity.asked} identical answers${b.parity.endToEnd.differing.length > 0 ? ` (${differences(b.parity.endToEnd.differing)})` : ''}.`,
        ]
      : []),
    '',
    '| image | c1 p50 ms ours / base | c1 p95 ms ours / base | c1 p50 ratio | non-model p50 ms ours / base | non-model ratio | model p50 ms ours / base | c8 req/s ours / base | c8 ratio | CPU ms/req ours / base | CPU ratio |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const i of b.images) {
    const { c1, c8 } = i;
    lines.push(
      `| ${i.image} | ${ms(c1.ours.wallMs.p50)} / ${ms(c1.baseline.wallMs.p50)} | ${ms(c1.ours.wallMs.p95)} / ${ms(c1.baseline.wallMs.p95)} | ${x(c1.ratio.wallP50)} | ${ms(c1.ours.nonModelMs.p50)} / ${ms(c1.baseline.nonModelMs.p50)} | ${x(c1.ratio.nonModelP50)} | ${ms(c1.ours.modelMs.p50)} / ${ms(c1.baseline.modelMs.p50)} | ${c8.ours.requestsPerSecond} / ${c8.baseline.requestsPerSecond} | ${x(c8.ratio.requestsPerSecond)} | ${c8.ours.cpuMsPerRequest} / ${c8.baseline.cpuMsPerRequest} | ${x(c8.ratio.cpuMsPerRequest)} |`,
    );
  }
  lines.push(
    '',
    'Non-model time, p50 of its parts (ms, ours / baseline): image = decode + marks, preprocess = crop grid + resize + normalise, queue = waiting for the engine (ours only), transport = wall - server total (HTTP, JSON, validation, framework, client).',
    '',
    '| image | image | preprocess | queue | transport |',
    '|---|---|---|---|---|',
  );
  for (const i of b.images) {
    const [o, base] = [i.c1.ours.partsMs, i.c1.baseline.partsMs];
    lines.push(
      `| ${i.image} | ${ms(o.image)} / ${ms(base.image)} | ${ms(o.preprocess)} / ${ms(base.preprocess)} | ${ms(o.queue)} / - | ${ms(o.transport)} / ${ms(base.transport)} |`,
    );
  }
  const c = b.clientOverhead;
  if (c)
    lines.push(
      '',
      `The load generator's own share (${c.image}, right after its c1 rounds, ${c.requestsPerClient} asks per server and client, alternating): non-model p50 with fetch / with undici request(), ours ${ms(c.ours.nonModelMs.fetch)} / ${ms(c.ours.nonModelMs.request)} ms, baseline ${ms(c.baseline.nonModelMs.fetch)} / ${ms(c.baseline.nonModelMs.request)} ms; non-model ratio ${c.nonModelRatio.fetch} with fetch (the load generator of the tables above), ${c.nonModelRatio.request} with request().`,
    );
  const l = b.largeImages;
  const large = (name: string, r: any) =>
    `| ${name} | ${r.bursts ?? 1} x ${r.asks}${r.errors ? ` (${r.errors} errors)` : ''} | ${r.seconds} | ${ms(r.healthMs.p50)} | ${ms(r.healthMs.p99)} | ${ms(r.healthMs.max)} | ${r.eventLoopMs ? ms(r.eventLoopMs.p99) : '-'} | ${r.rssMiB.before} | ${r.rssMiB.peak} | ${r.rssMiB.afterIdle ?? '-'} |`;
  lines.push(
    '',
    `Large images in flight (${l.image}), each server on its own:`,
    '',
    '| server | bursts x asks | s | /health p50 ms | /health p99 ms | /health max ms | event-loop p99 ms | RSS before MiB | RSS peak MiB | RSS 5 s after MiB |',
    '|---|---|---|---|---|---|---|---|---|---|',
    large('ours', l.ours),
    large('baseline', l.baseline),
    '',
    `Peak RSS over the whole section: ours ${b.peakRssMiB.ours} MiB, baseline ${b.peakRssMiB.baseline} MiB.`,
  );
  return lines;
}

/** The targets set for this machine and the tiny model, against this run's numbers. */
function renderTargets(results: Record<string, any>): string[] {
  const rows: Array<[string, string, boolean | undefined]> = [];
  const overheadP50 = results['overhead']?.overheadMs?.p50 as number | undefined;
  if (overheadP50 !== undefined)
    rows.push(['serving overhead p50 < 20 ms', `${ms(overheadP50)} ms`, overheadP50 < 20]);
  const loopP99 = results['eventloop']?.saturatedMs?.p99 as number | undefined;
  if (loopP99 !== undefined)
    rows.push(['event-loop delay p99 < 20 ms while saturated', `${ms(loopP99)} ms`, loopP99 < 20]);
  const growth = results['memory']?.growthPercent as number | undefined;
  if (growth !== undefined)
    rows.push(['RSS growth < 5% across the memory run', `${growth}%`, growth < 5]);
  // ours in the baseline section (the built server at its shipped defaults, as users run it),
  // else the largeimages section's (the sources through tsx, the benchmark's settings)
  const large = results['baseline']?.largeImages?.ours ?? results['largeimages'];
  if (large !== undefined) {
    rows.push([
      '/health p99 < 20 ms while 8 asks with 36 MP images are worked on',
      `${ms(large.healthMs.p99)} ms`,
      large.healthMs.p99 < 20,
    ]);
    rows.push([
      'peak RSS < 600 MB during those asks',
      `${((large.rssMiB.peak * 2 ** 20) / 1e6).toFixed(0)} MB`,
      large.rssMiB.peak * 2 ** 20 < 600e6,
    ]);
  }
  const prefixRatio = results['prefix']?.sequential?.laterOverFirstP50 as number | undefined;
  if (prefixRatio !== undefined)
    rows.push([
      'prefix cache: later questions p50 <= 0.35x the first (concurrency 1)',
      `${prefixRatio}x`,
      prefixRatio <= 0.35,
    ]);
  for (const [transport, t] of Object.entries(
    (results['prefix']?.concurrent ?? {}) as Record<string, { throughputRatio: number }>,
  ))
    rows.push([
      `prefix cache: throughput on >= 2.5x off (5 questions per image, concurrency 8, images ${transport})`,
      `${t.throughputRatio}x`,
      t.throughputRatio >= 2.5,
    ]);
  const b = results['baseline'];
  const at1024 = b?.images.find((i: any) => String(i.image).startsWith('1024x768'));
  if (at1024 !== undefined) {
    const goal = (name: string, r: any, met: (v: number) => boolean) =>
      rows.push([name, `${x(r)}x at 1024x768`, met(r.value)]);
    goal('baseline: non-model time p50 <= 0.5x', at1024.c1.ratio.nonModelP50, (v) => v <= 0.5);
    goal('baseline: c1 end-to-end p50 <= 0.75x', at1024.c1.ratio.wallP50, (v) => v <= 0.75);
    goal('baseline: c8 throughput >= 1.5x', at1024.c8.ratio.requestsPerSecond, (v) => v >= 1.5);
    goal('baseline: CPU per request <= 0.7x', at1024.c8.ratio.cpuMsPerRequest, (v) => v <= 0.7);
    rows.push([
      'baseline: answers identical on identical marked images',
      `${b.parity.identical}/${b.parity.asked}`,
      b.parity.differing.length === 0,
    ]);
  }
  if (rows.length === 0) return [];
  return [
    '| target | measured | met |',
    '|---|---|---|',
    ...rows.map(([target, value, met]) => `| ${target} | ${value} | ${met ? 'yes' : '**no**'} |`),
  ];
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const file = process.argv[2];
  if (file === undefined) throw new Error('usage: bench/summary.ts <bench-results JSON>');
  console.log(renderSummary(JSON.parse(readFileSync(file, 'utf8')) as Report));
}
