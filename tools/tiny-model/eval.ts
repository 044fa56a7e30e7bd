/**
 * Proof that magma-tiny-som reads Set-of-Mark through the real TypeScript engine: renders held-out
 * scenes (a seed range disjoint from training), asks the questions through `Engine`, and prints
 * exact-match accuracy:
 *
 * 1. in-distribution: scenes and wordings drawn like the training data, per question type and grid;
 * 2. robustness: one held-out set per condition (image sizes, backgrounds, JPEG, unseen
 *    wordings, the classic world), each with its own accuracy;
 * 3. the example harness's classic scene and its four checks at 224x168, 672x504 and 1344x1008.
 *
 * Images go to the engine at their full size with marks drawn as the server draws them, so the
 * processor's resize is the real one.
 *
 *   npm run eval -- [--scenes 100] [--robust-scenes 30] [--seed 1] [--model models/magma-tiny-som] [--json out.json]
 *       [--mark-sizing model|magma] [--conditions 400x1200,dark bg] [--record]
 *
 * `--conditions` runs only the named robustness conditions and prints each one's misses (to look
 * at a weak condition with more scenes: `--scenes 0 --robust-scenes 200 --conditions 400x1200`).
 *
 * `--record` (default sizes and seed only) writes the figures into the bundle's config.json
 * (`magma_som.eval`): the example tests hold the served answers to them, so a shipped bundle
 * always carries what it was measured at.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Engine } from '../../packages/server/src/engine/engine.js';
import { drawMarks } from '../../packages/server/src/images/draw-marks.js';
import { markSizing } from '../../packages/server/src/images/mark-sizing.js';
import type { MarkSizingMode } from '../../packages/server/src/images/mark-sizing.js';
import type { RgbImage } from '../../packages/server/src/images/types.js';
import { renderMarkedScene } from '../../examples/harness/scene.js';
import { IN_DISTRIBUTION, ROBUSTNESS_CONDITIONS, evalScene } from './eval-scenes.js';
import type { EvalCondition } from './eval-scenes.js';
import { QUESTION_TYPES, classicQuestions } from './questions.js';
import type { QuestionAnswer } from './questions.js';
import { GRID_NAMES } from './sample-scene.js';

const here = dirname(fileURLToPath(import.meta.url));

interface Outcome {
  readonly qa: QuestionAnswer;
  readonly grid: string;
  readonly got: string;
  readonly ok: boolean;
}

interface Tally {
  readonly correct: number;
  readonly total: number;
}

const tally = (list: readonly Outcome[]): Tally => ({
  correct: list.filter((o) => o.ok).length,
  total: list.length,
});
const percent = ({ correct, total }: Tally): string =>
  `${((100 * correct) / Math.max(1, total)).toFixed(1).padStart(5)}%  (${correct}/${total})`;

function table(title: string, groups: Map<string, Outcome[]>): string {
  const lines = [title];
  for (const [name, list] of groups) lines.push(`  ${name.padEnd(18)} ${percent(tally(list))}`);
  return lines.join('\n');
}

function groupBy(
  outcomes: readonly Outcome[],
  keys: readonly string[],
  keyOf: (o: Outcome) => string,
): Map<string, Outcome[]> {
  const groups = new Map<string, Outcome[]>(keys.map((k) => [k, []]));
  for (const o of outcomes) groups.get(keyOf(o))?.push(o);
  for (const [k, v] of groups) if (v.length === 0) groups.delete(k);
  return groups;
}

/** One image's questions, concurrently, so the engine batches their decode steps. */
async function ask(
  engine: Engine,
  image: RgbImage,
  qas: readonly QuestionAnswer[],
  grid: string,
): Promise<Outcome[]> {
  const results = await Promise.all(
    qas.map((qa) =>
      engine.generate({
        image: { data: image.data.slice(), width: image.width, height: image.height },
        prompt: qa.question,
        maxTokens: 48,
      }),
    ),
  );
  return results.map((r, k) => {
    const qa = qas[k]!;
    const got = r.text.trim();
    return { qa, grid, got, ok: got === qa.answer };
  });
}

async function runCondition(
  engine: Engine,
  seed: number,
  condition: EvalCondition,
  count: number,
  markSizing: MarkSizingMode,
): Promise<Outcome[]> {
  const outcomes: Outcome[] = [];
  for (let i = 0; i < count; i++) {
    const { grid, scene, questions } = await evalScene(seed, i, condition, markSizing);
    outcomes.push(...(await ask(engine, scene.image, questions, grid)));
  }
  return outcomes;
}

