import type { ServerConfig } from '../config/config.js';
import type { AccessControl } from '../http/access.js';
import type { ServerState } from '../lifecycle/server-state.js';
import type { AskCall, ServerServices } from '../trpc/context.js';
import type { AskResponse } from '@magma-som/schemas';
import { toApiError } from '../errors/to-api-error.js';

/** What the plain HTTP APIs (REST, OpenAI-compatible, OpenAPI) need from the server. */
export interface HttpApiDeps {
  readonly config: ServerConfig;
  readonly services: ServerServices;
  readonly access: AccessControl;
  readonly state: ServerState;
  readonly version: string;
}

/** Runs an ask through the shared pipeline and counts it in /metrics under `name`. */
export async function timedAsk(
  deps: HttpApiDeps,
  name: string,
  call: AskCall,
): Promise<AskResponse> {
  const started = performance.now();
  try {
    const response = await deps.services.ask(call);
    deps.services.recordCall(name, 'ok', performance.now() - started);
    return response;
  } catch (error) {
    deps.services.recordCall(name, toApiError(error).code, performance.now() - started);
    throw error;
  }
}

/** Whether the client set maxTokens itself (only an explicit value over the cap is refused). */
export function hasExplicitMaxTokens(options: unknown): boolean {
  return (
    typeof options === 'object' &&
    options !== null &&
    (options as { maxTokens?: unknown }).maxTokens !== undefined
  );
}
