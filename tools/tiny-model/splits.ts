/** Seeds of the data splits: one seed gives disjoint train, held-out and eval scene streams. */
import { createRng } from '../scenes/index.js';
import type { Rng } from '../scenes/index.js';
import { BROAD_GRIDS } from './sample-scene.js';
import type { GridName } from './sample-scene.js';

/**
 * Share of each crop grid in the training data: the big 2x2 scenes are the costliest to train
 * on; 1x3 and 3x1 come from the 3:1 and 1:3 aspect ratios.
 */
const GRID_WEIGHTS: Partial<Record<GridName, number>> = {
  '1x1': 0.25,
  '1x2': 0.15,
  '2x1': 0.15,
  '2x2': 0.3,
  '1x3': 0.075,
  '3x1': 0.075,
};

/** Seed offsets keep the splits disjoint. */
export const SPLIT_SEED_OFFSET = { train: 0, heldout: 50_000_000, eval: 90_000_000 } as const;
export type SplitName = keyof typeof SPLIT_SEED_OFFSET;

function sceneSeed(seed: number, split: SplitName, index: number): number {
  return (seed * 1_000_003 + SPLIT_SEED_OFFSET[split] + index) >>> 0;
}

export function sceneRng(seed: number, split: SplitName, index: number): Rng {
  return createRng(sceneSeed(seed, split, index));
}

/** The rng seeds of scenes 0..count-1 of a split, as [first, last] (they are consecutive). */
export function seedRange(seed: number, split: SplitName, count: number): [number, number] {
  return [sceneSeed(seed, split, 0), sceneSeed(seed, split, Math.max(0, count - 1))];
}

export function pickGrid(rng: Rng): GridName {
  let r = rng();
  for (const g of BROAD_GRIDS) {
    r -= GRID_WEIGHTS[g] ?? 0;
    if (r < 0) return g;
  }
  return '2x2';
}
