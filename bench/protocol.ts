// Messages between the benchmark (parent) and the server it runs as a child process.

/** Event-loop delay of the server's main thread since the last reset, in milliseconds. */
export interface LoopDelay {
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
  readonly mean: number;
  /** Timer samples taken (one per resolution interval when the loop is free). */
  readonly samples: number;
}

export type ToServer =
  | { readonly type: 'loop-reset' }
  | { readonly type: 'loop-read' }
  | { readonly type: 'gc' }
  | { readonly type: 'stop' };

export type FromServer =
  | { readonly type: 'ready'; readonly url: string }
  | { readonly type: 'loop'; readonly delay: LoopDelay }
  | { readonly type: 'gc-done' }
  | { readonly type: 'failed'; readonly message: string };
