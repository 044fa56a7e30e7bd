import { describe, expect, it } from 'vitest';
import {
  AskFieldsSchema,
  AskRequestSchema,
  AskResponseSchema,
  AskStreamEventSchema,
  DEFAULT_LIMITS,
  parseMarkReferences,
  type AskResponse,
} from '../src/index.js';

const image = Buffer.from('not really a png but valid base64').toString('base64');

describe('AskRequestSchema', () => {
  it('fills Magma-like defaults', () => {
    const request = AskRequestSchema.parse({ image, prompt: ' What color is #1? ' });
    expect(request.prompt).toBe('What color is #1?');
    expect(request.marks).toEqual([]);
    expect(request.options).toEqual({
      maxTokens: 128,
      temperature: 0,
      topP: 1,
      stop: [],
      suppressActionTokens: true,
    });
    expect(request.returnMarkedImage).toBe(false);
    expect(request.markedImageFormat).toBe('png');
    expect(request.cache).toBe(true);
  });

  it('accepts an uploaded image id as the image, and nothing id-like that is not one', () => {
    const imageId = `img_${'a1_-'.repeat(10)}abc`;
    expect(AskRequestSchema.parse({ image: imageId, prompt: 'What is #1?' }).image).toBe(imageId);
    expect(AskRequestSchema.safeParse({ image: 'img_short', prompt: 'What is #1?' }).success).toBe(
      false,
    );
  });

  it('keeps given generation options', () => {
    const request = AskRequestSchema.parse({
      image,
      prompt: 'Describe #1.',
      options: { maxTokens: 16, temperature: 0.7, topP: 0.9, seed: 42, stop: ['.'] },
    });
    expect(request.options).toMatchObject({
      maxTokens: 16,
      temperature: 0.7,
      topP: 0.9,
      seed: 42,
      stop: ['.'],
    });
  });

  it.each([
    ['an empty prompt', { prompt: '   ' }, 'prompt'],
    ['a huge prompt', { prompt: 'x'.repeat(DEFAULT_LIMITS.maxPromptChars + 1) }, 'prompt'],
    ['maxTokens 0', { options: { maxTokens: 0 } }, 'options'],
    ['maxTokens over the cap', { options: { maxTokens: DEFAULT_LIMITS.maxTokens + 1 } }, 'options'],
    ['negative temperature', { options: { temperature: -0.1 } }, 'options'],
    ['topP 0', { options: { topP: 0 } }, 'options'],
    ['a fractional seed', { options: { seed: 1.5 } }, 'options'],
    ['too many stop sequences', { options: { stop: ['a', 'b', 'c', 'd', 'e'] } }, 'options'],
    ['an unknown option', { options: { beams: 4 } }, 'options'],
    ['an unknown field', { stream: true }, undefined],
    [
      'a wrong marked-image format',
      { returnMarkedImage: true, markedImageFormat: 'gif' },
      'markedImageFormat',
    ],
    ['marks as an object', { marks: { 1: [0, 0, 1, 1] } }, 'marks'],
    ['a missing image', { image: undefined }, 'image'],
    ['a number as image', { image: 42 }, 'image'],
  ])('rejects %s', (_name, patch, field) => {
    const result = AskRequestSchema.safeParse({ image, prompt: 'What is #1?', ...patch });
    expect(result.success).toBe(false);
    if (field) expect(result.error!.issues.map((issue) => issue.path[0])).toContain(field);
  });

  it('describes the binary-upload fields without the image', () => {
    expect(AskFieldsSchema.safeParse({ prompt: 'What is #1?' }).success).toBe(true);
    expect(AskFieldsSchema.safeParse({ prompt: 'What is #1?', image }).success).toBe(false);
  });
});

describe('parseMarkReferences', () => {
  const marks = [
    { label: 1, x1: 0, y1: 0, x2: 10, y2: 10 },
    { label: 2, x1: 20, y1: 0, x2: 30, y2: 10 },
  ];

  it("reads Magma's 'Mark: N' form and joins the mark", () => {
    const [reference] = parseMarkReferences('(0.52,0.31) Mark: 2', marks);
    expect(reference).toEqual({ label: 2, text: 'Mark: 2', offset: 12, mark: marks[1] });
  });

  it('reads #N references in order and flags unknown labels', () => {
    const references = parseMarkReferences('#2 is left of #1, not #9.', marks);
    expect(references.map((r) => r.label)).toEqual([2, 1, 9]);
    expect(references[2]!.mark).toBeUndefined();
  });

  it('finds nothing in plain text', () => {
    expect(parseMarkReferences('A red circle.', marks)).toEqual([]);
  });
});

describe('AskResponseSchema', () => {
  const response: AskResponse = {
    requestId: 'req-1',
    answer: 'Mark: 1',
    references: [{ label: 1, text: 'Mark: 1', offset: 0 }],
    finishReason: 'stop',
    usage: {
      promptTokens: 300,
      imageTokens: 272,
      completionTokens: 4,
      totalTokens: 304,
      cachedTokens: 0,
    },
    timings: {
      queueMs: 0,
      imageMs: 3,
      preprocessMs: 1,
      visionMs: 10,
      prefillMs: 20,
      decodeMs: 5,
      totalMs: 40,
    },
    model: { id: 'magma-tiny-som', revision: 'r1' },
    grid: { rows: 1, cols: 1 },
  };

  it('round-trips a response and a stream of events', () => {
    expect(AskResponseSchema.parse(response)).toEqual(response);
    expect(AskStreamEventSchema.parse({ type: 'token', text: 'Ma' })).toEqual({
      type: 'token',
      text: 'Ma',
    });
    expect(AskStreamEventSchema.parse({ type: 'done', response })).toEqual({
      type: 'done',
      response,
    });
  });

  it('reads a response of an older server, without cachedTokens, as 0 cached', () => {
    const { cachedTokens: _, ...usage } = response.usage;
    expect(AskResponseSchema.parse({ ...response, usage }).usage.cachedTokens).toBe(0);
  });

  it('rejects an unknown finish reason and negative timings', () => {
    expect(AskResponseSchema.safeParse({ ...response, finishReason: 'eos' }).success).toBe(false);
    expect(
      AskResponseSchema.safeParse({ ...response, timings: { ...response.timings, decodeMs: -1 } })
        .success,
    ).toBe(false);
  });
});
