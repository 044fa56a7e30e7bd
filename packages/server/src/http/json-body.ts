import { errorCodes } from 'fastify';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { parseJsonBytes } from './json-text.js';
import type { WorkerJsonBodyResult } from './json-text.js';

// JSON bodies are parsed off the main thread once they are large. Decoding the bytes to a
// string and JSON.parse take about 8 ms per MB here, on the event loop: an ask with a photo in
// base64 (4-15 MB) would stall every other request, /health included, for 30-120 ms. Above
// OFFLOAD_JSON_BYTES the body is moved to a worker of the image pool, parsed there, and the
// value comes back as a structured clone (a copy at memory speed); below it, the hop to a
// worker would cost more than it saves. Measured with 8 asks of 4 MB bodies at once: the
// server's event-loop delay p99 went from 43 to 23 ms and its max from 255 to 78-107 ms.

/** Bodies from this size on are parsed in the worker pool. */
export const OFFLOAD_JSON_BYTES = 128 * 1024;

/** Where large bodies are parsed (the image pool's workers); the bytes are theirs from then on. */
export interface JsonParser {
  parseJson(bytes: Uint8Array): Promise<WorkerJsonBodyResult>;
}

/**
 * Replaces the application/json parser of `app` (and the scopes that inherit it): the same
 * results and the same errors as Fastify's own, large bodies parsed by `parser`.
 */
export function useJsonBodyParser(app: FastifyInstance, parser: JsonParser): void {
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser(
    'application/json',
    { parseAs: 'buffer' },
    async (_request: FastifyRequest, bytes: Buffer) => {
      const result =
        bytes.byteLength < OFFLOAD_JSON_BYTES
          ? parseJsonBytes(bytes)
          : await parser.parseJson(bytes);
      if (result.ok) return result.value;
      throw result.reason === 'empty'
        ? new errorCodes.FST_ERR_CTP_EMPTY_JSON_BODY()
        : new errorCodes.FST_ERR_CTP_INVALID_JSON_BODY();
    },
  );
}
