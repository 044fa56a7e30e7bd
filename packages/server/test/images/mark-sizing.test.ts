import { describe, expect, it } from 'vitest';
import { selectCropGrid } from '../../src/engine/image-processor.js';
import { drawMarks } from '../../src/images/draw-marks.js';
import {
  fontSizeForTextHeight,
  layoutMarks,
  measureLabelText,
} from '../../src/images/mark-layout.js';
import {
  DEFAULT_MARK_MINIMUMS,
  magmaMarkSizing,
  markSizing,
  modelScale,
} from '../../src/images/mark-sizing.js';
import type { ModelResolution } from '../../src/images/mark-sizing.js';
import type { RgbImage } from '../../src/images/types.js';

const TINY: ModelResolution = { cropSize: 128, maxCrops: 4 };
const MAGMA_8B: ModelResolution = { cropSize: 512, maxCrops: 4 };

const SIZES: Array<[number, number]> = [
  [64, 64],
  [96, 96],
  [224, 168],
  [640, 480],
  [1024, 768],
  [1280, 720],
  [1920, 1080],
  [1500, 500],
  [400, 1200],
  [4000, 3000],
  [6000, 4000],
];

/** The drawn label's height: the "5" label box at the font the search picks. */
function labelHeight(labelTextHeight: number): number {
  return measureLabelText('5', fontSizeForTextHeight(labelTextHeight)).height;
}

describe('modelScale', () => {
  it('is the smaller stretch of the crop grid the processor picks', () => {
    // 1024x768 on magma-tiny-som: a 2x2 grid of 128 px crops, 256/1024 across, 256/768 down.
    expect(modelScale(1024, 768, TINY)).toBeCloseTo(0.25, 10);
    // 1920x1080 on Magma-8B: 2x2 of 512, 1024/1920 across.
    expect(modelScale(1920, 1080, MAGMA_8B)).toBeCloseTo(1024 / 1920, 10);
    // Small images are stretched up.
    expect(modelScale(96, 96, TINY)).toBeCloseTo(128 / 96, 10);
    for (const [w, h] of SIZES) {
      const g = selectCropGrid(w, h, TINY.cropSize, TINY.maxCrops);
      expect(modelScale(w, h, TINY)).toBeCloseTo(
        Math.min((g.cols * 128) / w, (g.rows * 128) / h),
        10,
      );
    }
  });
});

describe('markSizing', () => {
  for (const [name, model] of [
    ['magma-tiny-som', TINY],
    ['Magma-8B', MAGMA_8B],
  ] as const) {
    it(`reaches the declared minimum in ${name}'s model pixels at every image size`, () => {
      for (const [w, h] of SIZES) {
        const scale = modelScale(w, h, model);
        const sizing = markSizing(w, h, model);
        expect(
          labelHeight(sizing.labelTextHeight) * scale,
          `${w}x${h} label`,
        ).toBeGreaterThanOrEqual(DEFAULT_MARK_MINIMUMS.labelTextHeight - 1e-9);
        expect(sizing.outlineWidth * scale, `${w}x${h} outline`).toBeGreaterThanOrEqual(
          DEFAULT_MARK_MINIMUMS.outlineWidth - 1e-9,
        );
        expect(Number.isInteger(sizing.outlineWidth)).toBe(true);
      }
    });

    it(`never draws smaller than Magma's rule (${name})`, () => {
      for (const [w, h] of SIZES) {
        const magma = magmaMarkSizing(w, h);
        const sizing = markSizing(w, h, model);
        expect(sizing.labelTextHeight).toBeGreaterThanOrEqual(magma.labelTextHeight);
        expect(sizing.outlineWidth).toBeGreaterThanOrEqual(magma.outlineWidth);
      }
    });
  }

  it('keeps Magma rule where the model sees the image at full size or larger', () => {
    // The classic scene on the tiny model, and a 1024x768 screenshot on Magma-8B (scale 1).
    expect(markSizing(224, 168, TINY)).toEqual(magmaMarkSizing(224, 168));
    expect(markSizing(1024, 768, MAGMA_8B)).toEqual(magmaMarkSizing(1024, 768));
  });

  it('grows labels and outlines on large images: 1024x768 on magma-tiny-som', () => {
    const sizing = markSizing(1024, 768, TINY);
    expect(sizing.labelTextHeight).toBeCloseTo(64, 6);
    expect(sizing.outlineWidth).toBe(8);
    // Magma's plain rule would give a 30 px label: 7.5 px after the 4x shrink.
    expect(magmaMarkSizing(1024, 768).labelTextHeight * modelScale(1024, 768, TINY)).toBe(7.5);
  });

  it("'magma' mode is Magma's plain rule, and a bundle's own minimums are honoured", () => {
    expect(markSizing(4000, 3000, TINY, DEFAULT_MARK_MINIMUMS, 'magma')).toEqual(
      magmaMarkSizing(4000, 3000),
    );
    const bigger = markSizing(1024, 768, TINY, { labelTextHeight: 24, outlineWidth: 3 });
    expect(bigger.labelTextHeight).toBeCloseTo(96, 6);
    expect(bigger.outlineWidth).toBe(12);
  });
});

describe('drawMarks with model sizing', () => {
  const grey = (w: number, h: number): RgbImage => ({
    data: new Uint8Array(w * h * 3).fill(200),
    width: w,
    height: h,
  });

  it('draws the outline as wide as the sizing says, inside the box', () => {
    const image = grey(1024, 768);
    const box = { label: 1, x1: 300, y1: 300, x2: 500, y2: 450 };
    const marked = drawMarks(image, [box], markSizing(1024, 768, TINY));
    const red = (x: number, y: number) => {
      const i = (y * 1024 + x) * 3;
      return marked.data[i] === 255 && marked.data[i + 1] === 0 && marked.data[i + 2] === 0;
    };
    // Left edge: columns 300..307 red at mid-height, 308 not.
    for (let x = 300; x < 308; x++) expect(red(x, 400)).toBe(true);
    expect(red(308, 400)).toBe(false);
    expect(red(299, 400)).toBe(false);
  });

  it('places labels of the sized height, inside the image', () => {
    const sizing = markSizing(1920, 1080, TINY);
    const layout = layoutMarks(
      1920,
      1080,
      [
        { label: 1, x1: 200, y1: 300, x2: 500, y2: 600 },
        { label: 2, x1: 1200, y1: 200, x2: 1500, y2: 700 },
      ],
      sizing.labelTextHeight,
    );
    for (const label of layout.labels) {
      expect(label.height).toBeGreaterThanOrEqual(Math.floor(sizing.labelTextHeight));
      expect(label.x).toBeGreaterThanOrEqual(0);
      expect(label.y + label.height).toBeLessThanOrEqual(1080);
    }
  });
});
