import type { CheckResult, HarnessReport } from './harness.js';

const ms = (value: number): string => `${value < 100 ? value.toFixed(1) : Math.round(value)} ms`;

function verdict(check: CheckResult): string {
  if (check.passed === undefined) return 'INFO';
  return check.passed ? 'PASS' : 'FAIL';
}

function latency({ latencyMs }: CheckResult): string {
  const runs = latencyMs.samples.length;
  if (runs === 1) return `${ms(latencyMs.p50)} (1 run)`;
  return `p50 ${ms(latencyMs.p50)}, p95 ${ms(latencyMs.p95)} over ${runs} runs`;
}

/** The distinct answers of a check; greedy decoding normally gives one. */
function answerLines(check: CheckResult): string[] {
  const distinct = [...new Set(check.answers)];
  if (distinct.length === 1) return [`    answer:   ${JSON.stringify(distinct[0])}`];
  return distinct.map((answer) => {
    const times = check.answers.filter((a) => a === answer).length;
    return `    answer:   ${JSON.stringify(answer)} (${times} of ${check.answers.length} runs)`;
  });
}

/** The harness report as text for a terminal. */
export function formatReport(report: HarnessReport): string {
  const { model } = report;
  const lines = [
    `Set-of-Mark harness against ${report.server}`,
    `model ${model.id} (revision ${model.revision}, ${model.executionProvider}, ${model.dtype}), ${report.runs} run(s) per check`,
  ];
  if (report.note) lines.push(`note: ${report.note}`);
  for (const check of report.checks) {
    lines.push(
      '',
      `${verdict(check)} ${check.type.padEnd(8)} ${check.image.padEnd(9)} ${JSON.stringify(check.question)}`,
      ...answerLines(check),
      `    expected: ${JSON.stringify(check.expected)}${report.asserted ? '' : ' (tiny-model format)'}`,
      `    latency:  ${latency(check)}`,
    );
  }
  lines.push('');
  const passed = report.checks.filter((check) => check.passed === true).length;
  if (report.asserted) {
    lines.push(`${passed}/${report.checks.length} checks passed`);
  } else {
    const matched = report.checks.filter((check) => check.matched === check.answers.length).length;
    lines.push(
      `answers not asserted; ${matched}/${report.checks.length} matched the tiny-model format`,
    );
  }
  return lines.join('\n');
}
