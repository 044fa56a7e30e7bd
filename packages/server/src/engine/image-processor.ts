import type { RgbImage } from '../images/types.js';
import { loadAddon } from '../native/load-addon.js';

// Magma's "crop" any-resolution preprocessing: choose a crop grid, stretch the image to it
// with PyTorch's bilinear interpolation (half-pixel centres, no antialiasing), normalize,
// and cut it into S x S crops, row-major.

/** native/resize-normalize.c: the loops of resizeNormalizedInto in C, the same floats bit for bit. */
interface ResizeAddon {
  resize(
    src: Uint8Array,
    rowStride: number,
    left: Int32Array,
    right: Int32Array,
    leftWeight: Float64Array,
    rightWeight: Float64Array,
    top: Int32Array,
    bottom: Int32Array,
    bottomWeight: Float64Array,
    rowOffset: Int32Array,
    columnOffset: Int32Array,
    channelStride: number,
    gainOffset: Float64Array,
    out: Float32Array,
  ): void;
}

const nativeResize = loadAddon<ResizeAddon>('resize-normalize');

/** Whether the resize runs in C (about twice as fast) or in JavaScript, and why not C (start-up log). */
export function resizeImplementation(): { readonly native: boolean; readonly reason?: string } {
  return nativeResize.addon !== undefined
    ? { native: true }
    : { native: false, reason: nativeResize.missing ?? '' };
}

/** `native: false` runs the JavaScript loops even where the C ones are built (tests compare the two). */
export interface ResizeOptions {
  readonly native?: boolean;
}

export interface CropGrid {
  readonly rows: number;
  readonly cols: number;
}

/**
 * LLaVA-NeXT "best fit" over the candidates (w, h) = (i*S, j*S), i = 1..maxCrops,
 * j = 1..floor(maxCrops / i): largest effective resolution, then least waste; the first wins a tie.
 */
export function selectCropGrid(
  width: number,
  height: number,
  cropSize: number,
  maxCrops: number,
): CropGrid {
  let best: CropGrid = { rows: 1, cols: 1 };
  let bestEffective = -1;
  let bestWaste = Infinity;
  for (let i = 1; i <= maxCrops; i++) {
    for (let j = 1; j <= Math.floor(maxCrops / i); j++) {
      const gridWidth = i * cropSize;
      const gridHeight = j * cropSize;
      const scale = Math.min(gridWidth / width, gridHeight / height);
      const fitted = Math.trunc(width * scale) * Math.trunc(height * scale);
      const effective = Math.min(fitted, width * height);
      const waste = gridWidth * gridHeight - effective;
      if (effective > bestEffective || (effective === bestEffective && waste < bestWaste)) {
        best = { rows: j, cols: i };
        bestEffective = effective;
        bestWaste = waste;
      }
    }
  }
  return best;
}

/** Visual tokens of one image: the stitched (rows*g) x (cols*g) grid plus one separator per grid row. */
export function visualTokenCount(grid: CropGrid, cellsPerSide: number): number {
  return grid.rows * cellsPerSide * (grid.cols * cellsPerSide + 1);
}

/** Source taps of one output axis, as torch computes them for align_corners=False. */
interface AxisTaps {
  readonly low: Int32Array;
  readonly high: Int32Array;
  readonly highWeight: Float64Array;
}

function axisTaps(inSize: number, outSize: number): AxisTaps {
  const low = new Int32Array(outSize);
  const high = new Int32Array(outSize);
  const highWeight = new Float64Array(outSize);
  const scale = inSize / outSize;
  for (let o = 0; o < outSize; o++) {
    const source = Math.max(scale * (o + 0.5) - 0.5, 0);
    const i = Math.floor(source);
    low[o] = i;
    high[o] = i < inSize - 1 ? i + 1 : i;
    highWeight[o] = source - i;
  }
  return { low, high, highWeight };
}

/**
 * Where each output value goes: channel c, row y, column x land at
 * c * channelStride + rowOffset[y] + columnOffset[x]. Planar [3, H, W] and the crops
 * [rows*cols, 3, S, S] are both of this form, so one loop writes either without a second pass.
 */
interface OutputLayout {
  readonly channelStride: number;
  readonly rowOffset: Int32Array;
  readonly columnOffset: Int32Array;
}

function planarLayout(outWidth: number, outHeight: number): OutputLayout {
  return {
    channelStride: outWidth * outHeight,
    rowOffset: Int32Array.from({ length: outHeight }, (_, y) => y * outWidth),
    columnOffset: Int32Array.from({ length: outWidth }, (_, x) => x),
  };
}

