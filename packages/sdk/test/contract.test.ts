import * as schemas from '@magma-som/schemas';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { AskFieldsSchema } from '../src/contract/ask-fields.js';
import type * as sdk from '../src/contract/types.js';
import { checkImageStringSchema } from '../src/image-source.js';
import { InvalidImageError } from '../src/errors.js';

// The SDK carries the contract twice over so that users install neither zod nor the schemas
// package: its types as plain TypeScript and its ask check in zod/mini. These tests hold both to
// the contract in @magma-som/schemas, the one the server enforces.

describe('plain contract types', () => {
  it('equal the types the schemas infer (checked by tsc: npm run typecheck)', () => {
    expectTypeOf<sdk.ErrorCode>().toEqualTypeOf<schemas.ErrorCode>();
    expectTypeOf<sdk.ErrorIssue>().toEqualTypeOf<schemas.ErrorIssue>();
    expectTypeOf<sdk.ErrorData>().toEqualTypeOf<schemas.ErrorData>();
    expectTypeOf<sdk.ImageMediaType>().toEqualTypeOf<schemas.ImageMediaType>();
    expectTypeOf<sdk.MarkStyle>().toEqualTypeOf<schemas.MarkStyle>();
    expectTypeOf<sdk.Mark>().toEqualTypeOf<schemas.Mark>();
    expectTypeOf<sdk.GenerationOptionsInput>().toEqualTypeOf<schemas.GenerationOptionsInput>();
    expectTypeOf<sdk.AskFieldsInput>().toEqualTypeOf<schemas.AskFieldsInput>();
    expectTypeOf<sdk.AskRequestInput>().toEqualTypeOf<schemas.AskRequestInput>();
    expectTypeOf<sdk.FinishReason>().toEqualTypeOf<schemas.FinishReason>();
    expectTypeOf<sdk.MarkReference>().toEqualTypeOf<schemas.MarkReference>();
    expectTypeOf<sdk.Usage>().toEqualTypeOf<schemas.Usage>();
    expectTypeOf<sdk.Timings>().toEqualTypeOf<schemas.Timings>();
    expectTypeOf<sdk.MarkedImage>().toEqualTypeOf<schemas.MarkedImage>();
    expectTypeOf<sdk.AskResponse>().toEqualTypeOf<schemas.AskResponse>();
    expectTypeOf<sdk.AskStreamEvent>().toEqualTypeOf<schemas.AskStreamEvent>();
    expectTypeOf<sdk.ImageUploadResponse>().toEqualTypeOf<schemas.ImageUploadResponse>();
    expectTypeOf<sdk.Health>().toEqualTypeOf<schemas.Health>();
    expectTypeOf<sdk.ModelMemory>().toEqualTypeOf<schemas.ModelMemory>();
    expectTypeOf<sdk.Readiness>().toEqualTypeOf<schemas.Readiness>();
    expectTypeOf<sdk.ServerInfo>().toEqualTypeOf<schemas.ServerInfo>();
    expectTypeOf<sdk.BatchState>().toEqualTypeOf<schemas.BatchState>();
    expectTypeOf<sdk.BatchCreateRequestInput>().toEqualTypeOf<schemas.BatchCreateRequestInput>();
    expectTypeOf<sdk.BatchStatus>().toEqualTypeOf<schemas.BatchStatus>();
    expectTypeOf<sdk.BatchItemResult>().toEqualTypeOf<schemas.BatchItemResult>();
    expectTypeOf<sdk.BatchResultsPage>().toEqualTypeOf<schemas.BatchResultsPage>();
  });
});

const mark = { label: 1, x1: 1, y1: 2, x2: 30, y2: 40 };

