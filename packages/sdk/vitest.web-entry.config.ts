import { defineConfig } from 'vitest/config';
import sdk from './vitest.config.js';

// The transport-sensitive tests once more against the default entry (Web APIs only: every call
// through fetch), which browsers, Deno and edge runtimes use. The `sdk` project runs them against
// the Node entry, whose calls go through undici's request() (test/support/entry.ts picks).
export default defineConfig({
  ...sdk,
  test: {
    ...sdk.test,
    name: 'sdk-web',
    include: [
      'test/client.test.ts',
      'test/error-mapping.test.ts',
      'test/faults.test.ts',
      'test/stream-timeouts.test.ts',
      'test/transport.test.ts',
    ],
    env: { MAGMA_SDK_TEST_ENTRY: 'web' },
  },
});
