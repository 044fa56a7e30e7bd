import { describe, expectTypeOf, it } from 'vitest';
import type {
  AskRequest,
  AskRequestInput,
  AskResponse,
  AskStreamEvent,
  ErrorCode,
  ErrorData,
  FinishReason,
  Mark,
} from '../src/index.js';

// Type-level checks: the inferred types are the shapes the server and SDK are written against.
describe('inferred types', () => {
  it('Mark has numeric corners, an integer label and an optional style', () => {
    expectTypeOf<Mark>().toEqualTypeOf<{
      label: number;
      x1: number;
      y1: number;
      x2: number;
      y2: number;
      style?: { color?: string | undefined } | undefined;
    }>();
  });

  it('AskRequestInput lets callers omit defaults that AskRequest always has', () => {
    expectTypeOf<{ image: string; prompt: string }>().toExtend<AskRequestInput>();
    expectTypeOf<AskRequest['options']['maxTokens']>().toEqualTypeOf<number>();
    expectTypeOf<AskRequest['marks']>().toEqualTypeOf<Mark[]>();
    expectTypeOf<AskRequest['options']['seed']>().toEqualTypeOf<number | undefined>();
  });

  it('AskResponse carries answer, references, finish reason, usage and timings', () => {
    expectTypeOf<AskResponse['answer']>().toEqualTypeOf<string>();
    expectTypeOf<AskResponse['finishReason']>().toEqualTypeOf<FinishReason>();
    expectTypeOf<FinishReason>().toEqualTypeOf<'stop' | 'length' | 'cancelled'>();
    expectTypeOf<AskResponse['references'][number]['mark']>().toEqualTypeOf<Mark | undefined>();
    expectTypeOf<keyof AskResponse['timings']>().toEqualTypeOf<
      'queueMs' | 'imageMs' | 'preprocessMs' | 'visionMs' | 'prefillMs' | 'decodeMs' | 'totalMs'
    >();
  });

  it('stream events are a discriminated union', () => {
    expectTypeOf<
      Extract<AskStreamEvent, { type: 'done' }>['response']
    >().toEqualTypeOf<AskResponse>();
    expectTypeOf<Extract<AskStreamEvent, { type: 'token' }>['text']>().toEqualTypeOf<string>();
  });

  it('error data names a code of the contract', () => {
    expectTypeOf<ErrorData['code']>().toEqualTypeOf<ErrorCode>();
    expectTypeOf<'OVERLOADED'>().toExtend<ErrorCode>();
  });
});
