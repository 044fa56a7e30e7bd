/**
 * Token ids of magma-tiny-som's prompts and answers, built from the bundle's own tokenizer files
 * exactly as the engine builds them (chat template rendered, then BOS added again: double BOS).
 *
 * Every prompt shares the prefix that ends with "<image_end>\n"; the trainer runs that prefix (with
 * the image) once per scene and the question suffixes after it.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Template } from '@huggingface/jinja';
import { Tokenizer } from '@huggingface/tokenizers';

const SYSTEM_PROMPT = 'You are agent that can see, talk and act.';
const IMAGE_PREFIX = '<image_start><image><image_end>\n';

export interface PromptIds {
  /** Ids up to and including the "\n" after <image_end>; contains the single <image> placeholder. */
  readonly prefix: number[];
  /** Question, end of turn and the assistant header. */
  readonly suffix: number[];
}

export class PromptIdsBuilder {
  private readonly tokenizer: Tokenizer;
  private readonly template: Template;
  private readonly bosToken: string;
  readonly eotId: number;
  readonly imageId: number;
  readonly imageEndId: number;

  constructor(modelDir: string) {
    const tokenizerJson = JSON.parse(
      readFileSync(join(modelDir, 'tokenizer.json'), 'utf8'),
    ) as object;
    const config = JSON.parse(readFileSync(join(modelDir, 'tokenizer_config.json'), 'utf8')) as {
      chat_template: string;
      bos_token: string;
      eos_token: string;
    };
    this.tokenizer = new Tokenizer(tokenizerJson, config);
    this.template = new Template(config.chat_template);
    this.bosToken = config.bos_token;
    this.eotId = this.idOf(config.eos_token);
    this.imageId = this.idOf('<image>');
    this.imageEndId = this.idOf('<image_end>');
  }

  private idOf(token: string): number {
    const id = this.tokenizer.token_to_id(token);
    if (id === undefined) throw new Error(`${token} is not in the tokenizer`);
    return id;
  }

  render(question: string): string {
    return this.template.render({
      messages: [
        { role: 'system', content: SYSTEM_PROMPT },
        { role: 'user', content: IMAGE_PREFIX + question },
      ],
      bos_token: this.bosToken,
      add_generation_prompt: true,
    });
  }

  /** Full prompt ids (BOS added by the tokenizer's post-processor on top of the template's). */
  promptIds(question: string): number[] {
    return this.tokenizer.encode(this.render(question)).ids;
  }

  split(question: string): PromptIds {
    const ids = this.promptIds(question);
    const cut = ids.indexOf(this.imageEndId) + 2; // <image_end> then "\n"
    return { prefix: ids.slice(0, cut), suffix: ids.slice(cut) };
  }

  /** Answer ids as the model must generate them, ending with <|eot_id|>. */
  answerIds(answer: string): number[] {
    return [...this.tokenizer.encode(answer, { add_special_tokens: false }).ids, this.eotId];
  }

  /**
   * Ids of the digit N, for N = 1..maxMark: where a question names mark N, however it is worded
   * ("#2", "mark 2", "object #2"), since Llama-3's pre-tokenizer always splits digits off. The
   * trainer's mark-readout and attention targets sit on these positions; questions hold no other
   * digits.
   */
  markRefIds(maxMark: number): number[][] {
    return Array.from({ length: maxMark }, (_, i) => {
      const ids = this.tokenizer.encode(`${i + 1}`, { add_special_tokens: false }).ids;
      const inContext = this.tokenizer.encode(`mark #${i + 1}?`, { add_special_tokens: false }).ids;
      if (ids.length !== 1 || !inContext.includes(ids[0]!))
        throw new Error(`the digit ${i + 1} is not one token of its own in a question`);
      return ids;
    });
  }

  decode(ids: number[]): string {
    return this.tokenizer.decode(ids, { skip_special_tokens: true }).trim();
  }
}
