import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: { conditions: ['@magma-som/source'] },
  ssr: { resolve: { conditions: ['@magma-som/source'] } },
  test: {
    name: 'sdk',
    include: ['test/**/*.test.ts', 'src/**/*.test.ts'],
    // Many tests start the real model (a worker thread, a warm-up inference); on a loaded 2-core
    // machine that takes far longer than vitest's 5 s / 10 s defaults.
    testTimeout: 180_000,
    hookTimeout: 300_000,
  },
});
