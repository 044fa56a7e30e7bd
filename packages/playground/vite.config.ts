import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';
import { sizeBudget } from './build/size-budget.js';

/** Built into the server package, which serves it at / and ships it (packages/server/playground). */
export const OUT_DIR = fileURLToPath(new URL('../server/playground', import.meta.url));

export default defineConfig({
  // Relative asset URLs: the page works wherever the server (or a proxy) mounts it.
  base: './',
  build: {
    outDir: OUT_DIR,
    emptyOutDir: true,
    target: 'es2022',
    // Never inline assets as data: URLs; the Content-Security-Policy allows none.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    reportCompressedSize: false,
    // The page shows errors by their class (InvalidMarksError, ...); minified names would not say.
    rolldownOptions: { output: { keepNames: true } },
  },
  plugins: [sizeBudget({ maxGzipBytes: 150 * 1024 })],
});
