// Writes docs/openapi.json, the committed copy of the document GET /openapi.json serves for
// the bundled model. test/http-api/openapi.test.ts fails when it is stale.
// Run: npm run openapi -w @magma-som/server
import { writeFile } from 'node:fs/promises';
import { OPENAPI_FILE, openApiFileText } from '../src/openapi/file.js';

await writeFile(OPENAPI_FILE, openApiFileText());
console.log(`wrote ${OPENAPI_FILE.pathname}`);
