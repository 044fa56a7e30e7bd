import { Template } from '@huggingface/jinja';
import { Tokenizer } from '@huggingface/tokenizers';
import type { TokenizerFiles } from './bundle.js';
import { EngineError } from './errors.js';

// Magma's prompt format, as its model card and README write it.
export const MAGMA_SYSTEM_PROMPT = 'You are agent that can see, talk and act.';
const IMAGE_PREFIX = '<image_start><image><image_end>\n';
/** Questions whose ids are kept: a few MB at most with prompts of up to 4,000 characters. */
const RECENT_QUESTIONS = 256;
/** Texts of generated id sequences kept (decode), and the longest sequence kept. */
const RECENT_TEXTS = 1024;
const LONGEST_KEPT_TEXT = 32;
/** Stands for the question while the template is rendered; private-use characters, no spaces. */
const QUESTION_SENTINEL = '\uE000magma-question\uE001';

/**
 * Renders a question with the bundle's chat template and tokenizes it the way Magma's
 * processor does: the rendered text starts with BOS and the tokenizer adds its own, so the
 * ids start with BOS twice.
 */
export class PromptTokenizer {
  private readonly tokenizer: Tokenizer;
  private readonly template: Template;
  private readonly bosTokenId: number | undefined;
  /** Contents of the tokenizer's added tokens (all are matched in template text). */
  private readonly addedTokens: readonly string[];
  /** The template rendered around the question, split and tokenized once (see frame()). */
  private cachedFrame: QuestionFrame | undefined;
  /** Ids of the latest questions, least recently asked first (encodeUserQuestion). */
  private readonly recentQuestions = new Map<string, readonly number[]>();
  /** Texts of recent short id sequences, oldest first (decode). */
  private readonly recentTexts = new Map<string, string>();

  constructor(
    private readonly files: TokenizerFiles,
    private readonly imageTokenId: number,
  ) {
    try {
      this.tokenizer = new Tokenizer(files.tokenizerJson, files.tokenizerConfig);
    } catch (error) {
      throw new EngineError(
        'INVALID_BUNDLE',
        `model bundle: tokenizer.json: cannot be loaded (${(error as Error).message})`,
      );
    }
    try {
      this.template = new Template(files.chatTemplate);
    } catch (error) {
      throw new EngineError(
        'INVALID_BUNDLE',
        `model bundle: tokenizer_config.json: chat_template does not parse (${(error as Error).message})`,
      );
    }
    this.addedTokens = [...this.tokenizer.get_added_tokens_decoder().values()].map(
      (token) => token.content,
    );
    const fromTokenizer =
      files.bosToken === undefined ? undefined : this.tokenizer.token_to_id(files.bosToken);
    this.bosTokenId = fromTokenizer ?? files.bosTokenId;
    if (files.addBosToken && this.bosTokenId === undefined) {
      throw new EngineError(
        'INVALID_BUNDLE',
        'model bundle: tokenizer_config.json: bos_token is not in tokenizer.json and generation_config.json has no bos_token_id',
      );
    }
    // Fails at start-up, not on the first request, if the tokenizer does not know the image token.
    let probe: number[];
    try {
      probe = this.encodeQuestion('?');
    } catch (error) {
      if (error instanceof EngineError) throw error;
      throw new EngineError(
        'INVALID_BUNDLE',
        `model bundle: tokenizer_config.json: chat_template does not render (${(error as Error).message})`,
      );
    }
    if (probe.filter((id) => id === imageTokenId).length !== 1) {
      throw new EngineError(
        'INVALID_BUNDLE',
        `model bundle: tokenizer.json: "<image>" does not encode to image_token_index ${imageTokenId} of config.json`,
      );
    }
  }

  /** The prompt text Magma sees for a question. */
  render(question: string): string {
    return this.template.render({
      messages: [
        { role: 'system', content: MAGMA_SYSTEM_PROMPT },
        { role: 'user', content: IMAGE_PREFIX + question },
      ],
      add_generation_prompt: true,
      bos_token: this.files.bosToken ?? '',
      eos_token: this.files.eosToken ?? '',
    });
  }

  /**
   * Token ids of the prompt, with the single <image> placeholder not yet expanded. The
   * template's own text is tokenized with its special tokens; the question is always plain
   * text: "<|eot_id|>" or "<image>" typed by a user are ordinary characters, never control
   * tokens, so a question cannot end its turn, open another one or add an image.
   */
  encodeQuestion(question: string): number[] {
    const frame = this.frame();
    const rendered = this.render(question);
    const { before, after, head, tail } = frame;
    // What the template made of the question (a chat template may trim it), found as the text
    // between the parts that do not depend on it.
    if (
      !rendered.startsWith(before) ||
      !rendered.endsWith(after) ||
      rendered.length < before.length + after.length
    ) {
      throw new EngineError('INVALID_INPUT', 'the prompt cannot be placed in the chat template');
    }
    const text = rendered.slice(before.length, rendered.length - after.length);
    // The text around the question up to the nearest special token is tokenized with it, as
    // one section, exactly as a whole-prompt encode would have done for harmless text.
    const ids = [
      ...frame.headIds,
      ...this.encodePlain(head.text + text + tail.text, head.template.length > 0),
      ...frame.tailIds,
    ];
    return this.files.addBosToken && this.bosTokenId !== undefined
      ? [this.bosTokenId, ...ids]
      : ids;
  }

