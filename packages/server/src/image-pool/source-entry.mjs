// The image pool's worker when the server runs from its TypeScript sources (vitest, tsx):
// Node 20 does not apply `--import tsx` to worker threads, so the worker registers tsx itself
// before loading worker.ts. The built server uses dist/image-pool/worker.js instead.
import { register } from 'tsx/esm/api';

register();
// Loaded as the thread starts, not on its first task.
const loading = import('./worker.ts');

export default async function runImageTask(task) {
  const worker = await loading;
  return worker.default(task);
}

export async function parseJson(bytes) {
  const worker = await loading;
  return worker.parseJson(bytes);
}
