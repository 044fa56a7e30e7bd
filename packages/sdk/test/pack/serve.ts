// For the packaging test: starts the workspace's server with the tiny model on a free port,
// writes a small test image to the path given as argument, and prints "<url> <api key>".
// Stops on SIGTERM/SIGINT.
import { writeFile } from 'node:fs/promises';
import { smallPng } from '../support/images.js';
import { API_KEY, startRealServer } from '../support/real-server.js';

const imagePath = process.argv[2];
if (!imagePath) throw new Error('usage: serve.ts <image output path>');
await writeFile(imagePath, await smallPng(120, 90));
const running = await startRealServer();
console.log(`${running.url} ${API_KEY}`);
const stop = () => void running.close().then(() => process.exit(0));
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