  /**
   * The parts of the rendered prompt that do not depend on the question, found by rendering a
   * sentinel in its place, and the ids of their template sides. The same for every question, so
   * they are worked out once (rendering and tokenizing them is most of a short question's cost).
   */
  private frame(): QuestionFrame {
    if (this.cachedFrame !== undefined) return this.cachedFrame;
    const template = this.render(QUESTION_SENTINEL);
    const at = template.indexOf(QUESTION_SENTINEL);
    if (at < 0)
      throw new EngineError('INVALID_INPUT', 'the prompt cannot be placed in the chat template');
    const before = template.slice(0, at);
    const after = template.slice(at + QUESTION_SENTINEL.length);
    const head = this.splitAfterLastSpecial(before);
    const tail = this.splitBeforeFirstSpecial(after);
    this.cachedFrame = {
      before,
      after,
      head,
      tail,
      headIds: this.encodeTemplate(head.template),
      tailIds: this.encodeTemplate(tail.template),
    };
    return this.cachedFrame;
  }

  /**
   * Like encodeQuestion, with a check that the prompt holds exactly one image placeholder.
   * A literal "<image>" in a question is plain text (see encodeQuestion), so this only fails
   * if the template itself is wrong.
   */
  encodeUserQuestion(question: string): number[] {
    // Set-of-Mark clients ask the same few questions about many images: those are rendered
    // and tokenized once (a refused question is not kept, and throws again).
    const known = this.recentQuestions.get(question);
    if (known !== undefined) {
      this.recentQuestions.delete(question);
      this.recentQuestions.set(question, known);
      return [...known];
    }
    const ids = this.encodeQuestion(question);
    if (ids.filter((id) => id === this.imageTokenId).length !== 1) {
      throw new EngineError(
        'INVALID_INPUT',
        'the prompt must contain exactly one image placeholder token',
      );
    }
    if (this.recentQuestions.size >= RECENT_QUESTIONS)
      this.recentQuestions.delete(this.recentQuestions.keys().next().value!);
    this.recentQuestions.set(question, ids);
    return [...ids];
  }

  /** Template text: special tokens in it are control tokens. */
  private encodeTemplate(text: string): number[] {
    if (text.length === 0) return [];
    return this.tokenizer.encode(text, { add_special_tokens: false }).ids;
  }

  /**
   * User text with special-token matching off: normalizer, pre-tokenizer and BPE model only,
   * the steps the library applies to a section between special tokens. @huggingface/tokenizers
   * has no split_special_tokens option, so its public pipeline parts are called directly.
   */
  private encodePlain(text: string, afterSpecial: boolean): number[] {
    const { normalizer, pre_tokenizer: preTokenizer, model } = this.tokenizer;
    if (model === null) throw new EngineError('INVALID_BUNDLE', 'tokenizer has no model');
    const normalized = normalizer === null ? text : normalizer(text);
    if (normalized.length === 0) return [];
    const pieces =
      preTokenizer === null
        ? [normalized]
        : preTokenizer(normalized, { section_index: afterSpecial ? 1 : 0 });
    return model(pieces).map(
      (token: string) => model.tokens_to_ids.get(token) ?? model.unk_token_id ?? 0,
    );
  }

  /** Splits template text after its last special (added) token. */
  private splitAfterLastSpecial(text: string): { template: string; text: string } {
    let end = 0;
    for (const token of this.addedTokens) {
      const index = text.lastIndexOf(token);
      if (index >= 0) end = Math.max(end, index + token.length);
    }
    return { template: text.slice(0, end), text: text.slice(end) };
  }

  /** Splits template text before its first special (added) token. */
  private splitBeforeFirstSpecial(text: string): { text: string; template: string } {
    let start = text.length;
    for (const token of this.addedTokens) {
      const index = text.indexOf(token);
      if (index >= 0) start = Math.min(start, index);
    }
    return { text: text.slice(0, start), template: text.slice(start) };
  }

  /**
   * Text of generated ids, special tokens skipped. A stream decodes its ids again after each
   * token (text-stream.ts), and Set-of-Mark answers are short and repeat ("blue", "#2 red
   * circle"): short sequences' texts are kept, which saves the tokenizer's decode on most steps.
   */
  decode(ids: readonly number[]): string {
    if (ids.length > LONGEST_KEPT_TEXT)
      return this.tokenizer.decode(ids as number[], { skip_special_tokens: true });
    const key = ids.join(',');
    const known = this.recentTexts.get(key);
    if (known !== undefined) return known;
    const text = this.tokenizer.decode(ids as number[], { skip_special_tokens: true });
    // oldest first out: a full map drops its first key (insertion order), not the least used
    if (this.recentTexts.size >= RECENT_TEXTS)
      this.recentTexts.delete(this.recentTexts.keys().next().value!);
    this.recentTexts.set(key, text);
    return text;
  }
}

/** The chat template around a question: its text on each side, split at the special tokens nearest the question. */
interface QuestionFrame {
  readonly before: string;
  readonly after: string;
  readonly head: { readonly template: string; readonly text: string };
  readonly tail: { readonly text: string; readonly template: string };
  readonly headIds: readonly number[];
  readonly tailIds: readonly number[];
}
