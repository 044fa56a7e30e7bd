import { AskFieldsSchema } from '@magma-som/schemas';
import type {
  AskFields,
  AskResponse,
  ChatCompletion,
  ChatCompletionChunk,
  ChatCompletionRequest,
  ErrorIssue,
} from '@magma-som/schemas';
import { ApiError, issuesFrom } from '../errors/api-error.js';

/** A chat completion request turned into the fields and image of an ask. */
export interface ChatAsk {
  readonly fields: AskFields;
  /** The data URL of the image part. */
  readonly image: string;
  readonly explicitMaxTokens: boolean;
  /** Where the image sits in the request, to name it in image errors. */
  readonly imageParam: string;
}

const SINGLE_TURN =
  'the model answers one question about one image: send exactly one user message ' +
  '(its text parts are the question, one image_url part the image); system prompts and ' +
  'earlier turns are not supported';

/**
 * Reads the single user message of a chat request as an ask. The model is single-turn and
 * was trained without a system prompt, so anything else is refused with a reason rather than
 * silently dropped (a dropped instruction would change the answer unnoticed).
 */
export function chatToAsk(chat: ChatCompletionRequest): ChatAsk {
  const userIndex = chat.messages.findIndex((message) => message.role === 'user');
  chat.messages.forEach((message, index) => {
    if (message.role !== 'user' || index !== userIndex) {
      throw invalid(`messages[${index}]${message.role === 'user' ? '' : '.role'}`, SINGLE_TURN);
    }
  });
  if (userIndex < 0) throw invalid('messages', SINGLE_TURN);
  const content = chat.messages[userIndex]!.content;
  const contentParam = `messages[${userIndex}].content`;
  const parts = typeof content === 'string' ? [{ type: 'text' as const, text: content }] : content;
  if (parts === null) throw invalid(contentParam, 'the user message has no content');

  const text: string[] = [];
  const images: Array<{ url: string; param: string }> = [];
  parts.forEach((part, index) => {
    if (part.type === 'text') text.push(part.text);
    else images.push({ url: part.image_url.url, param: `${contentParam}[${index}].image_url.url` });
  });
  if (images.length !== 1) {
    throw invalid(
      contentParam,
      `the user message needs exactly one image_url part (found ${images.length}): the image the marks are drawn on`,
    );
  }
  const image = images[0]!;
  if (/^https?:/i.test(image.url)) {
    throw invalid(
      image.param,
      'remote image URLs are not fetched (a server fetching URLs chosen by clients can be ' +
        'turned against internal hosts); send the image inline as a data URL, ' +
        'data:image/png;base64,...',
    );
  }
  if (!image.url.startsWith('data:')) {
    throw invalid(image.param, 'image_url.url must be a data URL (data:image/png;base64,...)');
  }

  const maxTokens = chat.max_completion_tokens ?? chat.max_tokens ?? undefined;
  const stop = chat.stop === null || chat.stop === undefined ? undefined : [chat.stop].flat();
  const raw = {
    prompt: text.join('\n'),
    marks: chat.marks ?? [],
    options: defined({
      maxTokens,
      temperature: chat.temperature ?? undefined,
      topP: chat.top_p ?? undefined,
      seed: chat.seed ?? undefined,
      stop,
      suppressActionTokens: chat.magma?.suppressActionTokens,
    }),
    ...defined({
      markSizing: chat.magma?.markSizing,
      returnMarkedImage: chat.magma?.returnMarkedImage,
      markedImageFormat: chat.magma?.markedImageFormat,
    }),
  };
  const parsed = AskFieldsSchema.safeParse(raw);
  if (!parsed.success) {
    const issues = issuesFrom(parsed.error.issues);
    throw new ApiError('INVALID_INPUT', 'the request does not match the schema', { issues });
  }
  return {
    fields: parsed.data,
    image: image.url,
    explicitMaxTokens: maxTokens !== undefined,
    imageParam: image.param,
  };
}

