import { createCanvas } from '@napi-rs/canvas';
import type { SKRSContext2D } from '@napi-rs/canvas';
import { rgbFromCanvas } from '../../packages/server/src/images/rgb-canvas.js';
import type { RgbImage } from '../../packages/server/src/images/types.js';
import { SHAPE_COLORS } from './colors.js';
import type { ColorName } from './colors.js';

export const SHAPE_KINDS = ['circle', 'square', 'triangle'] as const;
export type ShapeKind = (typeof SHAPE_KINDS)[number];

/**
 * One shape. Every kind fills the square of side `size` centred on (cx, cy): a circle of
 * diameter `size`, an axis-aligned square of side `size`, an upward triangle with base and
 * height `size`. Pixels.
 */
export interface Shape {
  readonly kind: ShapeKind;
  readonly color: ColorName;
  readonly cx: number;
  readonly cy: number;
  readonly size: number;
}

export interface SceneSpec {
  readonly width: number;
  readonly height: number;
  readonly background: readonly [number, number, number];
  readonly shapes: readonly Shape[];
}

/** The square a shape fills: [x1, x2) x [y1, y2), in pixels (may be fractional). */
export function shapeBounds(shape: Shape): { x1: number; y1: number; x2: number; y2: number } {
  const half = shape.size / 2;
  return { x1: shape.cx - half, y1: shape.cy - half, x2: shape.cx + half, y2: shape.cy + half };
}

function rgb([r, g, b]: readonly [number, number, number]): string {
  return `rgb(${r}, ${g}, ${b})`;
}

function traceShape(ctx: SKRSContext2D, shape: Shape): void {
  const { x1, y1, x2, y2 } = shapeBounds(shape);
  ctx.beginPath();
  switch (shape.kind) {
    case 'circle':
      ctx.arc(shape.cx, shape.cy, shape.size / 2, 0, Math.PI * 2);
      break;
    case 'square':
      ctx.rect(x1, y1, shape.size, shape.size);
      break;
    case 'triangle':
      ctx.moveTo(shape.cx, y1);
      ctx.lineTo(x2, y2);
      ctx.lineTo(x1, y2);
      ctx.closePath();
      break;
  }
}

/** Draws a scene: background, then each shape filled in its colour, in order. */
export function renderScene(spec: SceneSpec): RgbImage {
  const { width, height } = spec;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
    throw new RangeError(`scene size must be positive integers, got ${width}x${height}`);
  }
  const canvas = createCanvas(width, height);
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = rgb(spec.background);
  ctx.fillRect(0, 0, width, height);
  for (const shape of spec.shapes) {
    const color = SHAPE_COLORS[shape.color];
    if (color === undefined) throw new RangeError(`unknown colour ${String(shape.color)}`);
    ctx.fillStyle = rgb(color);
    traceShape(ctx, shape);
    ctx.fill();
  }
  return rgbFromCanvas(canvas);
}
