import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AskRequest } from '@magma-som/schemas';
import {
  InvalidImageError,
  InvalidInputError,
  InvalidMarksError,
  MagmaError,
  createClient,
} from '../src/node.js';
import type { AskInput, MagmaClient } from '../src/node.js';
import { FaultServer, sampleResponse } from './support/fault-server.js';
import { smallPng } from './support/images.js';

let server: FaultServer;
let client: MagmaClient;
let image: Buffer;
let dir: string;

beforeAll(async () => {
  server = await FaultServer.start();
  client = createClient({ baseUrl: server.url });
  image = await smallPng();
  dir = await mkdtemp(join(tmpdir(), 'magma-sdk-'));
});

afterAll(async () => {
  await client.close();
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

async function rejection(input: AskInput): Promise<MagmaError> {
  const before = server.requests.length;
  const error = await client.ask(input).catch((e: unknown) => e);
  // Every local validation failure happens before anything is sent.
  expect(server.requests.length).toBe(before);
  expect(error).toBeInstanceOf(MagmaError);
  return error as MagmaError;
}

describe('fails fast, without network, on bad input', () => {
  it('an inverted box is an InvalidMarksError naming the mark and field', async () => {
    const error = await rejection({
      image,
      prompt: 'What is #1?',
      marks: [
        [0, 0, 10, 10],
        [30, 5, 20, 25],
      ],
    });
    expect(error).toBeInstanceOf(InvalidMarksError);
    expect(error.code).toBe('INVALID_MARKS');
    expect(error.status).toBeUndefined();
    expect(error.issues).toEqual([
      {
        path: ['marks', 1, 'x2'],
        message: 'x2 must be greater than x1 (zero-width or inverted box)',
      },
    ]);
    expect(error.message).toBe(
      'marks[1].x2: x2 must be greater than x1 (zero-width or inverted box)',
    );
  });

  it('duplicate labels, negative coordinates and a box of three numbers are mark errors', async () => {
    const duplicate = await rejection({
      image,
      prompt: 'Hi',
      marks: [
        { label: 2, x1: 0, y1: 0, x2: 5, y2: 5 },
        { box: [1, 1, 9, 9], label: 2 },
      ],
    });
    expect(duplicate.issues?.[0]?.message).toMatch(/duplicate label 2/);
    expect(await rejection({ image, prompt: 'Hi', marks: [[-1, 0, 5, 5]] })).toBeInstanceOf(
      InvalidMarksError,
    );
    const short = [1, 2, 3] as unknown as [number, number, number, number];
    expect(await rejection({ image, prompt: 'Hi', marks: [short] })).toBeInstanceOf(
      InvalidMarksError,
    );
  });

  it('an empty prompt, an unknown field and a bad option are InvalidInputErrors', async () => {
    const empty = await rejection({ image, prompt: '   ' });
    expect(empty).toBeInstanceOf(InvalidInputError);
    expect(empty.issues?.[0]?.path).toEqual(['prompt']);
    const typo = { image, prompt: 'Hi', mark: [] } as unknown as AskInput;
    expect(await rejection(typo)).toBeInstanceOf(InvalidInputError);
    const hot = await rejection({ image, prompt: 'Hi', options: { temperature: 7 } });
    expect(hot.issues?.[0]?.path).toEqual(['options', 'temperature']);
  });

  it('bytes that are not an image, bad base64 and a missing file are InvalidImageErrors', async () => {
    expect(
      await rejection({ image: Buffer.from('hello, not an image'), prompt: 'Hi' }),
    ).toBeInstanceOf(InvalidImageError);
    expect(await rejection({ image: 'data:image/png;base64,***', prompt: 'Hi' })).toBeInstanceOf(
      InvalidImageError,
    );
    expect(
      await rejection({ image: 'data:text/plain;base64,aGVsbG8=', prompt: 'Hi' }),
    ).toBeInstanceOf(InvalidImageError);
    const missing = await rejection({ image: join(dir, 'nope.png'), prompt: 'Hi' });
    expect(missing).toBeInstanceOf(InvalidImageError);
    expect(missing.message).toContain('ENOENT');
  });
});

describe('image sources', () => {
  it('reads a file path and a file URL', async () => {
    const seen: string[] = [];
    server.handlers.ask = async (input) => {
      seen.push((input as AskRequest).image);
      return sampleResponse();
    };
    const path = join(dir, 'scene.png');
    await writeFile(path, image);
    await client.ask({ image: path, prompt: 'Hi' });
    await client.ask({ image: pathToFileURL(path), prompt: 'Hi' });
    expect(seen).toEqual([image.toString('base64'), image.toString('base64')]);
  });
});

describe('createClient', () => {
  it('rejects a missing baseUrl and negative numbers', () => {
    expect(() => createClient({} as never)).toThrow(InvalidInputError);
    expect(() => createClient({ baseUrl: server.url, maxRetries: -1 })).toThrow(/maxRetries/);
    expect(() => createClient({ baseUrl: 'not a url' })).toThrow();
  });
});
