import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  preprocessImage,
  resizeNormalized,
  resizeImplementation,
  resizeNormalizedCrops,
  selectCropGrid,
  stitchImageFeatures,
  visualTokenCount,
} from '../../src/engine/image-processor.js';
import { loadAddon } from '../../src/native/load-addon.js';

interface ResizeCase {
  width: number;
  height: number;
  outWidth: number;
  outHeight: number;
  pixels: number[];
  expected: number[];
}
interface StitchCase {
  rows: number;
  cols: number;
  g: number;
  hidden: number;
  cells: number[];
  separator: number[];
  expected: number[];
}
interface GridCase {
  width: number;
  height: number;
  crop: number;
  numCrops: number;
  rows: number;
  cols: number;
}
interface Fixture {
  mean: [number, number, number];
  std: [number, number, number];
  resize: ResizeCase[];
  stitch: StitchCase[];
  grids: GridCase[];
}

// Written by tools/reference/make_resize_fixtures.py with torch 1.13.
const fixture = JSON.parse(
  readFileSync(new URL('../fixtures/resize-reference.json', import.meta.url), 'utf8'),
) as Fixture;

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
}

describe('selectCropGrid (S=512, 4 crops)', () => {
  it.each([
    [512, 512, 1, 1, 272],
    [256, 256, 1, 1, 272],
    [640, 480, 1, 2, 528],
    [1920, 1080, 2, 2, 1056],
    [800, 600, 2, 2, 1056],
    [750, 1334, 2, 2, 1056],
    [1080, 2400, 3, 1, 816],
    [2048, 512, 1, 4, 1040],
  ])('%ix%i -> %ix%i grid, %i visual tokens', (width, height, rows, cols, tokens) => {
    const grid = selectCropGrid(width, height, 512, 4);
    expect(grid).toEqual({ rows, cols });
    expect(visualTokenCount(grid, 16)).toBe(tokens);
  });

  it('agrees with the Python select_best_resolution on random sizes', () => {
    expect(fixture.grids.length).toBeGreaterThan(10);
    for (const c of fixture.grids) {
      expect(selectCropGrid(c.width, c.height, c.crop, c.numCrops), JSON.stringify(c)).toEqual({
        rows: c.rows,
        cols: c.cols,
      });
    }
  });

  it('never exceeds the crop budget', () => {
    for (const [w, h] of [
      [100, 5000],
      [5000, 100],
      [3000, 3000],
    ] as const) {
      const grid = selectCropGrid(w, h, 128, 4);
      expect(grid.rows * grid.cols).toBeLessThanOrEqual(4);
    }
  });
});

