/**
 * The main job, `npm run demo` (which builds first): starts the server on the bundled model,
 * runs the example harness once and the quickstart against it, then stops the server.
 * Exit code 0 only if the server came up, every asserted check passed and the quickstart ran.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { createClient } from '@magma-som/sdk';
import { ServerProcess, freePort } from './demo/server-process.js';
import { formatReport } from './harness/format-report.js';
import { runHarness } from './harness/harness.js';

const READY_TIMEOUT_MS = 120_000;
const serverCli = fileURLToPath(new URL('../packages/server/dist/cli.js', import.meta.url));
const quickstart = fileURLToPath(new URL('./quickstart.ts', import.meta.url));

/** Runs the quickstart as a user would, in its own process, with its output shown as it is. */
async function runQuickstart(url: string): Promise<number | null> {
  const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), quickstart], {
    env: { ...process.env, MAGMA_URL: url },
    stdio: 'inherit',
  });
  const [code] = (await once(child, 'exit')) as [number | null];
  return code;
}

async function demo(): Promise<boolean> {
  if (!existsSync(serverCli)) {
    console.error(`demo: ${serverCli} is missing; build first (npm run demo does: npm run build)`);
    return false;
  }
  const port = await freePort();
  const server = new ServerProcess([serverCli], port, {
    ...process.env,
    MAGMA_LOG_LEVEL: process.env.MAGMA_LOG_LEVEL ?? 'warn',
  });
  console.log(
    `== Starting the server (bundled model unless MAGMA_MODEL_DIR is set) on ${server.url}`,
  );
  try {
    await server.waitUntilReady(READY_TIMEOUT_MS);
    console.log(
      '   ready\n\n== The example harness: four classic Set-of-Mark checks, at 224x168 and 672x504\n',
    );
    await using client = createClient({ baseUrl: server.url });
    const report = await runHarness({ client, runs: 1 });
    console.log(`${formatReport(report)}\n\n== The quickstart (examples/quickstart.ts)\n`);
    const quickstartCode = await runQuickstart(server.url);
    if (quickstartCode !== 0) {
      console.error(`demo: the quickstart failed (exit code ${quickstartCode})`);
    }
    return report.passed && quickstartCode === 0;
  } catch (error) {
    console.error(`demo: ${(error as Error).message}`);
    return false;
  } finally {
    const code = await server.stop();
    console.log(`\n== Server stopped (exit ${code})`);
  }
}

const ok = await demo();
console.log(ok ? 'Demo OK.' : 'Demo FAILED.');
process.exitCode = ok ? 0 : 1;
