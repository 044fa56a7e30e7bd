import { beforeAll, describe, expect, it } from 'vitest';
import { PromptTokenizer } from '../../src/engine/prompt.js';
import { Sequence } from '../../src/engine/sequence.js';
import type { SequenceRequest } from '../../src/engine/sequence.js';
import { magmaTokenizerFiles } from './helpers/llama3-tokenizer.js';

const EOT = 128009;
const END_OF_TEXT = 128001;
let prompt: PromptTokenizer;
beforeAll(() => {
  prompt = new PromptTokenizer(magmaTokenizerFiles(), 128257);
});

function request(overrides: Partial<SequenceRequest> = {}): SequenceRequest {
  return {
    id: 1,
    image: { data: new Uint8Array(3), width: 1, height: 1 },
    prompt: 'q',
    maxTokens: 10,
    temperature: 0,
    stop: [],
    suppressActionTokens: false,
    stream: true,
    ...overrides,
  };
}

function sequence(overrides: Partial<SequenceRequest> = {}): Sequence {
  return new Sequence(request(overrides), {
    eosTokenIds: [EOT, END_OF_TEXT],
    sampling: { temperature: 0, topP: 1 },
    decode: (ids) => prompt.decode(ids),
  });
}

/** Logits that make greedy decoding pick `id`. */
function pick(id: number): Float32Array {
  const logits = new Float32Array(128320);
  logits[id] = 10;
  return logits;
}

describe('Sequence', () => {
  it('stops on any end-of-sequence id from generation_config', () => {
    for (const eos of [EOT, END_OF_TEXT]) {
      const s = sequence();
      expect(s.accept(pick(791))).toBe('The');
      s.accept(pick(eos));
      expect(s.finishReason).toBe('stop');
      expect(s.result()).toMatchObject({
        text: 'The',
        finishReason: 'stop',
        usage: { completionTokens: 2 },
      });
    }
  });

  it('ends with length after maxTokens', () => {
    const s = sequence({ maxTokens: 3 });
    for (let i = 0; i < 3; i++) s.accept(pick(791));
    expect(s.finishReason).toBe('length');
    expect(s.result().text).toBe('TheTheThe');
  });

  it('ends on a stop string without returning it', () => {
    const s = sequence({ stop: [' letter'] });
    const pieces = [791, 6661, 389].map((id) => s.accept(pick(id))); // "The", " letter", " on"
    expect(s.finishReason).toBe('stop');
    expect(pieces.join('')).toBe('The');
    expect(s.generated).toBe(2);
  });

  it('keeps the last sampled id as the next input', () => {
    const s = sequence();
    s.accept(pick(1234));
    expect(s.lastToken).toBe(1234);
    expect(s.done).toBe(false);
  });
});
