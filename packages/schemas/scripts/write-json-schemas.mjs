// Writes json/<Name>.json for every contract schema from the built package (run after tsup).
// The schemas test fails when these files and the zod schemas drift apart.
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { CONTRACT_SCHEMA_NAMES, contractJsonSchemaFile } from '../dist/index.js';

const dir = new URL('../json/', import.meta.url);
await mkdir(dir, { recursive: true });
// Schemas no longer in the contract must not linger as stale files.
for (const file of await readdir(dir)) {
  if (file.endsWith('.json') && !CONTRACT_SCHEMA_NAMES.includes(file.slice(0, -5))) {
    await rm(new URL(file, dir));
  }
}
for (const name of CONTRACT_SCHEMA_NAMES) {
  await writeFile(new URL(`${name}.json`, dir), contractJsonSchemaFile(name));
}
console.log(`wrote ${CONTRACT_SCHEMA_NAMES.length} JSON Schema files to json/`);
