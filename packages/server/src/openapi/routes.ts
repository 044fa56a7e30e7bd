import type { FastifyInstance } from 'fastify';
import type { HttpApiDeps } from '../rest/deps.js';
import { DEFAULT_MODEL_ID, buildOpenApiDocument } from './document.js';

/** GET /openapi.json: open to all, like /health (it describes the API, it does not use it). */
export async function openApiRoutes(app: FastifyInstance, deps: HttpApiDeps): Promise<void> {
  let cached: { modelId: string; text: string } | undefined;
  app.get('/openapi.json', async (_request, reply) => {
    // The examples name the served model; until it is loaded, the bundled model's id.
    const modelId = deps.state.engine?.info.name ?? DEFAULT_MODEL_ID;
    if (cached?.modelId !== modelId) {
      cached = {
        modelId,
        text: JSON.stringify(buildOpenApiDocument({ version: deps.version, modelId })),
      };
    }
    return reply.type('application/json; charset=utf-8').send(cached.text);
  });
}
