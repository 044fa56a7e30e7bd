import { describe, expect, it } from 'vitest';
import {
  boxFromCorners,
  growBox,
  isBigEnough,
  markProblems,
  moveBox,
  nextLabel,
  renumber,
  resizeBox,
} from '../src/marks/marks.js';
import { MarkStore } from '../src/marks/mark-store.js';

const SIZE = { width: 224, height: 168 };

describe('mark geometry', () => {
  it('makes a box from a drag in any direction, in whole pixels inside the image', () => {
    expect(boxFromCorners({ x: 182.4, y: 102.6 }, { x: 130, y: 50 }, SIZE)).toEqual({
      x1: 130,
      y1: 50,
      x2: 182,
      y2: 103,
    });
    expect(boxFromCorners({ x: -20, y: 10 }, { x: 400, y: 500 }, SIZE)).toEqual({
      x1: 0,
      y1: 10,
      x2: 224,
      y2: 168,
    });
    expect(isBigEnough(boxFromCorners({ x: 5, y: 5 }, { x: 6, y: 40 }, SIZE))).toBe(false);
  });

  it('moves a box without changing its size or leaving the image', () => {
    const box = { label: 1, x1: 130, y1: 50, x2: 182, y2: 102 };
    expect(moveBox(box, 10, -5, SIZE)).toEqual({ label: 1, x1: 140, y1: 45, x2: 192, y2: 97 });
    expect(moveBox(box, 500, 500, SIZE)).toEqual({ label: 1, x1: 172, y1: 116, x2: 224, y2: 168 });
    expect(moveBox(box, -500, -500, SIZE)).toEqual({ label: 1, x1: 0, y1: 0, x2: 52, y2: 52 });
  });

  it('resizes by a corner, keeping the opposite one; a too-small result is refused', () => {
    const box = { label: 2, x1: 38, y1: 66, x2: 90, y2: 118 };
    expect(resizeBox(box, 'se', { x: 100, y: 130 }, SIZE)).toMatchObject({
      x1: 38,
      y1: 66,
      x2: 100,
      y2: 130,
    });
    expect(resizeBox(box, 'nw', { x: 10, y: 20 }, SIZE)).toMatchObject({
      x1: 10,
      y1: 20,
      x2: 90,
      y2: 118,
    });
    // Dragged past the opposite corner: the box flips instead of inverting.
    expect(resizeBox(box, 'ne', { x: 20, y: 140 }, SIZE)).toMatchObject({
      x1: 20,
      y1: 118,
      x2: 38,
      y2: 140,
    });
    expect(resizeBox(box, 'se', { x: 39, y: 67 }, SIZE)).toBe(box);
    expect(growBox(box, 5, -100, SIZE)).toMatchObject({ x2: 95, y2: 69 });
  });
});

describe('labels', () => {
  it('numbers new marks above the highest in use, from 1, and renumbers in list order', () => {
    expect(nextLabel([])).toBe(1);
    const marks = [
      { label: 3, x1: 0, y1: 0, x2: 5, y2: 5 },
      { label: 1, x1: 0, y1: 0, x2: 5, y2: 5 },
    ];
    expect(nextLabel(marks)).toBe(4);
    expect(renumber(marks).map((m) => m.label)).toEqual([1, 2]);
  });

  it('keeps the selection on the same mark through a renumbering, and on a neighbour after a delete', () => {
    const store = new MarkStore();
    store.reset(SIZE);
    store.add({ x1: 0, y1: 0, x2: 10, y2: 10 });
    store.add({ x1: 20, y1: 0, x2: 30, y2: 10 });
    store.add({ x1: 40, y1: 0, x2: 50, y2: 10 });
    store.remove(1);
    expect(store.marks.map((m) => m.label)).toEqual([2, 3]);
    store.select(3);
    store.renumber();
    expect(store.marks.map((m) => m.label)).toEqual([1, 2]);
    expect(store.selectedMark).toMatchObject({ label: 2, x1: 40 });
    store.remove(2);
    expect(store.selected).toBe(1);
    store.selectStep(1);
    expect(store.selected).toBe(1);
  });
});

describe('markProblems', () => {
  it('says what the server would refuse once the image size is known', () => {
    expect(markProblems({ x1: 130, y1: 50, x2: 182, y2: 102 }, SIZE)).toEqual([]);
    expect(markProblems({ x1: 130, y1: 50, x2: 300, y2: 102 }, SIZE)).toEqual([
      'outside the 224×168 image',
    ]);
    expect(markProblems({ x1: 50, y1: 50, x2: 40, y2: 50 }, SIZE)).toEqual([
      'x2 must be greater than x1',
      'y2 must be greater than y1',
    ]);
  });
});
