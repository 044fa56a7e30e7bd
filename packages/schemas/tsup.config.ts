import { defineConfig } from 'tsup';

export default defineConfig({
  // plain: the zod-free parts, for clients that bundle only what they use.
  entry: ['src/index.ts', 'src/plain.ts'],
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
});