/** Crop k = r*cols + c holds grid rows r*S.., columns c*S..; each crop is channel-planar. */
function cropLayout(grid: CropGrid, cropSize: number): OutputLayout {
  const cropPlane = cropSize * cropSize;
  const cropValues = 3 * cropPlane;
  return {
    channelStride: cropPlane,
    rowOffset: Int32Array.from(
      { length: grid.rows * cropSize },
      (_, y) => Math.floor(y / cropSize) * grid.cols * cropValues + (y % cropSize) * cropSize,
    ),
    columnOffset: Int32Array.from(
      { length: grid.cols * cropSize },
      (_, x) => Math.floor(x / cropSize) * cropValues + (x % cropSize),
    ),
  };
}

/**
 * Stretches interleaved RGB bytes to outWidth x outHeight, normalizes ((pixel / 255) - mean) / std
 * and writes the floats in `layout`. Bilinear is linear, so interpolating the bytes and
 * normalizing the result equals torch's normalize-then-interpolate, with less work when downscaling.
 */
function resizeNormalizedInto(
  image: RgbImage,
  outWidth: number,
  outHeight: number,
  mean: readonly [number, number, number],
  std: readonly [number, number, number],
  layout: OutputLayout,
  options: ResizeOptions = {},
): Float32Array {
  const { data, width, height } = image;
  if (data.length !== width * height * 3) {
    throw new RangeError(
      `image data has ${data.length} bytes, expected ${width * height * 3} for ${width}x${height} RGB`,
    );
  }
  const xs = axisTaps(width, outWidth);
  const ys = axisTaps(height, outHeight);
  // Per output column, the two source pixels' byte offsets and their weights, computed once
  // rather than per row and channel (Magma-8B's 2x2 grid is 3 million values).
  const left = new Int32Array(outWidth);
  const right = new Int32Array(outWidth);
  const leftWeight = new Float64Array(outWidth);
  const rightWeight = new Float64Array(outWidth);
  for (let ox = 0; ox < outWidth; ox++) {
    left[ox] = xs.low[ox]! * 3;
    right[ox] = xs.high[ox]! * 3;
    leftWeight[ox] = 1 - xs.highWeight[ox]!;
    rightWeight[ox] = xs.highWeight[ox]!;
  }
  const out = new Float32Array(3 * outWidth * outHeight);
  const { channelStride, rowOffset, columnOffset } = layout;
  const green = channelStride;
  const blue = 2 * channelStride;
  const [redGain, greenGain, blueGain] = std.map((s) => 1 / (255 * s)) as [number, number, number];
  const [redOffset, greenOffset, blueOffset] = mean.map((m, c) => -m / std[c]!) as [
    number,
    number,
    number,
  ];
  const rowStride = width * 3;
  const addon = options.native === false ? undefined : nativeResize.addon;
  if (addon !== undefined) {
    const gainOffset = Float64Array.of(
      redGain,
      greenGain,
      blueGain,
      redOffset,
      greenOffset,
      blueOffset,
    );
    addon.resize(
      data,
      rowStride,
      left,
      right,
      leftWeight,
      rightWeight,
      ys.low,
      ys.high,
      ys.highWeight,
      rowOffset,
      columnOffset,
      channelStride,
      gainOffset,
      out,
    );
    return out;
  }
  for (let oy = 0; oy < outHeight; oy++) {
    const wy = ys.highWeight[oy]!;
    const top = ys.low[oy]! * rowStride;
    const bottom = ys.high[oy]! * rowStride;
    const rowTarget = rowOffset[oy]!;
    if (wy === 0) {
      // The output row sits on a source row (integer downscales, e.g. 768 -> 256): the lower
      // row's weight is 0, so leaving it out gives the same floats for half the reads.
      for (let ox = 0; ox < outWidth; ox++) {
        const a = top + left[ox]!;
        const b = top + right[ox]!;
        const wa = leftWeight[ox]!;
        const wb = rightWeight[ox]!;
        const target = rowTarget + columnOffset[ox]!;
        out[target] = (data[a]! * wa + data[b]! * wb) * redGain + redOffset;
        out[target + green] = (data[a + 1]! * wa + data[b + 1]! * wb) * greenGain + greenOffset;
        out[target + blue] = (data[a + 2]! * wa + data[b + 2]! * wb) * blueGain + blueOffset;
      }
      continue;
    }
    const wt = 1 - wy;
    for (let ox = 0; ox < outWidth; ox++) {
      const a = top + left[ox]!;
      const b = top + right[ox]!;
      const c = bottom + left[ox]!;
      const d = bottom + right[ox]!;
      const wa = leftWeight[ox]!;
      const wb = rightWeight[ox]!;
      const target = rowTarget + columnOffset[ox]!;
      const red = (data[a]! * wa + data[b]! * wb) * wt + (data[c]! * wa + data[d]! * wb) * wy;
      const greenValue =
        (data[a + 1]! * wa + data[b + 1]! * wb) * wt + (data[c + 1]! * wa + data[d + 1]! * wb) * wy;
      const blueValue =
        (data[a + 2]! * wa + data[b + 2]! * wb) * wt + (data[c + 2]! * wa + data[d + 2]! * wb) * wy;
      out[target] = red * redGain + redOffset;
      out[target + green] = greenValue * greenGain + greenOffset;
      out[target + blue] = blueValue * blueGain + blueOffset;
    }
  }
  return out;
}

