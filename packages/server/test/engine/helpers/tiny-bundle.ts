import { cpSync, existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RgbImage } from '../../../src/images/types.js';

/** The model shipped in the repository (models/magma-tiny-som), resolved from the repo root. */
export const TINY_BUNDLE = fileURLToPath(
  new URL('../../../../../models/magma-tiny-som', import.meta.url),
);

export const hasTinyBundle =
  existsSync(join(TINY_BUNDLE, 'config.json')) &&
  existsSync(join(TINY_BUNDLE, 'onnx', 'decoder_model_merged.onnx'));

/** A private copy of the tiny bundle that a test may break. */
export function copyTinyBundle(): string {
  const dir = mkdtempSync(join(tmpdir(), 'magma-bundle-'));
  cpSync(TINY_BUNDLE, dir, { recursive: true });
  return dir;
}

/** Deterministic pseudo-random RGB pixels. */
export function noiseImage(width: number, height: number, seed = 1): RgbImage {
  const data = new Uint8Array(width * height * 3);
  let state = seed >>> 0;
  for (let i = 0; i < data.length; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    data[i] = state >>> 24;
  }
  return { data, width, height };
}
