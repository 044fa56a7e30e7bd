import { rmSync } from 'node:fs';
import { defineConfig } from 'tsup';
import type { Options } from 'tsup';

// The two builds below run side by side, so neither may clean the folder the other writes to.
rmSync(new URL('./dist', import.meta.url), { recursive: true, force: true });

const shared: Options = {
  entry: ['src/index.ts'],
  sourcemap: true,
  dts: true,
  target: 'node20',
};

export default defineConfig([
  { ...shared, format: 'esm' },
  {
    ...shared,
    format: 'cjs',
    // p-retry and its helper ship only as ES modules, and require() of them does not yield the
    // default export: the CommonJS build carries its own copy.
    noExternal: ['p-retry', 'is-network-error'],
  },
]);
