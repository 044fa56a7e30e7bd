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
      '| concurrency 8 | requests | req/s | p50 ms | p95 ms | from cache |',
      '|---|---|---|---|---|---|',
    );
    for (const [mode, point] of Object.entries(p.concurrent.modes as Record<string, any>))
      lines.push(
        `| ${mode} | ${point.requests}${point.errors ? ` (+${point.errors} errors)` : ''} | ${point.requestsPerSecond.toFixed(2)} | ${ms(point.latencyMs.p50)} | ${ms(point.latencyMs.p95)} | ${point.answersFromCache} |`,
      );
    lines.push(
      '',
      `Later / first p50 = ${sq.laterOverFirstP50}; cache on / off throughput = ${p.concurrent.throughputRatio}x; answers differing between on and off: ${p.concurrent.answersDiffering}.`,
    );
  }
  const l = results['largeimages'];
  if (l) {
    lines.push(
      '',
      `Large images in flight (${l.asks} concurrent asks, ${l.image}, ${l.seconds} s${l.errors ? `, ${l.errors} errors` : ''}): /health p50 ${ms(l.healthMs.p50)} ms, **p99 ${ms(l.healthMs.p99)} ms**, max ${ms(l.healthMs.max)} ms over ${l.healthProbes} probes; server event-loop delay p99 ${ms(l.eventLoopMs.p99)} ms, max ${ms(l.eventLoopMs.max)} ms; RSS ${l.rssMiB.before} MiB before, **peak ${l.rssMiB.peak} MiB**.`,
    );
  }
  lines.push('', ...renderTargets(results));
  return lines.join('\n');
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
  const large = results['largeimages'];
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
  const prefixThroughput = results['prefix']?.concurrent?.throughputRatio as number | undefined;
  if (prefixThroughput !== undefined)
    rows.push([
      'prefix cache: throughput on >= 2.5x off (5 questions per image, concurrency 8)',
      `${prefixThroughput}x`,
      prefixThroughput >= 2.5,
    ]);
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
