import { setMaxListeners } from 'node:events';
import type { Readiness } from '@magma-som/schemas';
import { ApiError } from '../errors/api-error.js';
import type { ServingEngine } from '../pipeline/serving-engine.js';

/** How long clients are told to wait while the model loads or the server drains. */
export const NOT_READY_RETRY_MS = 5_000;

/**
 * Where the server is in its life: loading the model, warming it up, serving, shutting down.
 * /ready, `info` and the pipeline all read it from here.
 */
export class ServerState {
  private engineRef: ServingEngine | undefined;
  private warm = false;
  private shuttingDown = false;
  private loadFailed = false;
  private failureReason = 'the model failed to load; see the server log';
  /** An api-role process: no model by design, ready once its job queue is reachable. */
  private modelless = false;
  private readonly shutdownController = new AbortController();

  constructor() {
    // Every request in flight listens to the shutdown signal; that is not a leak.
    setMaxListeners(Infinity, this.shutdownController.signal);
  }

  /** Aborts (with a MODEL_NOT_READY reason) when work still running must give up. */
  get shutdownSignal(): AbortSignal {
    return this.shutdownController.signal;
  }

  get engine(): ServingEngine | undefined {
    return this.engineRef;
  }

  get isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  get isReady(): boolean {
    return (
      this.engineRef !== undefined &&
      this.engineRef.failure === undefined &&
      this.warm &&
      !this.shuttingDown
    );
  }

  engineLoaded(engine: ServingEngine): void {
    this.engineRef = engine;
  }

  warmedUp(): void {
    this.warm = true;
  }

  /** The model could not be loaded or warmed up; the server stays unready (details go to the log). */
  failed(reason?: string): void {
    this.loadFailed = true;
    if (reason !== undefined) this.failureReason = reason;
  }

  /** MAGMA_ROLE=api: serve batch jobs without a model; /ready says ready, asks are refused. */
  servesWithoutModel(): void {
    this.modelless = true;
  }

  beginShutdown(): void {
    this.shuttingDown = true;
  }

  /** Makes whatever is still queued or running fail with a typed error. */
  abortRemainingWork(): void {
    this.shutdownController.abort(
      new ApiError('MODEL_NOT_READY', 'the server shut down before this request finished', {
        retryAfterMs: NOT_READY_RETRY_MS,
      }),
    );
  }

  readiness(): Readiness {
    const base = {
      ready: this.modelless ? !this.shuttingDown && !this.loadFailed : this.isReady,
      modelLoaded: this.engineRef !== undefined,
      warm: this.warm,
      shuttingDown: this.shuttingDown,
      // What the loaded model holds in memory (bytes per graph and dtype, KV bytes per token).
      ...(this.engineRef?.info.memory !== undefined ? { memory: this.engineRef.info.memory } : {}),
    };
    if (base.ready) return base;
    return { ...base, reason: this.notReadyReason() };
  }

  /** The error a request gets when it arrives while the server cannot take it. */
  notReadyError(): ApiError {
    return new ApiError('MODEL_NOT_READY', this.notReadyReason(), {
      retryAfterMs: NOT_READY_RETRY_MS,
    });
  }

  private notReadyReason(): string {
    if (this.shuttingDown) return 'the server is shutting down';
    if (this.loadFailed) return this.failureReason;
    if (this.modelless) {
      return 'this process runs no model (MAGMA_ROLE=api): it takes batch jobs for worker processes';
    }
    if (this.engineRef?.failure !== undefined)
      return 'the model engine crashed and could not be restarted; see the server log';
    if (this.engineRef === undefined) return 'the model is loading';
    return 'the model is warming up';
  }
}
