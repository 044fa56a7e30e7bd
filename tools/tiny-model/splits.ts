/** Seeds of the data splits: one seed gives disjoint train, held-out and eval scene streams. */
import { createRng } from '../scenes/index.js';
import type { Rng } from '../scenes/index.js';
import { GRID_NAMES } from './sample-scene.js';
import type { GridName } from './sample-scene.js';

/** Share of each crop grid in the training data: the big 2x2 scenes are the costliest to train on. */
const GRID_WEIGHTS: Record<GridName, number> = { '1x1': 0.4, '1x2': 0.15, '2x1': 0.15, '2x2': 0.3 };

/** Seed offsets keep the splits disjoint. */
export const SPLIT_SEED_OFFSET = { train: 0, heldout: 50_000_000, eval: 90_000_000 } as const;
export type SplitName = keyof typeof SPLIT_SEED_OFFSET;

export function sceneRng(seed: number, split: SplitName, index: number): Rng {
  return createRng((seed * 1_000_003 + SPLIT_SEED_OFFSET[split] + index) >>> 0);
}

export function pickGrid(rng: Rng): GridName {
  let r = rng();
  for (const g of GRID_NAMES) {
    r -= GRID_WEIGHTS[g];
    if (r < 0) return g;
  }
  return '2x2';
}