describe('resizeNormalized matches torch F.interpolate(bilinear, align_corners=False)', () => {
  it.each(
    fixture.resize.map(
      (c) => [`${c.width}x${c.height} -> ${c.outWidth}x${c.outHeight}`, c] as const,
    ),
  )('%s', (_name, c) => {
    const image = { data: Uint8Array.from(c.pixels), width: c.width, height: c.height };
    const out = resizeNormalized(image, c.outWidth, c.outHeight, fixture.mean, fixture.std);
    expect(maxAbsDiff(out, c.expected)).toBeLessThanOrEqual(1e-5);
  });

  it('gives the floats of the plain four-tap formula, bit for bit, on every path', () => {
    // torch's source coordinate per output index, and the four-tap blend written plainly
    const tap = (inSize: number, outSize: number, o: number) => {
      const source = Math.max((inSize / outSize) * (o + 0.5) - 0.5, 0);
      const low = Math.floor(source);
      return { low, high: low < inSize - 1 ? low + 1 : low, weight: source - low };
    };
    const plain = (
      image: { data: Uint8Array; width: number; height: number },
      w: number,
      h: number,
    ) => {
      const out = new Float32Array(3 * w * h);
      for (let y = 0; y < h; y++)
        for (let x = 0; x < w; x++)
          for (let c = 0; c < 3; c++) {
            const ty = tap(image.height, h, y);
            const tx = tap(image.width, w, x);
            const at = (row: number, col: number) => image.data[(row * image.width + col) * 3 + c]!;
            const top = at(ty.low, tx.low) * (1 - tx.weight) + at(ty.low, tx.high) * tx.weight;
            const bottom = at(ty.high, tx.low) * (1 - tx.weight) + at(ty.high, tx.high) * tx.weight;
            const value = top * (1 - ty.weight) + bottom * ty.weight;
            out[c * w * h + y * w + x] =
              value * (1 / (255 * fixture.std[c]!)) + -fixture.mean[c]! / fixture.std[c]!;
          }
      return out;
    };
    // 3x down (every output row on a source row), 2.5x down, up, identity, a single column
    const shapes = [
      [24, 18, 8, 6],
      [20, 20, 8, 8],
      [7, 5, 16, 12],
      [12, 30, 12, 30],
      [1, 9, 4, 3],
    ] as const;
    for (const [width, height, w, h] of shapes) {
      const data = Uint8Array.from({ length: width * height * 3 }, (_, i) => (i * 53 + 11) % 256);
      const image = { data, width, height };
      // the C loops (when built) and the JavaScript ones
      for (const native of [true, false]) {
        const out = resizeNormalized(image, w, h, fixture.mean, fixture.std, { native });
        expect(Array.from(out), `${width}x${height} -> ${w}x${h}, native ${native}`).toEqual(
          Array.from(plain(image, w, h)),
        );
      }
    }
  });

  it('rejects a buffer whose size does not match the dimensions', () => {
    const image = { data: new Uint8Array(10), width: 2, height: 2 };
    expect(() => resizeNormalized(image, 4, 4, fixture.mean, fixture.std)).toThrow(/expected 12/);
  });
});

describe('the resize in C (native/resize-normalize.c)', () => {
  const settings = (cropSize: number) => ({
    cropSize,
    maxCrops: 4,
    imageMean: fixture.mean,
    imageStd: fixture.std,
  });
  /** Random bytes, seeded, in a view that does not start at its buffer's start. */
  function randomImage(width: number, height: number, seed: number) {
    const buffer = new Uint8Array(width * height * 3 + 7);
    let state = seed;
    for (let i = 0; i < buffer.length; i++) {
      state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
      buffer[i] = state >>> 24;
    }
    return { data: buffer.subarray(5, 5 + width * height * 3), width, height };
  }

  it('is built (npm ci and npm test build it where a C compiler is)', () => {
    expect(resizeImplementation()).toEqual({ native: true });
  });

  it("gives the JavaScript loops' floats, bit for bit, at real image sizes and both bundles' crop sizes", () => {
    const sizes = [
      [1024, 768, 128],
      [640, 480, 128],
      [1500, 500, 128],
      [97, 301, 128],
      [1, 1, 128],
      [1024, 768, 512],
      [333, 1000, 512],
    ] as const;
    for (const [index, [width, height, cropSize]] of sizes.entries()) {
      const image = randomImage(width, height, index + 1);
      const c = preprocessImage(image, settings(cropSize));
      const js = preprocessImage(image, settings(cropSize), { native: false });
      expect(c.grid).toEqual(js.grid);
      // compared as bytes: equal floats, and no NaN hiding a difference
      const bytes = (values: Float32Array) => Buffer.from(values.buffer);
      expect(
        bytes(c.pixelValues).equals(bytes(js.pixelValues)),
        `${width}x${height} at S=${cropSize}`,
      ).toBe(true);
    }
  });

  it('refuses offsets outside its buffers with an error instead of reading or writing there', () => {
    const { addon } = loadAddon<{ resize(...args: unknown[]): void }>('resize-normalize');
    const resize = addon!.resize;
    const src = new Uint8Array(4 * 4 * 3);
    const ok = (): unknown[] => [
      src,
      12,
      Int32Array.of(0, 6),
      Int32Array.of(3, 9),
      Float64Array.of(0.5, 0.5),
      Float64Array.of(0.5, 0.5),
      Int32Array.of(0, 2),
      Int32Array.of(1, 3),
      Float64Array.of(0.5, 0.5),
      Int32Array.of(0, 2),
      Int32Array.of(0, 1),
      4,
      new Float64Array(6),
      new Float32Array(12),
    ];
    expect(() => resize(...ok())).not.toThrow();
    const broken = (index: number, value: unknown) => {
      const args = ok();
      args[index] = value;
      return () => resize(...args);
    };
    expect(broken(2, Int32Array.of(0, 10))).toThrow(RangeError); // past the row (10 + 2 >= 12)
    expect(broken(3, Int32Array.of(3, -3))).toThrow(RangeError);
    expect(broken(7, Int32Array.of(1, 4))).toThrow(RangeError); // a fifth row of four
    expect(broken(9, Int32Array.of(0, 9))).toThrow(RangeError); // 9 + 1 + 2 * 4 >= 12 values
    expect(broken(11, 5)).toThrow(RangeError);
    expect(broken(4, Float64Array.of(0.5))).toThrow(RangeError); // lengths differ
    expect(broken(1, 5)).toThrow(RangeError); // 48 bytes are not rows of 5
    expect(broken(13, new Float64Array(12))).toThrow(TypeError);
    expect(broken(0, [1, 2, 3])).toThrow(TypeError);
    expect(() => resize(src)).toThrow(TypeError);
  });
});

