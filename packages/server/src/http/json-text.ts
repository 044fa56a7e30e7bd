import secureJsonParse from 'secure-json-parse';

// A JSON request body from its bytes to a value, as Fastify's default parser does it (a body
// holding __proto__ or constructor.prototype is refused), in plain data so that it can run in
// the worker pool (json-body.ts): no Fastify import here, errors as a reason, not a class.

const PARSE_OPTIONS = { protoAction: 'error', constructorAction: 'error' } as const;

export type JsonBodyResult =
  | { readonly ok: true; readonly value: unknown }
  | { readonly ok: false; readonly reason: 'empty' | 'invalid' };

/** A body parsed in a worker: when it is not JSON, its bytes come back (moved), for tRPC's error. */
export type WorkerJsonBodyResult =
  | Extract<JsonBodyResult, { ok: true }>
  | (Extract<JsonBodyResult, { ok: false }> & { readonly bytes: Uint8Array });

/** A body's bytes as UTF-8 text, without copying them first. */
export function utf8Text(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
}

export function parseJsonBytes(bytes: Uint8Array): JsonBodyResult {
  if (bytes.byteLength === 0) return { ok: false, reason: 'empty' };
  try {
    return { ok: true, value: secureJsonParse.parse(utf8Text(bytes), PARSE_OPTIONS) as unknown };
  } catch {
    return { ok: false, reason: 'invalid' };
  }
}
