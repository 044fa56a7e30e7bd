/**
 * Writes magma-tiny-som's training and held-out data, deterministically from one seed.
 *
 *   node --import tsx tools/tiny-model/generate-data.ts [--seed 1] [--train 24000] [--heldout 600]
 *       [--out tools/tiny-model/data] [--tokenizer models/magma-tiny-som] [--shard 0/1]
 *
 * Scenes come from the broad world (sample-scene.ts): real image sizes, many backgrounds, JPEG
 * artefacts, the training wordings. Each image is stored as the model sees it: stretched to its
 * crop grid by the engine's own bilinear resize (rows*128 x cols*128), so a 2000 px scene costs
 * the same disk and training time as a 256 px one; coordinates are scaled to match.
 *
 * Per split: `<split>.rgb` (all model-resolution images, interleaved RGB bytes, back to back) and
 * `<split>.jsonl` (one scene per line: byte offset, size, crop grid, objects, drawn marks and its
 * questions with token ids). `meta.json` holds the shared prompt prefix ids, the special ids the
 * trainer needs and the seed ranges used (so the eval's range can be checked to be disjoint).
 * `--shard i/n` writes every n-th scene from i into `<split>.<i>.*`; `--merge n` joins n shards.
 */
import { closeSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { resizeNormalized } from '../../packages/server/src/engine/image-processor.js';
import type { RgbImage } from '../../packages/server/src/images/types.js';
import { PromptIdsBuilder } from './prompt-ids.js';
import { MAX_MARKS, sampleQuestions } from './questions.js';
import { CROP_SIZE, sampleMarkedScene } from './sample-scene.js';
import type { MarkedScene } from './sample-scene.js';
import { SPLIT_SEED_OFFSET, pickGrid, sceneRng, seedRange } from './splits.js';
import { TRAIN_WORDINGS, randomPhrase } from './wordings.js';

const here = dirname(fileURLToPath(import.meta.url));
const MODEL_DIR = resolve(here, '../../models/magma-tiny-som');

type Split = 'train' | 'heldout';

/** The image stretched to its crop grid exactly as the engine does it (bilinear, half-pixel centres), as bytes. */
function toModelResolution(image: RgbImage, rows: number, cols: number): RgbImage {
  const width = cols * CROP_SIZE;
  const height = rows * CROP_SIZE;
  // mean 0, std 1/255: the engine's resize with normalisation switched off (values stay 0..255).
  const identity = 1 / 255;
  const planar = resizeNormalized(image, width, height, [0, 0, 0], [identity, identity, identity]);
  const plane = width * height;
  const data = new Uint8Array(plane * 3);
  for (let p = 0; p < plane; p++) {
    for (let c = 0; c < 3; c++) data[p * 3 + c] = Math.round(planar[c * plane + p]!);
  }
  return { data, width, height };
}

function sceneLine(scene: MarkedScene, offset: number, qas: unknown[]): string {
  const [rows, cols] = scene.grid.split('x').map(Number) as [number, number];
  const sx = (cols * CROP_SIZE) / scene.image.width;
  const sy = (rows * CROP_SIZE) / scene.image.height;
  const rect = (r: { x: number; y: number; width: number; height: number }) => ({
    x: r.x * sx,
    y: r.y * sy,
    width: r.width * sx,
    height: r.height * sy,
  });
  return JSON.stringify({
    offset,
    width: cols * CROP_SIZE,
    height: rows * CROP_SIZE,
    rows,
    cols,
    source: {
      width: scene.image.width,
      height: scene.image.height,
      background: scene.background,
      jpeg: scene.jpegQuality,
    },
    // Shapes with their marks, in model pixels: the trainer's auxiliary per-cell targets.
    objects: scene.description.objects.map((o) => ({ ...o, cx: o.cx * sx, cy: o.cy * sy })),
    marks: scene.drawn.map((d) => ({ label: d.label, box: rect(d.box), text: rect(d.text) })),
    qas,
  });
}

async function writeSplit(
  builder: PromptIdsBuilder,
  outDir: string,
  split: Split,
  seed: number,
  count: number,
  shard: { index: number; count: number },
): Promise<void> {
  const suffix = shard.count > 1 ? `.${shard.index}` : '';
  const rgbFd = openSync(join(outDir, `${split}${suffix}.rgb`), 'w');
  const lines: string[] = [];
  let offset = 0;
  const prefix = builder.split('?').prefix.join(',');
  for (let i = shard.index; i < count; i += shard.count) {
    const rng = sceneRng(seed, split, i);
    const scene = await sampleMarkedScene(rng, pickGrid(rng));
    const phrase = randomPhrase(rng, TRAIN_WORDINGS, true);
    const qas = sampleQuestions(scene.description, rng, 2, phrase).map((qa) => {
      const ids = builder.split(qa.question);
      if (ids.prefix.join(',') !== prefix)
        throw new Error(`prompt prefix differs for ${qa.question}`);
      return { ...qa, suffix_ids: ids.suffix, answer_ids: builder.answerIds(qa.answer) };
    });
    const [rows, cols] = scene.grid.split('x').map(Number) as [number, number];
    const image = toModelResolution(scene.image, rows, cols);
    writeSync(rgbFd, image.data);
    lines.push(sceneLine(scene, offset, qas));
    offset += image.data.length;
    if ((i + 1) % 2000 < shard.count) console.log(`${split}: ${i + 1}/${count} scenes`);
  }
  closeSync(rgbFd);
  writeFileSync(join(outDir, `${split}${suffix}.jsonl`), lines.join('\n') + '\n');
}

/** Joins shards back into scene order (scene i is in shard i % n, at position floor(i / n)). */
function mergeShards(outDir: string, split: Split, shards: number): number {
  const parts = Array.from({ length: shards }, (_, k) => ({
    rgb: readFileSync(join(outDir, `${split}.${k}.rgb`)),
    lines: readFileSync(join(outDir, `${split}.${k}.jsonl`), 'utf8')
      .trim()
      .split('\n'),
  }));
  const rgbFd = openSync(join(outDir, `${split}.rgb`), 'w');
  const lines: string[] = [];
  let offset = 0;
  for (let i = 0; ; i++) {
    const part = parts[i % shards]!;
    const line = part.lines[Math.floor(i / shards)];
    if (line === undefined) break;
    const scene = JSON.parse(line) as { offset: number; width: number; height: number };
    const bytes = scene.width * scene.height * 3;
    writeSync(rgbFd, part.rgb.subarray(scene.offset, scene.offset + bytes));
    lines.push(JSON.stringify({ ...scene, offset }));
    offset += bytes;
  }
  closeSync(rgbFd);
  writeFileSync(join(outDir, `${split}.jsonl`), lines.join('\n') + '\n');
  for (let k = 0; k < shards; k++) {
    rmSync(join(outDir, `${split}.${k}.rgb`));
    rmSync(join(outDir, `${split}.${k}.jsonl`));
  }
  return lines.length;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      seed: { type: 'string', default: '1' },
      train: { type: 'string', default: '24000' },
      heldout: { type: 'string', default: '600' },
      out: { type: 'string', default: join(here, 'data') },
      tokenizer: { type: 'string', default: MODEL_DIR },
      shard: { type: 'string', default: '0/1' },
      merge: { type: 'string' },
    },
  });
  const seed = Number(values.seed);
  const outDir = resolve(values.out);
  mkdirSync(outDir, { recursive: true });
  const builder = new PromptIdsBuilder(resolve(values.tokenizer));
  const counts = { train: Number(values.train), heldout: Number(values.heldout) };
  if (values.merge !== undefined) {
    const n = Number(values.merge);
    for (const split of ['heldout', 'train'] as const) {
      console.log(`${split}: merged ${mergeShards(outDir, split, n)} scenes`);
    }
  } else {
    const [index, count] = values.shard.split('/').map(Number) as [number, number];
    const started = Date.now();
    for (const split of ['heldout', 'train'] as const) {
      await writeSplit(builder, outDir, split, seed, counts[split], { index, count });
    }
    console.log(
      `shard ${index}/${count} written in ${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
    if (count > 1) return;
  }
  const meta = {
    seed,
    world: 'broad',
    // First and last scene seed of each split: the trainer refuses data overlapping the eval's.
    seed_ranges: {
      train: seedRange(seed, 'train', counts.train),
      heldout: seedRange(seed, 'heldout', counts.heldout),
    },
    split_seed_offsets: SPLIT_SEED_OFFSET,
    prefix_ids: builder.split('?').prefix,
    image_token_id: builder.imageId,
    eot_id: builder.eotId,
    mark_ref_ids: builder.markRefIds(MAX_MARKS),
    crop_size: CROP_SIZE,
    max_crops: 4,
  };
  writeFileSync(join(outDir, 'meta.json'), JSON.stringify(meta, null, 2) + '\n');
  console.log(`wrote ${outDir}/meta.json`);
}

await main();
