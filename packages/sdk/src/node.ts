// The Node entry: everything of the default entry, with a client that also reads images from
// file paths and file: URLs. Node, Deno and Bun resolve `@magma-som/sdk` here (the "node"
// export condition); `@magma-som/sdk/node` names it explicitly.
import { MagmaClient as WebMagmaClient } from './client.js';
import type { ClientOptions } from './options.js';
import { readImageFile } from './node/read-image-file.js';
import { requestFetch } from './node/request-fetch.js';

export * from './index.js';

/**
 * A typed client of a magma-som server (see the default entry's MagmaClient); images may also be
 * file paths or `file:` URLs.
 */
export class MagmaClient extends WebMagmaClient {
  protected override readImageFile(path: string | URL): Promise<Uint8Array> {
    return readImageFile(path);
  }

  protected override runtimeUnaryFetch(): typeof fetch {
    return requestFetch;
  }
}

/**
 * Creates a client. Requests go through Node's HTTP client (undici): its keep-alive pool, a
 * global dispatcher set with undici's setGlobalDispatcher() (a proxy), or the `dispatcher`
 * given. Calls answered in one piece use the client's request(), streams and uploads its fetch.
 * Close it (or `await using`) when done: that stops pending retries.
 */
export function createClient(options: ClientOptions): MagmaClient {
  return new MagmaClient(options);
}