/** Asks the SDK must accept or refuse exactly as the server's schema does. */
const ASKS: Record<string, unknown> = {
  minimal: { prompt: 'What is in #1?' },
  full: {
    prompt: '  Describe #1 and #2 ',
    marks: [mark, { ...mark, label: 2, style: { color: '#00ff00' } }],
    options: {
      maxTokens: 64,
      temperature: 0.7,
      topP: 0.9,
      seed: 7,
      stop: ['.'],
      suppressActionTokens: false,
    },
    returnMarkedImage: true,
    markedImageFormat: 'jpeg',
    markSizing: 'magma',
    cache: false,
  },
  'label 0 and 999': {
    prompt: 'x',
    marks: [
      { ...mark, label: 0 },
      { ...mark, label: 999 },
    ],
  },
  'blank prompt': { prompt: '   ' },
  'prompt too long': { prompt: 'x'.repeat(4001) },
  'no prompt': {},
  'unknown field': { prompt: 'x', colour: 'red' },
  'inverted box': { prompt: 'x', marks: [{ ...mark, x2: 0 }] },
  'zero-height box': { prompt: 'x', marks: [{ ...mark, y2: 2 }] },
  'negative coordinate': { prompt: 'x', marks: [{ ...mark, x1: -1 }] },
  'infinite coordinate': { prompt: 'x', marks: [{ ...mark, x2: Number.POSITIVE_INFINITY }] },
  'fractional label': { prompt: 'x', marks: [{ ...mark, label: 1.5 }] },
  'label 1000': { prompt: 'x', marks: [{ ...mark, label: 1000 }] },
  'duplicate labels': { prompt: 'x', marks: [mark, { ...mark }] },
  '65 marks': {
    prompt: 'x',
    marks: Array.from({ length: 65 }, (_, i) => ({ ...mark, label: i })),
  },
  'bad colour': { prompt: 'x', marks: [{ ...mark, style: { color: 'red' } }] },
  'unknown mark field': { prompt: 'x', marks: [{ ...mark, z: 1 }] },
  'maxTokens 0': { prompt: 'x', options: { maxTokens: 0 } },
  'maxTokens 4097': { prompt: 'x', options: { maxTokens: 4097 } },
  'temperature 2.5': { prompt: 'x', options: { temperature: 2.5 } },
  'topP 0': { prompt: 'x', options: { topP: 0 } },
  'seed 2^32': { prompt: 'x', options: { seed: 2 ** 32 } },
  'empty stop': { prompt: 'x', options: { stop: [''] } },
  'five stops': { prompt: 'x', options: { stop: ['a', 'b', 'c', 'd', 'e'] } },
  'unknown option': { prompt: 'x', options: { beam: 4 } },
  'bad format': { prompt: 'x', markedImageFormat: 'gif' },
  'bad sizing': { prompt: 'x', markSizing: 'huge' },
  'cache as a string': { prompt: 'x', cache: 'yes' },
  'marks not an array': { prompt: 'x', marks: {} },
};

describe('the zod/mini ask check', () => {
  it.each(Object.entries(ASKS))('%s: same verdict and issue paths as the contract', (_, ask) => {
    const contract = schemas.AskFieldsSchema.safeParse(ask);
    const local = AskFieldsSchema.safeParse(ask);
    expect(local.success).toBe(contract.success);
    const paths = (result: typeof local | typeof contract) =>
      result.success ? [] : result.error.issues.map((issue) => issue.path.join('.')).sort();
    expect(paths(local)).toEqual(paths(contract));
  });

  it('keeps the contract messages it spells out', () => {
    const result = AskFieldsSchema.safeParse(ASKS['duplicate labels']);
    expect(result.error?.issues[0]?.message).toBe('duplicate label 1 (also used by marks[0])');
    expect(AskFieldsSchema.safeParse(ASKS['blank prompt']).error?.issues[0]?.message).toBe(
      'prompt is empty',
    );
  });
});

describe('the image string check', () => {
  const png =
    'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGP4z8DwHwAFAAH/iZk9HQAAAABJRU5ErkJggg==';
  const STRINGS: Record<string, string> = {
    base64: png,
    'data URL': `data:image/png;base64,${png}`,
    'image id': `img_${'a'.repeat(43)}`,
    empty: '',
    'not base64': '!!!!',
    'data URL of text': 'data:text/plain;base64,aGVsbG8=',
    'malformed data URL': 'data:image/png,abc',
    'length 4n+1': 'aaaaa',
  };
  it.each(Object.entries(STRINGS))('%s: same verdict as ImageInputSchema', (_, value) => {
    const contract = schemas.ImageInputSchema.safeParse(value);
    let localError: unknown;
    try {
      checkImageStringSchema(value);
    } catch (error) {
      localError = error;
    }
    expect(localError === undefined).toBe(contract.success);
    if (!contract.success) {
      expect(localError).toBeInstanceOf(InvalidImageError);
      expect((localError as Error).message).toBe(contract.error.issues[0]?.message);
    }
  });
});
