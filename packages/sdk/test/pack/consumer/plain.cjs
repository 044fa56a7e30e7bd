// Plain JavaScript, CommonJS: require() is the point of this file.
/* eslint-disable @typescript-eslint/no-require-imports */
const assert = require('node:assert/strict');
const { createClient, AuthenticationError } = require('@magma-som/sdk');

(async () => {
  const client = createClient({
    baseUrl: process.env.MAGMA_URL,
    apiKey: 'not-the-key',
    maxRetries: 0,
  });
  try {
    await assert.rejects(
      client.info(),
      (error) => error instanceof AuthenticationError && error.status === 401,
    );
  } finally {
    await client.close();
  }
  console.log('cjs (plain JS): ok');
})().catch((error) => {
  console.error(error);
  process.exit(1);
});
