/**
 * The eval's scene streams, from a seed range disjoint from training (splits.ts; the trainer
 * refuses data that overlaps it). `npm run eval` and the held-out scenes test both read them,
 * so the test's sample is exactly the start of what the eval measures.
 *
 * - The in-distribution stream: scenes drawn like the training data (broad world, training
 *   wordings), one question per type, the grids in turn.
 * - Robustness conditions: held-out sets that each fix one condition (an image size, a
 *   background, JPEG quality, wordings never seen in training, the old classic world), every
 *   other property drawn as in training. Each has its own seed block.
 */
import type { BackgroundKind } from '../scenes/index.js';
import { canonicalPhrase, sampleQuestions } from './questions.js';
import type { Phrase, QuestionAnswer } from './questions.js';
import { BROAD_GRIDS, CLASSIC_GRIDS, sampleMarkedScene } from './sample-scene.js';
import type { GridName, MarkedScene, SceneConditions } from './sample-scene.js';
import { sceneRng } from './splits.js';
import { BASE_WORDINGS, HELDOUT_WORDINGS, TRAIN_WORDINGS, randomPhrase } from './wordings.js';
import type { Rng } from '../scenes/index.js';
import type { MarkSizingMode } from '../../packages/server/src/images/mark-sizing.js';

/**
 * How a set's questions are worded: 'train' as training draws them (every frame, with its noise),
 * 'base' from the base frames only (the visual conditions, so they vary one thing and stay
 * comparable across revisions), 'heldout' never seen in training, 'canonical' the templates.
 */
export type Wording = 'train' | 'base' | 'heldout' | 'canonical';

export interface EvalCondition {
  readonly name: string;
  /** What the condition varies, for the report's grouping. */
  readonly group: 'size' | 'background' | 'jpeg' | 'wording' | 'world';
  readonly scene: SceneConditions;
  readonly wording: Wording;
}

export const IN_DISTRIBUTION: EvalCondition = {
  name: 'in-distribution',
  group: 'world',
  scene: {},
  wording: 'train',
};

const size = (width: number, height: number): EvalCondition => ({
  name: `${width}x${height}`,
  group: 'size',
  scene: { size: { width, height } },
  wording: 'base',
});
const background = (kind: BackgroundKind): EvalCondition => ({
  name: `${kind} bg`,
  group: 'background',
  scene: { background: kind },
  wording: 'base',
});

/** Each condition's scenes use seed block (position + 1) of the eval split: never reorder, only append. */
export const ROBUSTNESS_CONDITIONS: readonly EvalCondition[] = [
  size(96, 96),
  size(640, 480),
  size(1024, 768),
  size(1600, 1200),
  size(1920, 1080),
  size(4000, 3000),
  size(1500, 500),
  size(400, 1200),
  background('light'),
  background('dark'),
  background('saturated'),
  background('gradient'),
  background('noise'),
  background('cluttered'),
  { name: 'JPEG q40', group: 'jpeg', scene: { jpegQuality: 40 }, wording: 'base' },
  { name: 'unseen wordings', group: 'wording', scene: {}, wording: 'heldout' },
  { name: 'canonical wording', group: 'wording', scene: {}, wording: 'canonical' },
  { name: 'classic world', group: 'world', scene: { world: 'classic' }, wording: 'canonical' },
];

/** Scenes per seed block: the in-distribution stream and each condition index below this. */
export const EVAL_BLOCK = 10_000;

export interface EvalScene {
  readonly grid: GridName;
  readonly scene: MarkedScene;
  readonly questions: QuestionAnswer[];
}

function phraseFor(rng: Rng, wording: Wording): Phrase {
  if (wording === 'canonical') return canonicalPhrase;
  if (wording === 'train') return randomPhrase(rng, TRAIN_WORDINGS, true);
  return randomPhrase(rng, wording === 'base' ? BASE_WORDINGS : HELDOUT_WORDINGS);
}

/** Scene `index` of `condition` (the in-distribution stream by default) for eval seed `seed`. */
export async function evalScene(
  seed: number,
  index: number,
  condition: EvalCondition = IN_DISTRIBUTION,
  markSizing: MarkSizingMode = 'model',
): Promise<EvalScene> {
  if (!(index >= 0 && index < EVAL_BLOCK)) throw new RangeError(`eval scene index ${index}`);
  const block = condition === IN_DISTRIBUTION ? 0 : ROBUSTNESS_CONDITIONS.indexOf(condition) + 1;
  if (block < 0) throw new RangeError(`unknown eval condition ${condition.name}`);
  const rng = sceneRng(seed, 'eval', block * EVAL_BLOCK + index);
  // Equal share per crop grid, so each grid's accuracy rests on enough questions.
  const grids = condition.scene.world === 'classic' ? CLASSIC_GRIDS : BROAD_GRIDS;
  const grid = grids[index % grids.length] as GridName;
  const scene = await sampleMarkedScene(rng, grid, { ...condition.scene, markSizing });
  const questions = sampleQuestions(scene.description, rng, 1, phraseFor(rng, condition.wording));
  return { grid: scene.grid, scene, questions };
}
