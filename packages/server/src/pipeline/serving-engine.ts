import type { PrefixCacheStats } from '../engine/prefix-cache.js';
import type {
  CachedGenerateRequest,
  GenerateRequest,
  GenerateResult,
  ModelInfo,
} from '../engine/types.js';

/** The part of the engine the server uses; `Engine` from src/engine satisfies it. */
export interface ServingEngine {
  readonly info: ModelInfo;
  /**
   * Set when the engine can no longer serve (its worker crashed and could not be restarted):
   * the server then reports not ready, so a load balancer stops routing to it.
   */
  readonly failure?: Error | undefined;
  generate(request: GenerateRequest): Promise<GenerateResult>;
  /**
   * Prefix cache (optional: an engine without one gets every request with its pixels). Whether a
   * prefix key is held now; a generate without pixels for a held key; the cache's counters.
   */
  hasPrefix?(key: string): boolean;
  generateCached?(request: CachedGenerateRequest): Promise<GenerateResult>;
  prefixCacheStats?(): PrefixCacheStats;
  /** One short real inference, run once before the server reports ready. */
  warmup(): Promise<void>;
  close(): Promise<void>;
}
