import { describe, expect, it } from 'vitest';
import { layoutMarks } from '../../src/images/mark-layout.js';
import type { RgbImage } from '../../src/images/types.js';
import {
  COLOR_NAMES,
  createRng,
  MARK_PADDING,
  markBoxFor,
  randomScene,
  renderScene,
  SHAPE_COLORS,
  shapeBounds,
  shapeGap,
} from '../../../../tools/scenes/index.js';
import type { SceneSpec } from '../../../../tools/scenes/index.js';

function pixel(image: RgbImage, x: number, y: number): [number, number, number] {
  const i = (y * image.width + x) * 3;
  return [image.data[i]!, image.data[i + 1]!, image.data[i + 2]!];
}

const SIZES: Array<[number, number]> = [
  [128, 128],
  [160, 128],
  [256, 192],
  [320, 320],
  [128, 320],
];

describe('createRng', () => {
  it('repeats its sequence for a seed and differs between seeds', () => {
    const a = createRng(42);
    const b = createRng(42);
    const c = createRng(43);
    const seqA = Array.from({ length: 5 }, a);
    expect(Array.from({ length: 5 }, b)).toEqual(seqA);
    expect(Array.from({ length: 5 }, c)).not.toEqual(seqA);
    for (const v of seqA) expect(v >= 0 && v < 1).toBe(true);
  });
});

describe('renderScene', () => {
  const spec: SceneSpec = {
    width: 100,
    height: 80,
    background: [240, 235, 230],
    shapes: [
      { kind: 'circle', color: 'red', cx: 20, cy: 20, size: 20 },
      { kind: 'square', color: 'blue', cx: 70, cy: 25, size: 24 },
      { kind: 'triangle', color: 'green', cx: 50, cy: 60, size: 26 },
    ],
  };

  it('paints the background and each shape in its colour', () => {
    const image = renderScene(spec);
    expect([image.width, image.height, image.data.length]).toEqual([100, 80, 100 * 80 * 3]);
    expect(pixel(image, 0, 0)).toEqual([240, 235, 230]);
    expect(pixel(image, 99, 79)).toEqual([240, 235, 230]);
    for (const shape of spec.shapes) {
      expect(pixel(image, shape.cx, shape.cy)).toEqual([...SHAPE_COLORS[shape.color]]);
    }
    // A triangle points up: its top corners are background, its base corners are filled.
    expect(pixel(image, 39, 49)).toEqual([240, 235, 230]);
    expect(pixel(image, 38, 72)).toEqual([...SHAPE_COLORS.green]);
  });

  it('renders the same bytes twice', () => {
    expect(Buffer.from(renderScene(spec).data).equals(Buffer.from(renderScene(spec).data))).toBe(
      true,
    );
  });

  it('has five clearly distinct named colours', () => {
    expect(COLOR_NAMES).toEqual(
      expect.arrayContaining(['red', 'green', 'blue', 'yellow', 'purple']),
    );
    for (const a of COLOR_NAMES) {
      for (const b of COLOR_NAMES) {
        if (a === b) continue;
        const [ra, ga, ba] = SHAPE_COLORS[a];
        const [rb, gb, bb] = SHAPE_COLORS[b];
        expect(Math.hypot(ra - rb, ga - gb, ba - bb), `${a} vs ${b}`).toBeGreaterThan(120);
      }
    }
  });
});

describe('randomScene', () => {
  it('gives the same scene and pixels for the same seed', () => {
    const a = randomScene(createRng(7), { width: 192, height: 160 });
    const b = randomScene(createRng(7), { width: 192, height: 160 });
    const c = randomScene(createRng(8), { width: 192, height: 160 });
    expect(b).toEqual(a);
    expect(c).not.toEqual(a);
    expect(Buffer.from(renderScene(a).data).equals(Buffer.from(renderScene(b).data))).toBe(true);
  });

  it('keeps shapes apart, inside the image, and with unique kind and colour', () => {
    const counts = new Set<number>();
    for (let seed = 0; seed < 300; seed++) {
      const [width, height] = SIZES[seed % SIZES.length]!;
      const scene = randomScene(createRng(seed), { width, height, minShapes: 2, maxShapes: 6 });
      counts.add(scene.shapes.length);
      expect(scene.shapes.length).toBeGreaterThanOrEqual(2);
      expect(scene.shapes.length).toBeLessThanOrEqual(6);
      const gap = shapeGap(width, height);
      const styles = new Set(scene.shapes.map((s) => `${s.kind}/${s.color}`));
      expect(styles.size).toBe(scene.shapes.length);

      scene.shapes.forEach((shape, i) => {
        const a = shapeBounds(shape);
        expect(a.x1 - MARK_PADDING).toBeGreaterThanOrEqual(0);
        expect(a.y1 - MARK_PADDING).toBeGreaterThanOrEqual(0);
        expect(a.x2 + MARK_PADDING).toBeLessThanOrEqual(width);
        expect(a.y2 + MARK_PADDING).toBeLessThanOrEqual(height);
        for (const other of scene.shapes.slice(i + 1)) {
          const b = shapeBounds(other);
          const apart = Math.max(b.x1 - a.x2, a.x1 - b.x2, b.y1 - a.y2, a.y1 - b.y2);
          expect(apart, `seed ${seed}`).toBeGreaterThanOrEqual(gap);
        }
      });
    }
    expect([...counts].sort()).toEqual([2, 3, 4, 5, 6]);
  });

  it('varies the light background', () => {
    const backgrounds = new Set<string>();
    for (let seed = 0; seed < 20; seed++) {
      const { background } = randomScene(createRng(seed), { width: 128, height: 128 });
      backgrounds.add(background.join(','));
      expect(Math.min(...background)).toBeGreaterThanOrEqual(180); // light
      expect(Math.max(...background) - Math.min(...background)).toBeLessThanOrEqual(60); // greyish
    }
    expect(backgrounds.size).toBeGreaterThan(15);
  });

  it('leaves room for every mark label off the other marks and shapes', () => {
    for (let seed = 0; seed < 200; seed++) {
      const [width, height] = SIZES[seed % SIZES.length]!;
      const scene = randomScene(createRng(1000 + seed), { width, height });
      const marks = scene.shapes.map((s, i) => ({ label: i + 1, ...markBoxFor(s, width, height) }));
      const { labels } = layoutMarks(width, height, marks);
      labels.forEach((label, i) => {
        expect(label.spot).not.toBe('fallback');
        scene.shapes.forEach((shape, j) => {
          if (i === j) return;
          const box = marks[j]!;
          const hits =
            Math.min(label.x + label.width, box.x2) > Math.max(label.x, box.x1) &&
            Math.min(label.y + label.height, box.y2) > Math.max(label.y, box.y1);
          expect(hits, `seed ${1000 + seed}: label ${i + 1} on mark ${j + 1}`).toBe(false);
        });
      });
    }
  });
});

describe('markBoxFor', () => {
  it('pads the shape by a few pixels and clamps to the image', () => {
    const box = markBoxFor({ kind: 'square', color: 'red', cx: 50, cy: 40, size: 20 }, 100, 80);
    expect(box).toEqual({
      x1: 40 - MARK_PADDING,
      y1: 30 - MARK_PADDING,
      x2: 60 + MARK_PADDING,
      y2: 50 + MARK_PADDING,
    });
    const edge = markBoxFor({ kind: 'circle', color: 'blue', cx: 5, cy: 76, size: 10 }, 100, 80);
    expect(edge).toEqual({ x1: 0, y1: 71 - MARK_PADDING, x2: 10 + MARK_PADDING, y2: 80 });
  });
});
