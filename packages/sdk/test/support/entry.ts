import * as web from '../../src/index.js';
import type { ClientOptions, MagmaClient } from '../../src/index.js';
import * as node from '../../src/node.js';

/**
 * The entry a test file runs against: the Node entry (calls through undici's request()), or the
 * default Web-APIs-only entry (everything through fetch) in the `sdk-web` project, which runs the
 * transport-sensitive files again with MAGMA_SDK_TEST_ENTRY=web.
 */
export const entryName = process.env['MAGMA_SDK_TEST_ENTRY'] === 'web' ? 'web' : 'node';

export const createClient: (options: ClientOptions) => MagmaClient =
  entryName === 'web' ? web.createClient : node.createClient;
