#!/usr/bin/env node
// The `magma-som` command. It runs cli/main.ts with tsx, straight from TypeScript: the
// "@magma-som/source" condition resolves @magma-som/sdk to its sources, so no build is needed.
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { fileURLToPath } from 'node:url';

const main = fileURLToPath(new URL('./main.ts', import.meta.url));
const child = spawn(
  process.execPath,
  [
    '--conditions=@magma-som/source',
    '--import',
    import.meta.resolve('tsx'),
    main,
    ...process.argv.slice(2),
  ],
  { stdio: 'inherit' },
);
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
child.on('exit', (code, signal) => {
  process.exitCode = code ?? 128 + (constants.signals[signal] ?? 0);
});
