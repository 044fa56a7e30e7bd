export { COLOR_NAMES, SHAPE_COLORS } from './colors.js';
export type { ColorName } from './colors.js';
export { MARK_PADDING, markBoxFor, randomScene, shapeGap } from './random-scene.js';
export type { MarkBoxRect, RandomSceneOptions } from './random-scene.js';
export { SHAPE_KINDS, renderScene, shapeBounds } from './render-scene.js';
export type { SceneSpec, Shape, ShapeKind } from './render-scene.js';
export { createRng, pick, randomInt } from './rng.js';
export type { Rng } from './rng.js';
