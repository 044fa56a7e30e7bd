import { rmSync } from 'node:fs';
import { defineConfig } from 'tsup';
import type { Options } from 'tsup';

// The two builds below run side by side, so neither may clean the folder the other writes to.
rmSync(new URL('./dist', import.meta.url), { recursive: true, force: true });

// The SDK has no dependencies: what it uses is bundled into dist, so a user's production install
// is this package alone (test/pack/install-size.sh). The tRPC client because @trpc/client and
// @trpc/server declare a peer dependency on typescript (a compiler in every install); the
// zod-free part of @magma-som/schemas and zod/mini (src/contract/) because zod's package is
// 8 MB; p-retry because it is small and ships only as ES modules. The declarations carry the
// contract's types as plain TypeScript (src/contract/types.ts).
const BUNDLED = [
  '@trpc/client',
  '@trpc/server',
  '@magma-som/schemas',
  'zod',
  'p-retry',
  'is-network-error',
];

const shared: Options = {
  // index: Web APIs only (browsers, edge runtimes); node: the same plus file paths.
  entry: ['src/index.ts', 'src/node.ts'],
  sourcemap: true,
  dts: true,
  target: 'es2022',
  noExternal: BUNDLED,
  // the workspace's schemas from source: no build of them needed first
  esbuildOptions(options) {
    options.conditions = ['@magma-som/source'];
  },
};

export default defineConfig([
  // ESM: both entries share one chunk, so a class is the same class through either.
  { ...shared, format: 'esm' },
  { ...shared, format: 'cjs' },
]);