function printMisses(outcomes: readonly Outcome[], limit: number): void {
  const misses = outcomes.filter((o) => !o.ok).slice(0, limit);
  if (misses.length === 0) return;
  console.log('  some misses:');
  for (const f of misses)
    console.log(
      `    [${f.grid}] ${f.qa.question} -> ${JSON.stringify(f.got)} (want ${JSON.stringify(f.qa.answer)})`,
    );
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      scenes: { type: 'string', default: '100' },
      'robust-scenes': { type: 'string', default: '30' },
      seed: { type: 'string', default: '1' },
      model: { type: 'string', default: resolve(here, '../../models/magma-tiny-som') },
      json: { type: 'string' },
      // 'magma' draws every scene's marks by Magma's plain rule: what the model gets without the
      // server's sizing for the model (for comparisons; the server's default is 'model').
      'mark-sizing': { type: 'string', default: 'model' },
      conditions: { type: 'string' },
      record: { type: 'boolean', default: false },
    },
  });
  const sizingMode = values['mark-sizing'];
  if (sizingMode !== 'model' && sizingMode !== 'magma')
    throw new Error(`--mark-sizing must be model or magma, got ${sizingMode}`);
  const sceneCount = Number(values.scenes);
  const robustCount = Number(values['robust-scenes']);
  const seed = Number(values.seed);
  const conditions = pickConditions(values.conditions);
  // Checked before the run, not after its minutes.
  if (
    values.record &&
    (sceneCount < 100 ||
      robustCount < 30 ||
      seed !== 1 ||
      sizingMode !== 'model' ||
      values.conditions !== undefined)
  )
    throw new Error(
      '--record takes the default run: --scenes >= 100, --robust-scenes >= 30, seed 1, all conditions',
    );
  const engine = await Engine.start({
    modelDir: resolve(values.model),
    executionProvider: 'cpu',
    maxBatchSize: 8,
  });
  console.log(
    `model ${engine.info.name} revision ${engine.info.revision}; eval seed ${seed}: ` +
      `${sceneCount} in-distribution scenes, ${robustCount} per robustness condition; marks sized by ${sizingMode}`,
  );
  const started = Date.now();
  const report: Record<string, unknown> = {};
  try {
    // 1. In-distribution.
    if (sceneCount > 0) {
      const inDist = await runCondition(engine, seed, IN_DISTRIBUTION, sceneCount, sizingMode);
      const byType = groupBy(inDist, QUESTION_TYPES, (o) => o.qa.type);
      const byGrid = groupBy(inDist, GRID_NAMES, (o) => o.grid);
      console.log(`\nin-distribution exact match: ${percent(tally(inDist))}`);
      console.log(table('per question type:', byType));
      console.log(table('per crop grid (rows x cols):', byGrid));
      printMisses(inDist, 10);
      const summary = (groups: Map<string, Outcome[]>) =>
        Object.fromEntries([...groups].map(([k, v]) => [k, tally(v)]));
      report.inDistribution = {
        overall: tally(inDist),
        byType: summary(byType),
        byGrid: summary(byGrid),
      };
    }

    // 2. Robustness.
    if (robustCount > 0) {
      console.log('\nrobustness (held-out conditions):');
      const robustness: Record<string, Tally> = {};
      for (const condition of conditions) {
        const outcomes = await runCondition(engine, seed, condition, robustCount, sizingMode);
        robustness[condition.name] = tally(outcomes);
        console.log(`  ${condition.name.padEnd(18)} ${percent(tally(outcomes))}`);
        if (values.conditions !== undefined) printMisses(outcomes, 20);
      }
      report.robustness = robustness;
    }

    // 3. The classic scene at three sizes.
    console.log('\nclassic scene (the example harness), four checks:');
    const classic: Record<string, Tally> = {};
    for (const k of [1, 3, 6]) {
      const { image, description, marks } = await renderMarkedScene(undefined, undefined, k);
      const sizing = markSizing(
        image.width,
        image.height,
        engine.info,
        engine.info.markMinimums,
        sizingMode,
      );
      const name = `${image.width}x${image.height}`;
      const outcomes = await ask(
        engine,
        drawMarks(image, marks, sizing),
        classicQuestions(description),
        name,
      );
      classic[name] = tally(outcomes);
      console.log(`  ${name.padEnd(18)} ${percent(tally(outcomes))}`);
      printMisses(outcomes, 4);
    }
    report.classic = classic;
  } finally {
    await engine.close();
  }
  console.log(`\n${((Date.now() - started) / 1000).toFixed(0)} s`);
  if (values.json) writeFileSync(values.json, JSON.stringify(report, null, 2) + '\n');
  if (values.record) {
    const configPath = resolve(values.model, 'config.json');
    const config = JSON.parse(readFileSync(configPath, 'utf8')) as {
      revision: string;
      magma_som?: Record<string, unknown>;
    };
    const inDistribution = report.inDistribution as { overall: Tally };
    config.magma_som = {
      ...config.magma_som,
      eval: {
        revision: config.revision,
        seed,
        in_distribution: inDistribution.overall,
        robustness: report.robustness,
        classic: report.classic,
      },
    };
    writeFileSync(configPath, JSON.stringify(config, null, 2) + '\n');
    console.log(`recorded in ${configPath}`);
  }
}

/** The robustness conditions named in a comma-separated list; all of them without one. */
function pickConditions(list: string | undefined): typeof ROBUSTNESS_CONDITIONS {
  if (list === undefined) return ROBUSTNESS_CONDITIONS;
  const names = list.split(',').map((name) => name.trim());
  for (const name of names) {
    if (!ROBUSTNESS_CONDITIONS.some((condition) => condition.name === name))
      throw new Error(
        `--conditions: no condition ${JSON.stringify(name)}; there are ` +
          ROBUSTNESS_CONDITIONS.map((condition) => condition.name).join(', '),
      );
  }
  return ROBUSTNESS_CONDITIONS.filter((condition) => names.includes(condition.name));
}

await main();
