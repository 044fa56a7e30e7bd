// The parts of the contract that need no zod: limits, error codes, image strings and ids,
// the box check of a mark.
// Clients that must stay small (the SDK in a browser) import these from
// `@magma-som/schemas/plain`; the schemas themselves are in the main entry.
export * from './limits.js';
export * from './error-codes.js';
export * from './image-string.js';
export * from './mark-box.js';
