/**
 * Default limits of the contract. A server may configure tighter (or, for the image
 * limits, looser) values and reports the ones in force in `info().limits`.
 */
export const DEFAULT_LIMITS = {
  /** Most marks in one request. */
  maxMarks: 64,
  /** Longest prompt, in characters. */
  maxPromptChars: 4_000,
  /** Decoded image bytes accepted on the JSON path (base64 inflates this by 4/3 on the wire). */
  maxImageBytes: 20 * 1024 * 1024,
  /** Decoded pixels (width x height): refused before decoding. */
  maxImagePixels: 40_000_000,
  /** Hard upper bound on `maxTokens` a request may ask for. */
  maxTokens: 4_096,
  /** Most stop sequences, and the longest one. */
  maxStopSequences: 4,
  maxStopChars: 64,
  /** Highest mark label accepted. */
  maxLabel: 999,
} as const;

/** Characters of base64 needed for `bytes` bytes. */
export function base64Length(bytes: number): number {
  return Math.ceil(bytes / 3) * 4;
}
