import { Writable } from 'node:stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Progress } from './progress.js';

/** A stand-in terminal: stderr is not a TTY under the test runner. */
function fakeTerminal(): { stream: NodeJS.WriteStream; written: () => string } {
  let text = '';
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      text += chunk.toString();
      done();
    },
  }) as unknown as NodeJS.WriteStream;
  Object.assign(stream, { isTTY: true, columns: 60 });
  return { stream, written: () => text };
}

describe('Progress', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('shows the streamed answer on one terminal line and erases it when stopped', () => {
    vi.useFakeTimers();
    const terminal = fakeTerminal();
    const progress = new Progress('asking http://x', terminal.stream);
    progress.append('#1 red');
    vi.advanceTimersByTime(100);
    expect(terminal.written()).toContain('asking http://x');
    expect(terminal.written()).toContain('"#1 red"');
    progress.stop();
    expect(terminal.written().endsWith('\r\x1b[K')).toBe(true);
  });

  it('writes nothing when the stream is not a terminal', () => {
    const terminal = fakeTerminal();
    Object.assign(terminal.stream, { isTTY: false });
    const progress = new Progress('asking', terminal.stream);
    progress.append('text');
    progress.stop();
    expect(terminal.written()).toBe('');
  });
});
