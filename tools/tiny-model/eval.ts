/**
 * Proof that magma-tiny-som reads Set-of-Mark through the real TypeScript engine: renders held-out
 * scenes (a seed range disjoint from training), asks the templated questions through `Engine`,
 * and prints exact-match accuracy per question type and per crop grid.
 *
 *   npm run eval -- [--scenes 100] [--seed 1] [--model models/magma-tiny-som] [--json out.json]
 */
import { writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Engine } from '../../packages/server/src/engine/engine.js';
import { evalScene } from './eval-scenes.js';
import { QUESTION_TYPES } from './questions.js';
import type { QuestionAnswer } from './questions.js';
import { GRID_NAMES } from './sample-scene.js';
import type { GridName } from './sample-scene.js';

const here = dirname(fileURLToPath(import.meta.url));

interface Outcome {
  readonly qa: QuestionAnswer;
  readonly grid: GridName;
  readonly got: string;
  readonly ok: boolean;
}

function table(title: string, groups: Map<string, Outcome[]>): string {
  const lines = [title];
  for (const [name, list] of groups) {
    const ok = list.filter((o) => o.ok).length;
    lines.push(
      `  ${name.padEnd(10)} ${((100 * ok) / list.length).toFixed(1).padStart(5)}%  (${ok}/${list.length})`,
    );
  }
  return lines.join('\n');
}

function groupBy(
  outcomes: Outcome[],
  keys: readonly string[],
  keyOf: (o: Outcome) => string,
): Map<string, Outcome[]> {
  const groups = new Map<string, Outcome[]>(keys.map((k) => [k, []]));
  for (const o of outcomes) groups.get(keyOf(o))?.push(o);
  for (const [k, v] of groups) if (v.length === 0) groups.delete(k);
  return groups;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      scenes: { type: 'string', default: '100' },
      seed: { type: 'string', default: '1' },
      model: { type: 'string', default: resolve(here, '../../models/magma-tiny-som') },
      json: { type: 'string' },
    },
  });
  const sceneCount = Number(values.scenes);
  const seed = Number(values.seed);
  const engine = await Engine.start({
    modelDir: resolve(values.model),
    executionProvider: 'cpu',
    maxBatchSize: 8,
  });
  console.log(
    `model ${engine.info.name} revision ${engine.info.revision}; ${sceneCount} held-out scenes (seed ${seed})`,
  );
  const started = Date.now();
  const outcomes: Outcome[] = [];
  try {
    for (let i = 0; i < sceneCount; i++) {
      const { grid, scene, questions: qas } = evalScene(seed, i);
      // One scene's questions run concurrently so the engine batches their decode steps.
      const results = await Promise.all(
        qas.map((qa) =>
          engine.generate({
            image: {
              data: scene.image.data.slice(),
              width: scene.image.width,
              height: scene.image.height,
            },
            prompt: qa.question,
            maxTokens: 48,
          }),
        ),
      );
      results.forEach((r, k) => {
        const qa = qas[k] as QuestionAnswer;
        const got = r.text.trim();
        outcomes.push({ qa, grid, got, ok: got === qa.answer });
      });
    }
  } finally {
    await engine.close();
  }
  const seconds = (Date.now() - started) / 1000;
  const ok = outcomes.filter((o) => o.ok).length;
  console.log(
    `\nexact match: ${((100 * ok) / outcomes.length).toFixed(1)}% (${ok}/${outcomes.length}) in ${seconds.toFixed(0)} s`,
  );
  const byType = groupBy(outcomes, QUESTION_TYPES, (o) => o.qa.type);
  const byGrid = groupBy(outcomes, GRID_NAMES, (o) => o.grid);
  console.log(table('per question type:', byType));
  console.log(table('per crop grid (rows x cols):', byGrid));
  const failures = outcomes.filter((o) => !o.ok).slice(0, 12);
  if (failures.length > 0) {
    console.log('some misses:');
    for (const f of failures)
      console.log(
        `  [${f.grid}] ${f.qa.question} -> ${JSON.stringify(f.got)} (want ${JSON.stringify(f.qa.answer)})`,
      );
  }
  if (values.json) {
    const summary = (groups: Map<string, Outcome[]>) =>
      Object.fromEntries(
        [...groups].map(([k, v]) => [
          k,
          { correct: v.filter((o) => o.ok).length, total: v.length },
        ]),
      );
    writeFileSync(
      values.json,
      JSON.stringify(
        {
          overall: { correct: ok, total: outcomes.length },
          byType: summary(byType),
          byGrid: summary(byGrid),
        },
        null,
        2,
      ),
    );
  }
}

await main();
