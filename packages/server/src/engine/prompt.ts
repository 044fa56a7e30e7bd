import { Template } from '@huggingface/jinja';
import { Tokenizer } from '@huggingface/tokenizers';
import type { TokenizerFiles } from './bundle.js';
import { EngineError } from './errors.js';

// Magma's prompt format, as its model card and README write it.
export const MAGMA_SYSTEM_PROMPT = 'You are agent that can see, talk and act.';
const IMAGE_PREFIX = '<image_start><image><image_end>\n';

/**
 * Renders a question with the bundle's chat template and tokenizes it the way Magma's
 * processor does: the rendered text starts with BOS and the tokenizer adds its own, so the
 * ids start with BOS twice.
 */
export class PromptTokenizer {
  private readonly tokenizer: Tokenizer;
  private readonly template: Template;
  private readonly bosTokenId: number | undefined;

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

  /** Token ids of the prompt, with the single <image> placeholder not yet expanded. */
  encodeQuestion(question: string): number[] {
    const ids = this.tokenizer.encode(this.render(question), { add_special_tokens: false }).ids;
    return this.files.addBosToken && this.bosTokenId !== undefined
      ? [this.bosTokenId, ...ids]
      : ids;
  }

  /** Like encodeQuestion, but rejects a question that smuggles in its own image placeholder. */
  encodeUserQuestion(question: string): number[] {
    const ids = this.encodeQuestion(question);
    if (ids.filter((id) => id === this.imageTokenId).length !== 1) {
      throw new EngineError(
        'INVALID_INPUT',
        'the prompt must not contain the image placeholder token',
      );
    }
    return ids;
  }

  /** Text of generated ids, special tokens skipped. */
  decode(ids: readonly number[]): string {
    return this.tokenizer.decode(ids as number[], { skip_special_tokens: true });
  }
}
