export { decodeImage, parseImageString } from './decode.js';
export type { DecodeLimits, DecodedImage, ImageFormat } from './decode.js';
export { drawMarks, MARK_COLOR } from './draw-marks.js';
export { encodeImage } from './encode.js';
export { ImageError } from './errors.js';
export type { ImageErrorCode } from './errors.js';
export { LABEL_SPOTS, labelFontSize, layoutMarks } from './mark-layout.js';
export type { LabelSpot, MarkLayout, PixelRect, PlacedLabel } from './mark-layout.js';
export type { MarkBox, RgbImage } from './types.js';
