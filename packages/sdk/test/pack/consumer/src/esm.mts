// A TypeScript ES module using the installed SDK; compiled by tsc, run by node.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { InvalidMarksError, MagmaError, createClient } from '@magma-som/sdk';
import type { AskResponse, MagmaClient, ServerInfo } from '@magma-som/sdk';

const baseUrl = process.env.MAGMA_URL!;
const apiKey = process.env.MAGMA_API_KEY!;
const imagePath = process.env.MAGMA_IMAGE!;

let escaped: MagmaClient;
{
  await using client = createClient({ baseUrl, apiKey, maxRetries: 1, timeoutMs: 60_000 });
  escaped = client;
  const info: ServerInfo = await client.info();
  const response: AskResponse = await client.ask({
    image: imagePath,
    prompt: 'What is in #1?',
    marks: [[4, 4, 40, 40], { box: [50, 10, 90, 60] }],
  });
  assert.equal(response.model.id, info.model.id);

  let text = '';
  let done: AskResponse | undefined;
  for await (const event of client.askStream({
    image: await readFile(imagePath),
    prompt: 'Which mark?',
  })) {
    if (event.type === 'token') text += event.text;
    else done = event.response;
  }
  assert.ok(done, 'the stream ends with the whole response');
  assert.equal(text.trim(), done.answer);

  const error = await client
    .ask({ image: imagePath, prompt: 'Hi', marks: [[9, 9, 1, 1]] })
    .catch((e: unknown) => e);
  assert.ok(error instanceof InvalidMarksError && error instanceof MagmaError);
  assert.equal(error.code, 'INVALID_MARKS');
  console.log(`esm (TypeScript): ok, answer ${JSON.stringify(response.answer)}`);
}
assert.equal(escaped.closed, true, '`await using` closed the client');

// The published types reject wrong input at compile time.
const marks = [['a', 1, 2, 3]] as const;
// @ts-expect-error a box holds four numbers
export const badMark = () => escaped.ask({ image: imagePath, prompt: 'x', marks });
// @ts-expect-error `prompt` is required
export const noPrompt = () => escaped.ask({ image: imagePath });
