// A TypeScript CommonJS module using the installed SDK (compiled to require()).
import assert from 'node:assert/strict';
import { ClientClosedError, createClient } from '@magma-som/sdk';
import type { Readiness } from '@magma-som/sdk';

async function main(): Promise<void> {
  // Node resolves the package's "node" condition: the entry that also reads file paths.
  assert.match(require.resolve('@magma-som/sdk'), /node\.cjs$/);
  const client = createClient({
    baseUrl: process.env.MAGMA_URL!,
    apiKey: process.env.MAGMA_API_KEY!,
  });
  {
    await using scoped = client;
    const ready: Readiness = await scoped.ready();
    assert.equal(ready.ready, true);
    const response = await scoped.ask({
      image: process.env.MAGMA_IMAGE!,
      prompt: 'What is in #1?',
      marks: [[4, 4, 40, 40]],
    });
    assert.equal(typeof response.answer, 'string');
  }
  await assert.rejects(client.info(), ClientClosedError);
  console.log('cjs (TypeScript): ok');
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
