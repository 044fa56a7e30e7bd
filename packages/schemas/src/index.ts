export * from './limits.js';
export * from './mark.js';
export * from './image.js';
export * from './generation.js';
export * from './ask.js';
export * from './references.js';
export * from './errors.js';
export * from './health.js';
