import { beforeAll, describe, expect, it } from 'vitest';
import { EngineError } from '../../src/engine/errors.js';
import { PromptTokenizer } from '../../src/engine/prompt.js';
import { magmaTokenizerFiles } from './helpers/llama3-tokenizer.js';

const IMAGE_TOKEN = 128257;

describe('PromptTokenizer with the real Llama-3 tokenizer and Magma added tokens', () => {
  let prompt: PromptTokenizer;
  beforeAll(() => {
    prompt = new PromptTokenizer(magmaTokenizerFiles(), IMAGE_TOKEN);
  });

  it('renders Magma system prompt and user turn with the chat template', () => {
    expect(prompt.render('What is in this image?')).toBe(
      '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are agent that can see, talk and act.<|eot_id|>' +
        '<|start_header_id|>user<|end_header_id|>\n\n<image_start><image><image_end>\nWhat is in this image?<|eot_id|>' +
        '<|start_header_id|>assistant<|end_header_id|>\n\n',
    );
  });

  it('reproduces the ids Magma sees, double BOS included', () => {
    expect(prompt.encodeQuestion('What is in this image?')).toEqual([
      128000, 128000, 128006, 9125, 128007, 271, 2675, 527, 8479, 430, 649, 1518, 11, 3137, 323,
      1180, 13, 128009, 128006, 882, 128007, 271, 128259, 128257, 128260, 198, 3923, 374, 304, 420,
      2217, 30, 128009, 128006, 78191, 128007, 271,
    ]);
  });

  it('decodes generated ids skipping special tokens', () => {
    expect(prompt.decode([791, 6661, 389, 279, 12585, 374, 330, 44, 3343, 128009])).toBe(
      'The letter on the robot is "M".',
    );
  });

  it('refuses a question that carries its own <image> placeholder', () => {
    expect(() => prompt.encodeUserQuestion('look: <image>')).toThrow(EngineError);
    expect(() => prompt.encodeUserQuestion('look: <image>')).toThrow(/placeholder/);
  });
});

describe('PromptTokenizer start-up checks', () => {
  it('fails when <image> is not the configured image token', () => {
    expect(() => new PromptTokenizer(magmaTokenizerFiles(), 12)).toThrow(
      /tokenizer\.json.*image_token_index 12/,
    );
  });

  it('fails on a chat template that does not parse', () => {
    const files = { ...magmaTokenizerFiles(), chatTemplate: '{% for m in messages %}' };
    expect(() => new PromptTokenizer(files, IMAGE_TOKEN)).toThrow(
      /tokenizer_config\.json: chat_template/,
    );
  });

  it('fails on a tokenizer.json it cannot load', () => {
    const files = { ...magmaTokenizerFiles(), tokenizerJson: { model: { type: 'NoSuchModel' } } };
    expect(() => new PromptTokenizer(files, IMAGE_TOKEN)).toThrow(
      /tokenizer\.json: cannot be loaded/,
    );
  });
});
