import { defineConfig } from 'vitest/config';

// One `vitest run` at the root runs every package's tests. The `source` condition
// resolves workspace packages to their TypeScript sources, so tests need no build.
export default defineConfig({
  resolve: { conditions: ['source'] },
  ssr: { resolve: { conditions: ['source'] } },
  test: {
    projects: ['packages/*', 'examples'],
  },
});
