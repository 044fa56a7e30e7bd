import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { decodePixels, ImageError, readImageHeader } from '../../src/images/decode.js';
import type { DecodeLimits } from '../../src/images/decode.js';
import { plainImageSize } from '../../src/images/plain-header.js';

const LIMITS: DecodeLimits = { maxBytes: 10_000_000, maxPixels: 10_000_000 };

function noise(width: number, height: number, seed: number) {
  const data = Buffer.alloc(width * height * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * 7919 + seed * 104729) % 251;
  return sharp(data, { raw: { width, height, channels: 3 } });
}

describe('plainImageSize', () => {
  // sizes on and off the 8/16-pixel block grid, very wide and very tall
  const sizes = [
    [1, 1],
    [17, 9],
    [640, 480],
    [1023, 769],
    [3000, 20],
    [20, 3000],
  ] as const;

  it.each(sizes)(
    'reads a %ix%i PNG and JPEG (baseline and progressive) as sharp does',
    async (w, h) => {
      const files = {
        png: await noise(w, h, 1).png().toBuffer(),
        interlacedPng: await noise(w, h, 2).png({ progressive: true }).toBuffer(),
        jpeg: await noise(w, h, 3).jpeg().toBuffer(),
        progressiveJpeg: await noise(w, h, 4).jpeg({ progressive: true }).toBuffer(),
        greyJpeg: await noise(w, h, 5).greyscale().jpeg().toBuffer(),
      };
      for (const [name, file] of Object.entries(files)) {
        const format = name.toLowerCase().includes('png') ? 'png' : 'jpeg';
        const metadata = await sharp(file).metadata();
        expect(plainImageSize(file, format), name).toEqual({
          width: metadata.width,
          height: metadata.height,
        });
      }
    },
  );

  it('leaves files with EXIF to sharp, which applies their orientation', async () => {
    const jpeg = await noise(40, 20, 6).jpeg().withMetadata({ orientation: 6 }).toBuffer();
    const png = await noise(40, 20, 7).png().withMetadata({ orientation: 6 }).toBuffer();
    expect((await sharp(png).metadata()).orientation).toBe(6);
    for (const [format, file] of [
      ['jpeg', jpeg],
      ['png', png],
    ] as const) {
      expect(plainImageSize(file, format), format).toBeUndefined();
      const header = await readImageHeader(file, LIMITS);
      expect([header.orientedWidth, header.orientedHeight], format).toEqual([20, 40]);
      const { image } = await decodePixels(file, LIMITS, header);
      expect([image.width, image.height], format).toEqual([20, 40]);
    }
  });

  it('gives up on truncated, corrupt and other files rather than guess', async () => {
    const jpeg = await noise(64, 48, 8).jpeg().toBuffer();
    const png = await noise(64, 48, 9).png().toBuffer();
    expect(plainImageSize(jpeg.subarray(0, 12), 'jpeg')).toBeUndefined();
    expect(plainImageSize(png.subarray(0, 30), 'png')).toBeUndefined();
    const lostMarker = Buffer.from(jpeg);
    lostMarker[2] = 0x00; // the first segment no longer starts with 0xff
    expect(plainImageSize(lostMarker, 'jpeg')).toBeUndefined();
    const noImageData = Buffer.from(png);
    noImageData.write('JUNK', png.indexOf('IDAT'), 'latin1');
    expect(plainImageSize(noImageData, 'png')).toBeUndefined();
    const noWidth = Buffer.from(png);
    noWidth.writeUInt32BE(0, 16); // IHDR width 0
    expect(plainImageSize(noWidth, 'png')).toBeUndefined();
    const webp = await noise(64, 48, 10).webp().toBuffer();
    expect(plainImageSize(webp, 'webp')).toBeUndefined();
  });

  it('leaves files with very many header segments to sharp (the scan runs on the event loop)', async () => {
    const jpeg = await noise(64, 48, 13).jpeg().toBuffer();
    const comment = Buffer.from([0xff, 0xfe, 0x00, 0x02]); // an empty COM segment
    const padded = Buffer.concat([
      jpeg.subarray(0, 2),
      ...Array(300).fill(comment),
      jpeg.subarray(2),
    ]);
    expect(plainImageSize(padded, 'jpeg')).toBeUndefined();
    const fewer = Buffer.concat([
      jpeg.subarray(0, 2),
      ...Array(100).fill(comment),
      jpeg.subarray(2),
    ]);
    expect(plainImageSize(fewer, 'jpeg')).toEqual({ width: 64, height: 48 });
    const header = await readImageHeader(padded, LIMITS);
    expect([header.width, header.height]).toEqual([64, 48]);
  });

  it('still refuses a decompression bomb from the header alone', async () => {
    const png = await noise(8, 8, 11).png().toBuffer();
    const bomb = Buffer.from(png);
    bomb.writeUInt32BE(100_000, 16); // IHDR width
    bomb.writeUInt32BE(100_000, 20); // IHDR height
    expect(plainImageSize(bomb, 'png')).toEqual({ width: 100_000, height: 100_000 });
    const error = await readImageHeader(bomb, LIMITS).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ImageError);
    expect((error as ImageError).code).toBe('PAYLOAD_TOO_LARGE');
  });
});

describe('decodePixels with a header', () => {
  it('refuses pixels whose size differs from the header the marks were checked against', async () => {
    const png = await noise(30, 20, 12).png().toBuffer();
    const header = await readImageHeader(png, LIMITS);
    const wrong = { ...header, width: 20, height: 30, orientedWidth: 20, orientedHeight: 30 };
    const error = await decodePixels(png, LIMITS, wrong).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ImageError);
    expect((error as ImageError).code).toBe('INVALID_IMAGE');
    expect((error as ImageError).message).toMatch(/decoded to 30x20, but its header says 20x30/);
  });
});
