import { serverVersion } from '../version.js';
import { DEFAULT_MODEL_ID, buildOpenApiDocument } from './document.js';

/** docs/openapi.json at the repository root (only meaningful inside the repository). */
export const OPENAPI_FILE = new URL('../../../../docs/openapi.json', import.meta.url);

/** The committed document's text: the bundled model, this package's version. */
export function openApiFileText(): string {
  const document = buildOpenApiDocument({ version: serverVersion(), modelId: DEFAULT_MODEL_ID });
  return `${JSON.stringify(document, null, 2)}\n`;
}
