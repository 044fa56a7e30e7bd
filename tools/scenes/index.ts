export {
  COLOR_NAMES,
  COLOR_RANGES,
  SHAPE_COLORS,
  colorDistance,
  hslToRgb,
  jitteredColor,
} from './colors.js';
export type { ColorName, Rgb } from './colors.js';
export {
  BACKGROUND_KINDS,
  MARK_PADDING,
  markBoxFor,
  randomScene,
  shapeGap,
} from './random-scene.js';
export type {
  BackgroundKind,
  MarkBoxRect,
  RandomSceneOptions,
  SceneStyle,
} from './random-scene.js';
export { SHAPE_KINDS, renderScene, shapeBounds } from './render-scene.js';
export type { ClutterStroke, SceneSpec, Shape, ShapeKind } from './render-scene.js';
export { createRng, pick, randomInt } from './rng.js';
export type { Rng } from './rng.js';
