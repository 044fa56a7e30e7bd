import { readFile } from 'node:fs/promises';
import { Validator } from '@seriousme/openapi-schema-validator';
import * as contract from '@magma-som/schemas';
import { CONTRACT_SCHEMA_NAMES, ERROR_CODES } from '@magma-som/schemas';
import type { ZodType } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/engine/index.js';
import { DEFAULT_MODEL_ID, buildOpenApiDocument } from '../../src/openapi/document.js';
import { OPENAPI_FILE, openApiFileText } from '../../src/openapi/file.js';
import { serverVersion } from '../../src/version.js';
import { startTestEngine, startTestServer } from '../server/helpers.js';
import type { RunningServer } from '../server/helpers.js';
import { startRedis } from '../jobs/redis.js';
import type { TestRedis } from '../jobs/redis.js';
import { parseSse } from './sse.js';

// The OpenAPI document: valid 3.1, in step with the zod contract and the committed copies,
// and every example in it works against a real server running the real tiny model.

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

let engine: Engine;
let redis: TestRedis;
let running: RunningServer;
let served: Json;

beforeAll(async () => {
  // With Redis, so the documented batch routes can be called too.
  [engine, redis] = await Promise.all([startTestEngine(), startRedis()]);
  running = await startTestServer(engine, { maxTokens: 16, redisUrl: redis.url });
  served = (await (await fetch(`${running.url}/openapi.json`)).json()) as Json;
}, 180_000);

afterAll(async () => {
  await running?.server.shutdown();
  await engine?.close();
  await redis?.stop();
});

/** The zod schema behind a component reference. */
function zodFor(ref: string): ZodType {
  const name = ref.replace('#/components/schemas/', '');
  const key = name === 'ModelList/properties/data/items' ? 'ModelSchema' : `${name}Schema`;
  const schema = (contract as unknown as Record<string, ZodType>)[key];
  if (schema === undefined) throw new Error(`no zod schema for ${ref}`);
  return schema;
}

describe('the document', () => {
  it('is valid OpenAPI 3.1', async () => {
    const validator = new Validator();
    const result = await validator.validate(structuredClone(served));
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    expect(validator.version).toBe('3.1');
  });

  it('is what the server serves for the model it runs, and docs/openapi.json is current', async () => {
    expect(engine.info.name).toBe(DEFAULT_MODEL_ID);
    expect(served).toEqual(
      buildOpenApiDocument({ version: serverVersion(), modelId: engine.info.name }),
    );
    const committed = await readFile(OPENAPI_FILE, 'utf8');
    expect(committed, 'regenerate with: npm run openapi -w @magma-som/server').toBe(
      openApiFileText(),
    );
  });

  it('its component schemas are the published JSON Schema files of @magma-som/schemas', async () => {
    expect(Object.keys(served.components.schemas).sort()).toEqual(
      [...CONTRACT_SCHEMA_NAMES].sort(),
    );
    for (const name of CONTRACT_SCHEMA_NAMES) {
      const file = new URL(`../../../schemas/json/${name}.json`, import.meta.url);
      const { $schema: _dialect, ...published } = JSON.parse(await readFile(file, 'utf8')) as Json;
      expect(served.components.schemas[name], `${name} (rebuild @magma-som/schemas)`).toEqual(
        published,
      );
    }
  });

  it('covers every route and carries the whole error catalog', () => {
    expect(Object.keys(served.paths).sort()).toEqual(
      [
        '/health',
        '/metrics',
        '/openapi.json',
        '/ready',
        '/v1/chat/completions',
        '/v1/models',
        '/v1/models/{id}',
        '/v1/som/ask',
        '/v1/som/ask/stream',
        '/v1/som/batches',
        '/v1/som/batches/{batchId}',
        '/v1/som/batches/{batchId}/results',
        '/v1/som/batches/{batchId}/cancel',
      ].sort(),
    );
    expect(Object.keys(served['x-error-catalog'])).toEqual([...ERROR_CODES]);
    for (const code of ERROR_CODES) expect(served.info.description).toContain(`| ${code} |`);
  });

  it('its error examples match the documented error shapes', () => {
    let count = 0;
    for (const operations of Object.values(served.paths) as Json[]) {
      for (const operation of Object.values(operations) as Json[]) {
        for (const [status, response] of Object.entries(operation.responses as Json)) {
          if (status === '200') continue;
          for (const media of Object.values((response as Json).content ?? {}) as Json[]) {
            for (const example of Object.values(media.examples ?? {}) as Json[]) {
              zodFor(media.schema.$ref as string).parse(example.value);
              count++;
            }
          }
        }
      }
    }
    expect(count).toBeGreaterThan(20);
  });
});

