import { apiErrorOf } from './errors.js';
import { t } from './init.js';

/** Counts each call by procedure and outcome for /metrics. */
const timed = t.middleware(async ({ ctx, path, next }) => {
  const started = performance.now();
  const result = await next();
  const outcome = result.ok ? 'ok' : apiErrorOf(result.error).code;
  ctx.services.recordCall(path, outcome, performance.now() - started);
  return result;
});

/** A procedure counted in /metrics. */
export const procedure = t.procedure.use(timed);
