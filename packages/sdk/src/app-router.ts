// The server's tRPC router type: the source of the client's end-to-end types. It is imported
// with `import type` only, so nothing of the server reaches the SDK's JavaScript; and the SDK's
// public types are written with the shared schemas, so nothing of it reaches the published
// declarations either (test/pack/run.sh checks both).
export type { AppRouter } from '@magma-som/server';