describe('resizeNormalizedCrops', () => {
  it('writes the planar result as crops of a 2x3 grid, row-major, each crop channel-planar', () => {
    const S = 4;
    const grid = { rows: 2, cols: 3 };
    const width = grid.cols * S;
    const height = grid.rows * S;
    // a 17x11 image of distinct bytes, stretched to 12x8
    const image = {
      data: Uint8Array.from({ length: 17 * 11 * 3 }, (_, i) => (i * 37) % 256),
      width: 17,
      height: 11,
    };
    const planar = resizeNormalized(image, width, height, fixture.mean, fixture.std);
    const settings = { cropSize: S, maxCrops: 6, imageMean: fixture.mean, imageStd: fixture.std };
    const crops = resizeNormalizedCrops(image, grid, settings);
    expect(crops.length).toBe(planar.length);
    // crop k = r*cols + c holds rows r*S.., cols c*S..: the same float, bit for bit
    for (let r = 0; r < grid.rows; r++)
      for (let c = 0; c < grid.cols; c++)
        for (let ch = 0; ch < 3; ch++)
          for (let y = 0; y < S; y++)
            for (let x = 0; x < S; x++) {
              const k = r * grid.cols + c;
              expect(crops[((k * 3 + ch) * S + y) * S + x]).toBe(
                planar[(ch * height + r * S + y) * width + c * S + x],
              );
            }
  });
});

describe('preprocessImage', () => {
  it('stretches a 4:3 image to a 1x2 grid of crops', () => {
    // 160x120 at S=128 is 640x480 at S=512 scaled by 1/4
    const image = { data: new Uint8Array(160 * 120 * 3).fill(255), width: 160, height: 120 };
    const out = preprocessImage(image, {
      cropSize: 128,
      maxCrops: 4,
      imageMean: fixture.mean,
      imageStd: fixture.std,
    });
    expect(out.grid).toEqual({ rows: 1, cols: 2 });
    expect(out.pixelValues.length).toBe(2 * 3 * 128 * 128);
    // white normalizes to (1 - mean) / std in every channel
    expect(out.pixelValues[0]).toBeCloseTo((1 - fixture.mean[0]) / fixture.std[0], 5);
    expect(out.pixelValues[2 * 3 * 128 * 128 - 1]).toBeCloseTo(
      (1 - fixture.mean[2]) / fixture.std[2],
      5,
    );
  });
});

describe('stitchImageFeatures matches Magma view/permute/cat', () => {
  it.each(fixture.stitch.map((c) => [`${c.rows}x${c.cols} grid, g=${c.g}`, c] as const))(
    '%s',
    (_name, c) => {
      const out = stitchImageFeatures(
        Float32Array.from(c.cells),
        Float32Array.from(c.separator),
        { rows: c.rows, cols: c.cols },
        c.g,
      );
      expect(out.length / c.hidden).toBe(visualTokenCount({ rows: c.rows, cols: c.cols }, c.g));
      expect(Array.from(out)).toEqual(c.expected);
    },
  );
});
