import { gzipSync } from 'node:zlib';
import type { Plugin } from 'vite';

export interface SizeReport {
  readonly files: readonly { readonly name: string; readonly gzipBytes: number }[];
  readonly totalGzipBytes: number;
}

/** Gzipped bytes of the JavaScript and CSS among `files` (name -> contents). */
export function measureGzip(files: Iterable<[string, string | Uint8Array]>): SizeReport {
  const measured = [...files]
    .filter(([name]) => /\.(js|css)$/.test(name))
    .map(([name, content]) => ({ name, gzipBytes: gzipSync(content, { level: 9 }).byteLength }));
  return {
    files: measured,
    totalGzipBytes: measured.reduce((sum, file) => sum + file.gzipBytes, 0),
  };
}

/** Fails the build when the page's JavaScript + CSS exceed `maxGzipBytes` gzipped; prints the total. */
export function sizeBudget({ maxGzipBytes }: { readonly maxGzipBytes: number }): Plugin {
  return {
    name: 'magma-som:size-budget',
    apply: 'build',
    generateBundle(_options, bundle) {
      const report = measureGzip(
        Object.values(bundle).map((output): [string, string | Uint8Array] => [
          output.fileName,
          output.type === 'chunk' ? output.code : output.source,
        ]),
      );
      const kb = (bytes: number) => `${(bytes / 1024).toFixed(1)} kB`;
      const summary = `playground JS + CSS: ${kb(report.totalGzipBytes)} gzipped (budget ${kb(maxGzipBytes)})`;
      if (report.totalGzipBytes > maxGzipBytes) this.error(summary);
      console.log(summary);
    },
  };
}
