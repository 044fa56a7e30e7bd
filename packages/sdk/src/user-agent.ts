import { SDK_VERSION } from './version.js';

interface RuntimeGlobals {
  Deno?: { version?: { deno?: string } };
  Bun?: { version?: string };
  process?: { versions?: { node?: string; bun?: string } };
  navigator?: { userAgent?: string };
  document?: unknown;
}

/** The JavaScript runtime and its version, e.g. `node/22.12.0`, `deno/2.1.4`, `bun/1.1.38`. */
export function runtimeName(globals: RuntimeGlobals = globalThis as RuntimeGlobals): string {
  const deno = globals.Deno?.version?.deno;
  if (deno) return `deno/${deno}`;
  const bun = globals.Bun?.version ?? globals.process?.versions?.bun;
  if (bun) return `bun/${bun}`;
  const node = globals.process?.versions?.node;
  if (node) return `node/${node}`;
  if (globals.document !== undefined) return 'browser';
  // Edge runtimes name themselves in navigator.userAgent ("Cloudflare-Workers", ...).
  const agent = globals.navigator?.userAgent;
  return agent ? `edge/${agent.replace(/[^\w./-]+/g, '_')}` : 'unknown';
}

/** `magma-som-sdk/<version> <runtime>/<version>`. */
export function userAgent(globals?: RuntimeGlobals): string {
  return `magma-som-sdk/${SDK_VERSION} ${runtimeName(globals)}`;
}

/** Browsers set their own User-Agent; there the SDK names itself in this header instead. */
export const SDK_HEADER = 'x-magma-sdk';
/** Which retry an attempt is: 0 for the first try, like openai-node's x-stainless-retry-count. */
export const RETRY_COUNT_HEADER = 'x-magma-retry-count';
