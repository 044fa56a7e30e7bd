export { createServer, startServer, jsonBodyLimit } from './server.js';
export type { CreateServerOptions, MagmaServer } from './server.js';
export { loadConfig, ConfigError, usage } from './config/config.js';
export type { LogLevel, ServerConfig } from './config/config.js';
export { appRouter } from './trpc/router.js';
export type { AppRouter } from './trpc/router.js';
export type {
  AskCall,
  AskImageSource,
  RequestContext,
  RequestLog,
  ServerServices,
} from './trpc/context.js';
export type { ServingEngine } from './pipeline/serving-engine.js';
