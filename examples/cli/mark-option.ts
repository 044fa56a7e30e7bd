import type { MarkInput } from '@magma-som/sdk';

/** A command-line mistake: printed with the usage text, exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

const NUMBER = /^\d+(\.\d+)?$/;

/**
 * Parses one `--mark` value: `x1,y1,x2,y2` (numbered by its position, #1 first) or
 * `N:x1,y1,x2,y2` (label N). Pixels of the image. Box geometry (x1 < x2, inside the image)
 * is checked by the SDK and the server, which name the problem precisely.
 */
export function parseMarkOption(value: string): MarkInput {
  const colon = value.indexOf(':');
  const labelText = colon === -1 ? undefined : value.slice(0, colon).trim();
  const coordinates = value
    .slice(colon + 1)
    .split(',')
    .map((part) => part.trim());
  const valid =
    coordinates.length === 4 &&
    coordinates.every((part) => NUMBER.test(part)) &&
    (labelText === undefined || /^\d+$/.test(labelText));
  if (!valid) {
    throw new UsageError(
      `--mark ${JSON.stringify(value)}: expected x1,y1,x2,y2 or LABEL:x1,y1,x2,y2 (pixels)`,
    );
  }
  const [x1, y1, x2, y2] = coordinates.map(Number) as [number, number, number, number];
  return labelText === undefined
    ? { box: [x1, y1, x2, y2] }
    : { box: [x1, y1, x2, y2], label: Number(labelText) };
}
