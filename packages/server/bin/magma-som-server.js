#!/usr/bin/env node
// The package's command. A committed shim rather than dist/cli.js itself: npm links a
// workspace's bins at install time, before `npm run build` has written dist/, and skips a bin
// whose target is missing, so in a fresh clone `npx magma-som-server` would not be found.
import '../dist/cli.js';
