/**
 * Writes magma-tiny-som's training and held-out data, deterministically from one seed.
 *
 *   node --import tsx tools/tiny-model/generate-data.ts [--seed 1] [--train 24000] [--heldout 600] [--out tools/tiny-model/data]
 *
 * Per split: `<split>.rgb` (all marked images, interleaved RGB bytes, back to back) and
 * `<split>.jsonl` (one scene per line: byte offset, size, crop grid, and its questions with token
 * ids). `meta.json` holds the shared prompt prefix ids and the special ids the trainer needs.
 */
import { closeSync, mkdirSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { PromptIdsBuilder } from './prompt-ids.js';
import { MAX_MARKS, sampleQuestions } from './questions.js';
import { sampleMarkedScene } from './sample-scene.js';
import { pickGrid, sceneRng } from './splits.js';

const here = dirname(fileURLToPath(import.meta.url));
const MODEL_DIR = resolve(here, '../../models/magma-tiny-som');

function writeSplit(
  builder: PromptIdsBuilder,
  outDir: string,
  split: 'train' | 'heldout',
  seed: number,
  count: number,
) {
  const rgbFd = openSync(join(outDir, `${split}.rgb`), 'w');
  const lines: string[] = [];
  let offset = 0;
  const prefix = builder.split('?').prefix.join(',');
  for (let i = 0; i < count; i++) {
    const rng = sceneRng(seed, split, i);
    const scene = sampleMarkedScene(rng, pickGrid(rng));
    const qas = sampleQuestions(scene.description, rng, 2).map((qa) => {
      const ids = builder.split(qa.question);
      if (ids.prefix.join(',') !== prefix)
        throw new Error(`prompt prefix differs for ${qa.question}`);
      return { ...qa, suffix_ids: ids.suffix, answer_ids: builder.answerIds(qa.answer) };
    });
    writeSync(rgbFd, scene.image.data);
    const [rows, cols] = scene.grid.split('x').map(Number);
    lines.push(
      JSON.stringify({
        offset,
        width: scene.image.width,
        height: scene.image.height,
        rows,
        cols,
        // Shapes with their marks: the trainer's auxiliary per-cell targets.
        objects: scene.description.objects,
        marks: scene.drawn,
        qas,
      }),
    );
    offset += scene.image.data.length;
    if ((i + 1) % 2000 === 0) console.log(`${split}: ${i + 1}/${count} scenes`);
  }
  closeSync(rgbFd);
  writeFileSync(join(outDir, `${split}.jsonl`), lines.join('\n') + '\n');
  return {
    scenes: count,
    questions: lines.reduce((n, l) => n + (JSON.parse(l) as { qas: unknown[] }).qas.length, 0),
  };
}

function main(): void {
  const { values } = parseArgs({
    options: {
      seed: { type: 'string', default: '1' },
      train: { type: 'string', default: '24000' },
      heldout: { type: 'string', default: '600' },
      out: { type: 'string', default: join(here, 'data') },
    },
  });
  const seed = Number(values.seed);
  const outDir = resolve(values.out);
  mkdirSync(outDir, { recursive: true });
  const builder = new PromptIdsBuilder(MODEL_DIR);
  const prefix = builder.split('?').prefix;
  const meta = {
    seed,
    prefix_ids: prefix,
    image_token_id: builder.imageId,
    eot_id: builder.eotId,
    mark_ref_ids: builder.markRefIds(MAX_MARKS),
    crop_size: 128,
    max_crops: 4,
  };
  writeFileSync(join(outDir, 'meta.json'), JSON.stringify(meta, null, 2) + '\n');
  const started = Date.now();
  const heldout = writeSplit(builder, outDir, 'heldout', seed, Number(values.heldout));
  const train = writeSplit(builder, outDir, 'train', seed, Number(values.train));
  console.log(
    `wrote ${outDir}: train ${train.scenes} scenes / ${train.questions} questions, ` +
      `heldout ${heldout.scenes} / ${heldout.questions} in ${((Date.now() - started) / 1000).toFixed(1)} s`,
  );
}

main();
