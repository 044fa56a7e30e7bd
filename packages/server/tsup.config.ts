import { defineConfig } from 'tsup';

// ESM only: the server is an application with a library entry; the engine worker is
// its own entry so `new Worker(new URL('./engine/worker.js', import.meta.url))` finds it, and so
// is the image pool's (dist/image-pool/worker.js).
export default defineConfig({
  entry: ['src/index.ts', 'src/cli.ts', 'src/engine/worker.ts', 'src/image-pool/worker.ts'],
  format: ['esm'],
  dts: { entry: ['src/index.ts'] },
  sourcemap: true,
  clean: true,
  target: 'node20',
  splitting: true,
});
