// Image strings and ids, without zod, so small clients (@magma-som/schemas/plain) can use them.
import { DEFAULT_LIMITS, base64Length } from './limits.js';

/** Image formats the server decodes (GIF: first frame). */
export const IMAGE_MEDIA_TYPES = ['image/png', 'image/jpeg', 'image/webp', 'image/gif'] as const;
export type ImageMediaType = (typeof IMAGE_MEDIA_TYPES)[number];

/**
 * Largest image string accepted on the JSON path: base64 of `maxImageBytes` plus room for a
 * data-URL prefix. Larger images belong on the binary upload path, which also avoids base64's
 * 33% overhead.
 */
export const MAX_IMAGE_STRING_CHARS = base64Length(DEFAULT_LIMITS.maxImageBytes) + 64;

/** A character outside the base64 alphabet (RFC 4648, not base64url) and its padding. */
const OUTSIDE_BASE64 = /[^A-Za-z0-9+/=]/;
const EQUALS = 61;

/**
 * Whether a string is base64: alphabet characters, then at most two "=". One search for a
 * character outside the alphabet, then a look at where "=" is: every JSON ask's image runs
 * through it (in the SDK, and in the server), and it took 19 against 51 us for a 23 kB string
 * and 0.44 against 0.50-0.74 ms for a 303 kB one, measured against a loop over char codes
 * (which had itself halved /^[A-Za-z0-9+/]*={0,2}$/'s time).
 */
function isBase64(value: string): boolean {
  if (OUTSIDE_BASE64.test(value)) return false;
  const firstEquals = value.indexOf('=');
  if (firstEquals === -1) return true;
  const length = value.length;
  // "=" only as the last character, or the last two
  return (
    firstEquals === length - 1 ||
    (firstEquals === length - 2 && value.charCodeAt(length - 1) === EQUALS)
  );
}
const DATA_URL = /^data:([a-z0-9.+-]+\/[a-z0-9.+-]+)(?:;[^,]*)?;base64,/i;

/**
 * Id of an image stored with images.upload: "img_" and the base64url SHA-256 of its bytes. Not
 * base64 ("_"), so an image string and an id cannot be mistaken for each other.
 */
export const IMAGE_ID_PATTERN = /^img_[A-Za-z0-9_-]{43}$/;

export function isImageId(value: string): boolean {
  return IMAGE_ID_PATTERN.test(value);
}

/** Splits an image string into its declared media type (if a data URL) and base64 payload. */
export function splitImageString(
  value: string,
): { mediaType: ImageMediaType | undefined; base64: string } | { error: string } {
  let base64 = value;
  let mediaType: ImageMediaType | undefined;
  const match = DATA_URL.exec(value);
  if (value.startsWith('data:')) {
    if (!match) return { error: 'data URL must look like data:image/png;base64,...' };
    const declared = match[1]!.toLowerCase();
    if (!(IMAGE_MEDIA_TYPES as readonly string[]).includes(declared)) {
      return {
        error: `unsupported image type ${declared}; use one of ${IMAGE_MEDIA_TYPES.join(', ')}`,
      };
    }
    mediaType = declared as ImageMediaType;
    base64 = value.slice(match[0].length);
  }
  // Whitespace (line-wrapped base64) is dropped; most strings have none, and the alphabet check
  // alone tells, without the regular expression's pass over the string.
  const clean = isBase64(base64);
  if (!clean) base64 = base64.replace(/\s+/g, '');
  if (base64.length === 0) return { error: 'image has no data' };
  // Unpadded base64 is accepted; a length of 4n+1 can never be valid.
  if (base64.length % 4 === 1 || (!clean && !isBase64(base64))) {
    return { error: 'image is not valid base64' };
  }
  return { mediaType, base64 };
}
