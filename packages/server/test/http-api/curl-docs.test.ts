import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  AskResponseSchema,
  AskSseEventSchema,
  ChatCompletionChunkSchema,
  ChatCompletionSchema,
  ERROR_CODES,
  ErrorDataSchema,
  ModelListSchema,
} from '@magma-som/schemas';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/engine/index.js';
import { startTestEngine, startTestServer, testImage } from '../server/helpers.js';
import type { RunningServer } from '../server/helpers.js';
import { parseSse } from './sse.js';

// Every `sh` block of docs/HTTP-API.md, run by bash with the real curl against a real server
// (real tiny model), with MAGMA_URL set and scene.png in the working directory.

const DOC = new URL('../../../../docs/HTTP-API.md', import.meta.url);
const run = promisify(execFile);

let engine: Engine;
let running: RunningServer;
let dir: string;
let doc: string;

beforeAll(async () => {
  doc = await readFile(DOC, 'utf8');
  engine = await startTestEngine();
  running = await startTestServer(engine, { maxTokens: 16 });
  dir = await mkdtemp(join(tmpdir(), 'magma-curl-'));
  await writeFile(join(dir, 'scene.png'), await testImage());
}, 180_000);

afterAll(async () => {
  await running?.server.shutdown();
  await engine?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** The fenced blocks of a language, in order. */
function blocks(markdown: string, language: string): string[] {
  return [...markdown.matchAll(/^```(\w*)\n([\s\S]*?)^```$/gm)]
    .filter((match) => match[1] === language)
    .map((match) => match[2]!);
}

/** What a block's output must be: judged by the route it calls. */
function checkOutput(script: string, stdout: string): void {
  if (script.includes('/stream') || script.includes('"stream": true')) {
    const events = parseSse(stdout);
    expect(events.length).toBeGreaterThan(1);
    if (script.includes('/chat/completions')) {
      expect(events.at(-1)!.data).toBe('[DONE]');
      for (const event of events.slice(0, -1))
        ChatCompletionChunkSchema.parse(JSON.parse(event.data));
    } else {
      for (const event of events) AskSseEventSchema.parse(JSON.parse(event.data));
      expect(events.at(-1)!.event).toBe('done');
    }
    return;
  }
  const body = JSON.parse(stdout) as unknown;
  if (script.includes('/chat/completions')) ChatCompletionSchema.parse(body);
  else if (script.includes('/v1/models')) ModelListSchema.parse(body);
  else if (script.includes('"x2": 999'))
    expect(ErrorDataSchema.parse(body).code).toBe('INVALID_MARKS');
  else AskResponseSchema.parse(body);
}

describe('docs/HTTP-API.md', () => {
  it('has curl examples for every /v1 route', () => {
    const scripts = blocks(doc, 'sh').join('\n');
    for (const route of [
      '/v1/chat/completions',
      '/v1/models',
      '/v1/som/ask',
      '/v1/som/ask/stream',
    ]) {
      expect(scripts).toContain(route);
    }
    expect(scripts).toContain('-F image=@scene.png');
  });

  it('lists every contract error code in its catalog', () => {
    for (const code of ERROR_CODES) expect(doc).toMatch(new RegExp(`\\b${code}\\b`));
  });

  it('every sh block runs and prints what the route promises', async () => {
    const scripts = blocks(doc, 'sh');
    expect(scripts.length).toBeGreaterThanOrEqual(6);
    for (const script of scripts) {
      const { stdout } = await run('/bin/bash', ['-euo', 'pipefail', '-c', script], {
        cwd: dir,
        env: { PATH: process.env.PATH ?? '', MAGMA_URL: running.url },
        timeout: 120_000,
        maxBuffer: 16 * 1024 * 1024,
      }).catch((error: { stdout?: string; stderr?: string }) => {
        throw new Error(`block failed:\n${script}\n${error.stderr ?? ''}${error.stdout ?? ''}`);
      });
      checkOutput(script, stdout);
    }
  });
});
