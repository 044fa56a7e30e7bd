// Run by Deno and Bun (run.sh, when their npm packages install): the installed SDK asks the real
// server, file path and all, and streams an answer. Both resolve the package's Node entry.
import assert from 'node:assert/strict';
import process from 'node:process';
import { createClient } from '@magma-som/sdk';

const runtime = globalThis.Deno
  ? `deno ${globalThis.Deno.version.deno}`
  : `bun ${globalThis.Bun?.version}`;
const client = createClient({ baseUrl: process.env.MAGMA_URL, apiKey: process.env.MAGMA_API_KEY });
try {
  const response = await client.ask({
    image: process.env.MAGMA_IMAGE,
    prompt: 'What is in #1?',
    marks: [[4, 4, 40, 40]],
  });
  assert.equal(typeof response.answer, 'string');
  let streamed = '';
  let done;
  for await (const event of client.askStream({ image: process.env.MAGMA_IMAGE, prompt: 'Hi' })) {
    if (event.type === 'token') streamed += event.text;
    else done = event.response;
  }
  assert.ok(done, 'the stream ended with a done event');
  assert.equal(streamed, done.answer);
} finally {
  await client.close();
}
console.log(`${runtime}: ok`);
