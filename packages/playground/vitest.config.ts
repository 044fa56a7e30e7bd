import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: { conditions: ['@magma-som/source'] },
  ssr: { resolve: { conditions: ['@magma-som/source'] } },
  test: {
    name: 'playground',
    include: ['test/**/*.test.ts'],
    // The browser test builds the page (when needed) and starts the real model; the machine's
    // cores are shared.
    testTimeout: 180_000,
    hookTimeout: 600_000,
  },
});
