import { describe, expect, it } from 'vitest';
import { MarkListSchema, MarkSchema, findMarksOutsideImage } from '../src/index.js';

const box = { label: 1, x1: 10, y1: 20, x2: 110, y2: 80 };

describe('MarkSchema', () => {
  it('accepts a box with fractional corners and a style', () => {
    const parsed = MarkSchema.parse({ ...box, x1: 10.5, style: { color: '#00ff00' } });
    expect(parsed.x1).toBe(10.5);
    expect(parsed.style?.color).toBe('#00ff00');
  });

  it.each([
    ['zero-width', { ...box, x2: box.x1 }, 'x2'],
    ['zero-height', { ...box, y2: box.y1 }, 'y2'],
    ['inverted', { ...box, x1: 200 }, 'x2'],
    ['NaN', { ...box, y1: Number.NaN }, 'y1'],
    ['Infinity', { ...box, x2: Number.POSITIVE_INFINITY }, 'x2'],
    ['negative', { ...box, x1: -1 }, 'x1'],
    ['fractional label', { ...box, label: 1.5 }, 'label'],
    ['negative label', { ...box, label: -1 }, 'label'],
    ['huge label', { ...box, label: 100_000 }, 'label'],
    ['bad colour', { ...box, style: { color: 'red' } }, 'style'],
  ])('rejects a %s box and names the field', (_name, input, field) => {
    const result = MarkSchema.safeParse(input);
    expect(result.success).toBe(false);
    expect(result.error!.issues.map((issue) => issue.path[0])).toContain(field);
  });

  it('rejects unknown keys so typos do not pass silently', () => {
    expect(MarkSchema.safeParse({ ...box, lable: 2 }).success).toBe(false);
  });
});

describe('MarkListSchema', () => {
  it('accepts 0-based and 1-based labels alike', () => {
    expect(
      MarkListSchema.parse([
        { ...box, label: 0 },
        { ...box, label: 1 },
      ]),
    ).toHaveLength(2);
  });

  it('names the duplicate label and both marks', () => {
    const result = MarkListSchema.safeParse([box, { ...box, label: 2 }, { ...box }]);
    expect(result.success).toBe(false);
    const issue = result.error!.issues[0]!;
    expect(issue.path).toEqual([2, 'label']);
    expect(issue.message).toMatch(/duplicate label 1 .*marks\[0\]/);
  });

  it('allows 64 marks and refuses 65', () => {
    const marks = (n: number) => Array.from({ length: n }, (_, i) => ({ ...box, label: i }));
    expect(MarkListSchema.safeParse(marks(64)).success).toBe(true);
    expect(MarkListSchema.safeParse(marks(65)).success).toBe(false);
  });
});

describe('findMarksOutsideImage', () => {
  it('finds the marks that leave the image and names them', () => {
    const marks = [box, { ...box, label: 7, x2: 641 }];
    const issues = findMarksOutsideImage(marks, 640, 480);
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatchObject({ index: 1, label: 7 });
    expect(issues[0]!.message).toContain('640x480');
  });

  it('accepts a box touching the far edges', () => {
    expect(findMarksOutsideImage([{ ...box, x2: 640, y2: 480 }], 640, 480)).toEqual([]);
  });
});
