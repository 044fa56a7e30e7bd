/**
 * The held-out eval stream: scene `index` of seed `seed`, from a seed range disjoint from
 * training, with one question per type. `npm run eval` and the held-out scenes test both read
 * it, so the test's sample is exactly the start of what the eval measures.
 */
import { sampleQuestions } from './questions.js';
import type { QuestionAnswer } from './questions.js';
import { GRID_NAMES, sampleMarkedScene } from './sample-scene.js';
import type { GridName, MarkedScene } from './sample-scene.js';
import { sceneRng } from './splits.js';

export interface EvalScene {
  readonly grid: GridName;
  readonly scene: MarkedScene;
  readonly questions: QuestionAnswer[];
}

export function evalScene(seed: number, index: number): EvalScene {
  const rng = sceneRng(seed, 'eval', index);
  // Equal share per crop grid, so each grid's accuracy rests on enough questions.
  const grid = GRID_NAMES[index % GRID_NAMES.length] as GridName;
  const scene = sampleMarkedScene(rng, grid);
  return { grid, scene, questions: sampleQuestions(scene.description, rng, 1) };
}