/** resizeNormalizedInto, planar [3, H, W]. */
export function resizeNormalized(
  image: RgbImage,
  outWidth: number,
  outHeight: number,
  mean: readonly [number, number, number],
  std: readonly [number, number, number],
  options: ResizeOptions = {},
): Float32Array {
  const layout = planarLayout(outWidth, outHeight);
  return resizeNormalizedInto(image, outWidth, outHeight, mean, std, layout, options);
}

/**
 * resizeNormalizedInto to the whole crop grid, written straight as crops
 * [rows*cols, 3, S, S], row-major (k = r*cols + c): no planar image to cut afterwards.
 */
export function resizeNormalizedCrops(
  image: RgbImage,
  grid: CropGrid,
  settings: ProcessorSettings,
  options: ResizeOptions = {},
): Float32Array {
  const S = settings.cropSize;
  const { imageMean, imageStd } = settings;
  const layout = cropLayout(grid, S);
  return resizeNormalizedInto(
    image,
    grid.cols * S,
    grid.rows * S,
    imageMean,
    imageStd,
    layout,
    options,
  );
}

export interface ProcessorSettings {
  readonly cropSize: number;
  readonly maxCrops: number;
  readonly imageMean: readonly [number, number, number];
  readonly imageStd: readonly [number, number, number];
}

export interface ProcessedImage {
  readonly grid: CropGrid;
  /** [rows*cols, 3, S, S] */
  readonly pixelValues: Float32Array;
}

/** True when an image reached the engine already preprocessed (the server's image pool does it). */
export function isProcessedImage(image: RgbImage | ProcessedImage): image is ProcessedImage {
  return 'pixelValues' in image;
}

/** The buffer behind the pixels (or crops), to transfer between threads. */
export function pixelBufferOf(image: RgbImage | ProcessedImage): ArrayBuffer {
  return (isProcessedImage(image) ? image.pixelValues.buffer : image.data.buffer) as ArrayBuffer;
}

export function preprocessImage(
  image: RgbImage,
  settings: ProcessorSettings,
  options: ResizeOptions = {},
): ProcessedImage {
  const { cropSize } = settings;
  const grid = selectCropGrid(image.width, image.height, cropSize, settings.maxCrops);
  return { grid, pixelValues: resizeNormalizedCrops(image, grid, settings, options) };
}

/**
 * Stitches per-crop cells [rows*cols, g*g, H] into one (rows*g) x (cols*g) grid and appends the
 * row separator after every grid row: [rows*g*(cols*g+1), H], flattened row-major.
 */
export function stitchImageFeatures(
  cells: Float32Array,
  separator: Float32Array,
  grid: CropGrid,
  cellsPerSide: number,
): Float32Array {
  const hidden = separator.length;
  const g = cellsPerSide;
  const expected = grid.rows * grid.cols * g * g * hidden;
  if (cells.length !== expected) {
    throw new RangeError(`image features have ${cells.length} values, expected ${expected}`);
  }
  const out = new Float32Array(visualTokenCount(grid, g) * hidden);
  let token = 0;
  for (let gridRow = 0; gridRow < grid.rows * g; gridRow++) {
    const r = Math.floor(gridRow / g);
    const y = gridRow % g;
    for (let c = 0; c < grid.cols; c++) {
      const crop = r * grid.cols + c;
      const from = (crop * g * g + y * g) * hidden;
      out.set(cells.subarray(from, from + g * hidden), token * hidden);
      token += g;
    }
    out.set(separator, token * hidden);
    token += 1;
  }
  return out;
}
