const FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
const TICK_MS = 80;

/**
 * A one-line spinner on stderr with the elapsed time and the answer so far, erased when done.
 * Silent when stderr is not a terminal, so pipes and logs get only the real output.
 */
export class Progress {
  readonly #stream: NodeJS.WriteStream;
  readonly #label: string;
  readonly #started = performance.now();
  #text = '';
  #frame = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(label: string, stream: NodeJS.WriteStream = process.stderr) {
    this.#stream = stream;
    this.#label = label;
    if (stream.isTTY) {
      this.#timer = setInterval(() => this.#draw(), TICK_MS);
      this.#draw();
    }
  }

  /** Appends streamed answer text to the line. */
  append(text: string): void {
    this.#text += text;
  }

  stop(): void {
    if (this.#timer === undefined) return;
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#stream.write('\r\x1b[K');
  }

  #draw(): void {
    const seconds = ((performance.now() - this.#started) / 1000).toFixed(1);
    const frame = FRAMES[this.#frame++ % FRAMES.length];
    const answer = this.#text ? ` ${JSON.stringify(this.#text.trim())}` : '';
    const line = `${frame} ${this.#label} ${seconds}s${answer}`;
    // One terminal line only: keep the newest text when the answer outgrows the width.
    const width = (this.#stream.columns || 80) - 1;
    const shown =
      line.length > width ? `${line.slice(0, 12)}…${line.slice(line.length - width + 13)}` : line;
    this.#stream.write(`\r\x1b[K${shown}`);
  }
}
