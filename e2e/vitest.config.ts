import { defineConfig } from 'vitest/config';

// `npm run test:e2e`, after `npm run build`: the built server and SDK, as users run them. No
// `@magma-som/source` condition here, so workspace packages resolve to their dist/ builds.
export default defineConfig({
  test: {
    name: 'e2e',
    root: import.meta.dirname,
    include: ['**/*.test.ts'],
    // Child processes load the real model; the machine's cores are shared.
    testTimeout: 120_000,
    hookTimeout: 360_000,
  },
});
