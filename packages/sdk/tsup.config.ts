import { rmSync } from 'node:fs';
import { defineConfig } from 'tsup';
import type { Options } from 'tsup';

// The two builds below run side by side, so neither may clean the folder the other writes to.
rmSync(new URL('./dist', import.meta.url), { recursive: true, force: true });

// The tRPC client is bundled, not a dependency: @trpc/client and @trpc/server declare a peer
// dependency on typescript, which would otherwise put a compiler in every user's production
// install. The SDK's declarations use only the shared schemas' types (test/pack/run.sh).
const BUNDLED = ['@trpc/client', '@trpc/server'];

const shared: Options = {
  entry: ['src/index.ts'],
  sourcemap: true,
  dts: true,
  target: 'node20',
};

export default defineConfig([
  { ...shared, format: 'esm', noExternal: BUNDLED },
  {
    ...shared,
    format: 'cjs',
    // p-retry and its helper ship only as ES modules, and require() of them does not yield the
    // default export: the CommonJS build carries its own copy.
    noExternal: [...BUNDLED, 'p-retry', 'is-network-error'],
  },
]);
