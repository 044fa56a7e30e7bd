import { describe, expect, it } from 'vitest';
import { ImageInputSchema, MAX_IMAGE_STRING_CHARS, splitImageString } from '../src/index.js';

const pngBase64 = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]).toString('base64');

describe('ImageInputSchema', () => {
  it('accepts plain base64 and data URLs of the four formats', () => {
    expect(ImageInputSchema.safeParse(pngBase64).success).toBe(true);
    for (const type of ['png', 'jpeg', 'webp', 'gif']) {
      expect(ImageInputSchema.safeParse(`data:image/${type};base64,${pngBase64}`).success).toBe(
        true,
      );
    }
  });

  it('accepts unpadded base64 and line breaks inside it', () => {
    expect(ImageInputSchema.safeParse('iVBORw0KGgo').success).toBe(true);
    expect(ImageInputSchema.safeParse('iVBORw0K\nGgo=').success).toBe(true);
    expect(ImageInputSchema.safeParse('aA==').success).toBe(true);
    expect(ImageInputSchema.safeParse('aAb=').success).toBe(true);
    expect(ImageInputSchema.safeParse('aA=').success).toBe(true);
    expect(ImageInputSchema.safeParse('+/09azAZ').success).toBe(true);
  });

  it.each([
    ['empty', ''],
    ['not base64', 'hello world!'],
    ['impossible length', 'abcde'],
    ['padding inside', 'ab=cdefg'],
    ['three padding characters', 'a==='],
    ['padding in two places', 'ab=c=d=='],
    ['padding first', '=abc'],
    ['one padding character before the last', 'abc=d'],
    ['the base64url alphabet', 'ab-_'],
    ['a character beyond ASCII', 'abcé'],
    ['a bad character beside a line break', 'iVBO\nRw0K!Ggo='],
    ['only whitespace', ' \r\n\t'],
    ['an impossible length once line breaks are dropped', 'abcd\ne'],
    ['wrong data-URL type', `data:text/plain;base64,${pngBase64}`],
    ['svg', `data:image/svg+xml;base64,${pngBase64}`],
    ['data URL without base64', 'data:image/png,abc'],
    ['data URL without data', 'data:image/png;base64,'],
  ])('rejects %s', (_name, value) => {
    expect(ImageInputSchema.safeParse(value).success).toBe(false);
  });

  it('rejects strings over the JSON-path limit', () => {
    const huge = 'A'.repeat(MAX_IMAGE_STRING_CHARS + 4);
    const result = ImageInputSchema.safeParse(huge);
    expect(result.success).toBe(false);
    expect(result.error!.issues[0]!.message).toMatch(/binary upload/);
  });
});

describe('splitImageString', () => {
  it('returns the declared media type and payload', () => {
    expect(splitImageString(`data:image/JPEG;base64,${pngBase64}`)).toEqual({
      mediaType: 'image/jpeg',
      base64: pngBase64,
    });
    expect(splitImageString(pngBase64)).toEqual({ mediaType: undefined, base64: pngBase64 });
  });
});
