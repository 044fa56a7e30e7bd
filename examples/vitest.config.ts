import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: { conditions: ['source'] },
  ssr: { resolve: { conditions: ['source'] } },
  test: { name: 'examples', include: ['**/*.test.ts'], exclude: ['node_modules/**'] },
});
