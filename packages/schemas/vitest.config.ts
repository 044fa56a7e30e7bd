import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: { conditions: ['@magma-som/source'] },
  ssr: { resolve: { conditions: ['@magma-som/source'] } },
  test: { name: 'schemas', include: ['test/**/*.test.ts', 'src/**/*.test.ts'] },
});
