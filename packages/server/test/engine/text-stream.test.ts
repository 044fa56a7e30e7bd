import { beforeAll, describe, expect, it } from 'vitest';
import { PromptTokenizer } from '../../src/engine/prompt.js';
import { TextStream } from '../../src/engine/text-stream.js';
import { magmaTokenizerFiles } from './helpers/llama3-tokenizer.js';

let prompt: PromptTokenizer;
beforeAll(() => {
  prompt = new PromptTokenizer(magmaTokenizerFiles(), 128257);
});

function encode(text: string): number[] {
  // ids of a text fragment, without the chat template
  const rendered = prompt.encodeQuestion(text);
  const start = rendered.indexOf(198) + 1; // after "<image_end>\n"
  const end = rendered.indexOf(128009, start);
  return rendered.slice(start, end);
}

function run(
  ids: number[],
  stops: string[] = [],
): { pieces: string[]; stream: TextStream; stoppedAfter: number } {
  const stream = new TextStream((all) => prompt.decode(all), stops);
  const pieces: string[] = [];
  let stoppedAfter = -1;
  for (const [i, id] of ids.entries()) {
    const step = stream.push(id);
    if (step.delta) pieces.push(step.delta);
    if (step.stopped) {
      stoppedAfter = i;
      break;
    }
  }
  const rest = stream.finish();
  if (rest) pieces.push(rest);
  return { pieces, stream, stoppedAfter };
}

describe('TextStream', () => {
  it('never emits half a multi-byte character', () => {
    // the emoji and CJK text are split over several byte-level tokens
    const ids = encode('Mark 👍 is 日本語 ok');
    expect(ids.length).toBeGreaterThan(6);
    const { pieces, stream } = run(ids);
    for (const piece of pieces) expect(piece).not.toContain('\uFFFD');
    expect(pieces.join('')).toBe('Mark 👍 is 日本語 ok');
    expect(stream.text).toBe('Mark 👍 is 日本語 ok');
  });

  it('cuts at a stop string and never streams any of it', () => {
    const { pieces, stream, stoppedAfter } = run(encode('Mark: 3\nUser: next question'), [
      '\nUser:',
    ]);
    expect(stoppedAfter).toBeGreaterThanOrEqual(0);
    expect(stream.text).toBe('Mark: 3');
    expect(pieces.join('')).toBe('Mark: 3');
  });

  it('holds back a tail that only might become a stop string', () => {
    const stream = new TextStream((all) => prompt.decode(all), ['STOP']);
    const ids = encode('a ST');
    const pieces = ids.map((id) => stream.push(id).delta).join('');
    expect(pieces).toBe('a');
    expect(stream.finish()).toBe(' ST');
  });

  it('trims leading and trailing whitespace like the final answer', () => {
    const { pieces, stream } = run([...encode('  spaced out  '), 128009]);
    expect(stream.text).toBe('spaced out');
    expect(pieces.join('')).toBe('spaced out');
  });
});
