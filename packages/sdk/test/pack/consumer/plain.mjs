// Plain JavaScript, ES module. Node 20 has no `await using` syntax: close explicitly.
import assert from 'node:assert/strict';
import { MagmaClient, RateLimitError, createClient } from '@magma-som/sdk';
import * as nodeEntry from '@magma-som/sdk/node';

// In Node the package's default import is its Node entry; the sub-path names the same module.
assert.equal(nodeEntry.MagmaClient, MagmaClient);
assert.equal(nodeEntry.createClient, createClient);

const client = createClient({ baseUrl: process.env.MAGMA_URL, apiKey: process.env.MAGMA_API_KEY });
try {
  const health = await client.health();
  assert.equal(health.status, 'ok');
  const response = await client.ask({
    image: process.env.MAGMA_IMAGE,
    prompt: 'What is in #1?',
    marks: [[4, 4, 40, 40]],
  });
  assert.equal(typeof response.requestId, 'string');
  assert.equal(typeof RateLimitError, 'function');
} finally {
  await client[Symbol.asyncDispose]();
}
console.log('esm (plain JS): ok');