/** OpenAI's name for the request field behind an ask issue path (for `error.param`). */
export function chatParamOf(path: ErrorIssue['path'], chat?: ChatCompletionRequest): string {
  const [head, ...rest] = path;
  const tail = formatPath(rest);
  if (head === 'prompt') {
    const userIndex = Math.max(0, chat?.messages.findIndex((m) => m.role === 'user') ?? 0);
    return `messages[${userIndex}].content`;
  }
  if (head === 'options') {
    const option = rest[0];
    const names: Record<string, string> = {
      maxTokens: chat?.max_completion_tokens != null ? 'max_completion_tokens' : 'max_tokens',
      temperature: 'temperature',
      topP: 'top_p',
      seed: 'seed',
      stop: 'stop',
      suppressActionTokens: 'magma.suppressActionTokens',
    };
    return (typeof option === 'string' ? names[option] : undefined) ?? `options${tail}`;
  }
  if (head === 'markSizing' || head === 'returnMarkedImage' || head === 'markedImageFormat') {
    return `magma.${head}`;
  }
  return formatPath(path).replace(/^\./, '');
}

/** ['messages', 0, 'content'] -> "messages[0].content". */
export function formatPath(path: ErrorIssue['path']): string {
  return path
    .map((segment) => (typeof segment === 'number' ? `[${segment}]` : `.${segment}`))
    .join('');
}

/** The ask's response in OpenAI's shape, with the ask's details under `magma`. */
export function completionOf(response: AskResponse, created: number): ChatCompletion {
  return {
    id: completionId(response.requestId),
    object: 'chat.completion',
    created,
    model: response.model.id,
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content: response.answer, refusal: null },
        finish_reason: finishReasonOf(response),
        logprobs: null,
      },
    ],
    usage: usageOf(response),
    magma: magmaOf(response),
  };
}

/** The chunks of a streamed completion, as `data:` payloads. */
export class ChunkWriter {
  constructor(
    private readonly requestId: string,
    private readonly model: string,
    private readonly created: number,
    private readonly includeUsage: boolean,
  ) {}

  first(): ChatCompletionChunk {
    return this.chunk({ role: 'assistant', content: '' }, null);
  }

  text(content: string): ChatCompletionChunk {
    return this.chunk({ content }, null);
  }

  /** The last chunk with a choice, then (with include_usage) the usage chunk. */
  last(response: AskResponse): ChatCompletionChunk[] {
    const final = { ...this.chunk({}, finishReasonOf(response)), magma: magmaOf(response) };
    if (!this.includeUsage) return [final];
    return [final, { ...this.base(), choices: [], usage: usageOf(response) }];
  }

  private chunk(
    delta: ChatCompletionChunk['choices'][number]['delta'],
    finishReason: ChatCompletionChunk['choices'][number]['finish_reason'],
  ): ChatCompletionChunk {
    return {
      ...this.base(),
      choices: [{ index: 0, delta, finish_reason: finishReason, logprobs: null }],
    };
  }

  private base() {
    return {
      id: completionId(this.requestId),
      object: 'chat.completion.chunk' as const,
      created: this.created,
      model: this.model,
      // OpenAI sends usage: null on every chunk but the last when usage was asked for.
      ...(this.includeUsage ? { usage: null } : {}),
    };
  }
}

function completionId(requestId: string): string {
  return `chatcmpl-${requestId}`;
}

function finishReasonOf(response: AskResponse): 'stop' | 'length' {
  return response.finishReason === 'length' ? 'length' : 'stop';
}

function usageOf(response: AskResponse): ChatCompletion['usage'] {
  const { promptTokens, completionTokens, totalTokens, cachedTokens } = response.usage;
  return {
    prompt_tokens: promptTokens,
    completion_tokens: completionTokens,
    total_tokens: totalTokens,
    prompt_tokens_details: { cached_tokens: cachedTokens },
  };
}

function magmaOf(response: AskResponse): ChatCompletion['magma'] {
  const { requestId, references, usage, timings, model, grid, markedImage } = response;
  return {
    requestId,
    references,
    usage,
    timings,
    model,
    grid,
    ...(markedImage ? { markedImage } : {}),
  };
}

function invalid(param: string, message: string): ApiError {
  return new ApiError('INVALID_INPUT', message, {
    issues: [{ path: parsePath(param), message }],
  });
}

/** "messages[0].content" -> ['messages', 0, 'content'] (the contract's issue path form). */
export function parsePath(param: string): ErrorIssue['path'] {
  return [...param.matchAll(/([^.[\]]+)|\[(\d+)\]/g)].map((m) =>
    m[2] !== undefined ? Number(m[2]) : m[1]!,
  );
}

function defined<T extends Record<string, unknown>>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
