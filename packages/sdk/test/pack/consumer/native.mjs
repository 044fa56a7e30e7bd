// Plain JavaScript, ES module, with native `await using` (no compiler): Node 24+ only, since
// Node 20 and 22 do not parse the syntax. run.sh runs this file on Node 24 and later.
import assert from 'node:assert/strict';
import { ClientClosedError, createClient } from '@magma-som/sdk';

let escaped;
{
  await using client = createClient({
    baseUrl: process.env.MAGMA_URL,
    apiKey: process.env.MAGMA_API_KEY,
  });
  escaped = client;
  const response = await client.ask({
    image: process.env.MAGMA_IMAGE,
    prompt: 'What is in #1?',
    marks: [[4, 4, 40, 40]],
  });
  assert.equal(typeof response.answer, 'string');
  assert.equal(escaped.closed, false);
}
assert.equal(escaped.closed, true, 'native `await using` closed the client');
await assert.rejects(escaped.info(), ClientClosedError);
console.log('esm (plain JS, native `await using`): ok');
