import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: { conditions: ['@magma-som/source'] },
  ssr: { resolve: { conditions: ['@magma-som/source'] } },
  test: {
    name: 'examples',
    include: ['**/*.test.ts'],
    exclude: ['node_modules/**', 'output/**'],
    // These tests start the real server and model; the machine's cores are shared.
    testTimeout: 180_000,
    hookTimeout: 300_000,
  },
});
