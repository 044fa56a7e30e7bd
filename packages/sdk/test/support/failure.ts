import { expect } from 'vitest';
import { MagmaError } from '../../src/index.js';

/** The error a call rejects with, which must be one of the SDK's (a resolve fails the test). */
export async function failure(promise: Promise<unknown>): Promise<MagmaError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(MagmaError);
  return error as MagmaError;
}
