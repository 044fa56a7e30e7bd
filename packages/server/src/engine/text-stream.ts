// Turns generated token ids into text as they arrive: decodes incrementally without splitting
// multi-byte characters, cuts at stop strings, and never emits text it may have to take back
// (a partial character, the start of a stop string, leading or trailing whitespace that the
// final trimmed answer drops). Concatenating every emitted piece gives the final text.

const REPLACEMENT_CHAR = '\uFFFD';

export interface StreamStep {
  /** Text that became final with this token ('' if none). */
  readonly delta: string;
  /** A stop string appeared; generation should end. */
  readonly stopped: boolean;
}

export class TextStream {
  private readonly ids: number[] = [];
  private readonly longestStop: number;
  private current = '';
  private emitted = '';
  private stoppedAt = -1;

  constructor(
    private readonly decode: (ids: readonly number[]) => string,
    private readonly stops: readonly string[] = [],
  ) {
    this.stops = stops.filter((stop) => stop.length > 0);
    this.longestStop = Math.max(0, ...this.stops.map((stop) => stop.length));
  }

  get tokenCount(): number {
    return this.ids.length;
  }

  /** The answer so far, trimmed and cut before any stop string. */
  get text(): string {
    return this.current.trim();
  }

  push(id: number): StreamStep {
    if (this.stoppedAt >= 0) return { delta: '', stopped: true };
    const previousLength = this.current.length;
    this.ids.push(id);
    this.current = this.decode(this.ids);
    const stopIndex = this.findStop(Math.max(0, previousLength - this.longestStop));
    if (stopIndex >= 0) {
      this.stoppedAt = stopIndex;
      this.current = this.current.slice(0, stopIndex);
      return { delta: this.advance(this.current.trimEnd().length), stopped: true };
    }
    return { delta: this.advance(this.safeEnd()), stopped: false };
  }

  /** Ends the stream; returns the text not yet emitted. */
  finish(): string {
    return this.advance(this.current.trimEnd().length);
  }

  private findStop(from: number): number {
    let first = -1;
    for (const stop of this.stops) {
      const index = this.current.indexOf(stop, from);
      if (index >= 0 && (first < 0 || index < first)) first = index;
    }
    return first;
  }

  /** End of the text that can no longer change or be cut. */
  private safeEnd(): number {
    let end = this.current.length;
    while (end > 0 && this.current[end - 1] === REPLACEMENT_CHAR) end--;
    // hold back a tail that could still grow into a stop string
    for (let length = Math.min(this.longestStop - 1, end); length > 0; length--) {
      const tail = this.current.slice(end - length, end);
      if (this.stops.some((stop) => stop.startsWith(tail))) {
        end -= length;
        break;
      }
    }
    return this.current.slice(0, end).trimEnd().length;
  }

  private advance(end: number): string {
    const start = this.current.length - this.current.trimStart().length;
    const visible = end > start ? this.current.slice(start, end) : '';
    // Tokenizer clean-up can rewrite text already emitted (rare); wait until it is a prefix again.
    if (!visible.startsWith(this.emitted)) return '';
    const delta = visible.slice(this.emitted.length);
    this.emitted = visible;
    return delta;
  }
}
