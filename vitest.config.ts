import { defineConfig } from 'vitest/config';

// One `vitest run` at the root runs every package's tests. The `@magma-som/source` condition
// resolves workspace packages to their TypeScript sources, so tests need no build.
export default defineConfig({
  resolve: { conditions: ['@magma-som/source'] },
  ssr: { resolve: { conditions: ['@magma-som/source'] } },
  test: {
    projects: ['packages/*', 'packages/sdk/vitest.web-entry.config.ts', 'examples'],
  },
});
