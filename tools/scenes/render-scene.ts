import { createCanvas } from '@napi-rs/canvas';
import type { SKRSContext2D } from '@napi-rs/canvas';
import { rgbFromCanvas } from '../../packages/server/src/images/rgb-canvas.js';
import type { RgbImage } from '../../packages/server/src/images/types.js';
import { SHAPE_COLORS } from './colors.js';
import type { ColorName, Rgb } from './colors.js';

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
  /** The colour actually drawn, when it is not the name's canonical SHAPE_COLORS value. */
  readonly rgb?: Rgb;
}

/** A straight line or a dot under the shapes: visual clutter that is none of the named shapes. */
export type ClutterStroke =
  | {
      readonly kind: 'line';
      readonly x1: number;
      readonly y1: number;
      readonly x2: number;
      readonly y2: number;
      readonly width: number;
      readonly rgb: Rgb;
    }
  | {
      readonly kind: 'dot';
      readonly cx: number;
      readonly cy: number;
      readonly r: number;
      readonly rgb: Rgb;
    };

export interface SceneSpec {
  readonly width: number;
  readonly height: number;
  /** Solid background colour, or the gradient's start. */
  readonly background: Rgb;
  /** A linear gradient from `background` to `to`, along `angle` radians. */
  readonly gradient?: { readonly to: Rgb; readonly angle: number };
  readonly clutter?: readonly ClutterStroke[];
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

function paintBackground(ctx: SKRSContext2D, spec: SceneSpec): void {
  const { width, height, gradient } = spec;
  if (gradient === undefined) {
    ctx.fillStyle = rgb(spec.background);
  } else {
    const dx = (Math.cos(gradient.angle) * width) / 2;
    const dy = (Math.sin(gradient.angle) * height) / 2;
    const fill = ctx.createLinearGradient(
      width / 2 - dx,
      height / 2 - dy,
      width / 2 + dx,
      height / 2 + dy,
    );
    fill.addColorStop(0, rgb(spec.background));
    fill.addColorStop(1, rgb(gradient.to));
    ctx.fillStyle = fill;
  }
  ctx.fillRect(0, 0, width, height);
  for (const stroke of spec.clutter ?? []) {
    ctx.beginPath();
    if (stroke.kind === 'line') {
      ctx.strokeStyle = rgb(stroke.rgb);
      ctx.lineWidth = stroke.width;
      ctx.moveTo(stroke.x1, stroke.y1);
      ctx.lineTo(stroke.x2, stroke.y2);
      ctx.stroke();
    } else {
      ctx.fillStyle = rgb(stroke.rgb);
      ctx.arc(stroke.cx, stroke.cy, stroke.r, 0, Math.PI * 2);
      ctx.fill();
    }
  }
}

/** Draws a scene: background (and any gradient and clutter), then each shape filled in its colour, in order. */
export function renderScene(spec: SceneSpec): RgbImage {
  const { width, height } = spec;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
    throw new RangeError(`scene size must be positive integers, got ${width}x${height}`);
  }
  const canvas = createCanvas(width, height);
  const ctx = canvas.getContext('2d');
  paintBackground(ctx, spec);
  for (const shape of spec.shapes) {
    const color = shape.rgb ?? SHAPE_COLORS[shape.color];
    if (color === undefined) throw new RangeError(`unknown colour ${String(shape.color)}`);
    ctx.fillStyle = rgb(color);
    traceShape(ctx, shape);
    ctx.fill();
  }
  return rgbFromCanvas(canvas);
}