describe('every documented example, against the server', () => {
  const operations = (): Array<{ path: string; method: string; operation: Json }> =>
    Object.entries(
      buildOpenApiDocument({ version: serverVersion(), modelId: DEFAULT_MODEL_ID }).paths as Json,
    ).flatMap(([path, ops]) =>
      Object.entries(ops as Json).map(([method, operation]) => ({
        path,
        method,
        operation: operation as Json,
      })),
    );

  it('request body examples answer their documented 2xx in the documented shape', async () => {
    let executed = 0;
    for (const { path, method, operation } of operations()) {
      const media = operation.requestBody?.content?.['application/json'] as Json | undefined;
      for (const [name, example] of Object.entries((media?.examples ?? {}) as Json)) {
        const response = await fetch(`${running.url}${path}`, {
          method: method.toUpperCase(),
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(example.value),
        });
        const text = await response.text();
        const documented = Object.keys(operation.responses).find((code) => code.startsWith('2'))!;
        expect(String(response.status), `${path} example ${name}: ${text}`).toBe(documented);
        const ok = operation.responses[documented].content as Json;
        if (response.headers.get('content-type')?.startsWith('text/event-stream')) {
          const itemSchema = zodFor(ok['text/event-stream']['x-event-data'].$ref as string);
          const events = parseSse(text).filter((event) => event.data !== '[DONE]');
          expect(events.length).toBeGreaterThan(0);
          for (const event of events) itemSchema.parse(JSON.parse(event.data));
        } else {
          zodFor(ok['application/json'].schema.$ref as string).parse(JSON.parse(text));
        }
        executed++;
      }
    }
    // Two ask examples on each of the two REST routes, three chat examples, one batch.
    expect(executed).toBe(8);
  });

  it('GET routes answer 200 in the documented shape (path parameters from their examples)', async () => {
    for (const { path, method, operation } of operations()) {
      // A batch's routes need a batch that exists: the next test.
      if (method !== 'get' || path.includes('{batchId}')) continue;
      let url = path;
      for (const parameter of (operation.parameters ?? []) as Json[]) {
        url = url.replace(`{${parameter.name}}`, String(parameter.example));
      }
      const response = await fetch(`${running.url}${url}`);
      expect(response.status, url).toBe(200);
      const json = (operation.responses['200'].content as Json)['application/json'] as
        Json | undefined;
      const ref = json?.schema?.$ref as string | undefined;
      if (ref !== undefined) zodFor(ref).parse(await response.json());
      else await response.text();
    }
  });

  it('the batch routes answer as documented for a batch made from the documented example', async () => {
    const document = buildOpenApiDocument({ version: serverVersion(), modelId: DEFAULT_MODEL_ID });
    const create = (document.paths as Json)['/v1/som/batches'].post as Json;
    const example = create.requestBody.content['application/json'].examples.batch.value as Json;
    const created = await fetch(`${running.url}/v1/som/batches`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(example),
    });
    expect(created.status).toBe(202);
    const { batchId } = zodFor(
      create.responses['202'].content['application/json'].schema.$ref,
    ).parse(await created.json()) as { batchId: string };

    const batchRoutes = operations().filter(({ path }) => path.includes('{batchId}'));
    expect(batchRoutes.map(({ method, path }) => `${method} ${path}`).sort()).toEqual([
      'get /v1/som/batches/{batchId}',
      'get /v1/som/batches/{batchId}/results',
      'post /v1/som/batches/{batchId}/cancel',
    ]);
    for (const { path, method, operation } of batchRoutes) {
      const parameters = (operation.parameters ?? []) as Json[];
      expect(parameters.find((p) => p.name === 'batchId')?.example).toMatch(
        new RegExp(parameters.find((p) => p.name === 'batchId')!.schema.pattern as string),
      );
      const query = parameters.some((p) => p.name === 'limit') ? '?cursor=0&limit=1' : '';
      const url = `${running.url}${path.replace('{batchId}', batchId)}${query}`;
      const response = await fetch(url, { method: method.toUpperCase() });
      expect(response.status, `${method} ${path}`).toBe(200);
      zodFor(operation.responses['200'].content['application/json'].schema.$ref as string).parse(
        await response.json(),
      );

      // The example id is well-formed but names no batch: the documented 404.
      const unknown = await fetch(
        `${running.url}${path.replace('{batchId}', parameters[0]!.example as string)}`,
        { method: method.toUpperCase() },
      );
      expect(unknown.status).toBe(404);
      expect(operation.responses['404']).toBeDefined();
      zodFor(operation.responses['404'].content['application/json'].schema.$ref as string).parse(
        await unknown.json(),
      );
    }
  });
});
