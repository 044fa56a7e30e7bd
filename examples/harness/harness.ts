import type { MagmaClient, ServerInfo } from '@magma-som/sdk';
import { classicQuestions } from '../../tools/tiny-model/questions.js';
import type { QuestionType } from '../../tools/tiny-model/questions.js';
import { summarize } from './latency.js';
import type { LatencySummary } from './latency.js';
import { renderMarkedScene } from './scene.js';

/** The model whose answers the harness can predict: the tiny model trained on these templates. */
export const TINY_MODEL_ID = 'magma-tiny-som';
export interface HarnessOptions {
  readonly client: MagmaClient;
  /** Times each check is asked; latency percentiles are over these. Default 5. */
  readonly runs?: number;
  /** New-token cap per answer. Default 64: enough for a description of two shapes. */
  readonly maxTokens?: number;
  /**
   * Sizes the scene is asked at, as multiples of 224x168. Default [1, 3]: the classic size and
   * 672x504, where marks must be sized for the model to stay readable (docs/MARKS.md).
   */
  readonly scales?: readonly number[];
  /** Called after every answer, e.g. to show progress. */
  readonly onAnswer?: (event: {
    type: QuestionType;
    run: number;
    answer: string;
    ms: number;
  }) => void;
}

export interface CheckResult {
  /** describe | color | compare | spatial */
  readonly type: QuestionType;
  /** The image size the check was asked at, e.g. "672x504". */
  readonly image: string;
  readonly question: string;
  /** The answer in the tiny model's trained format, computed from the scene. */
  readonly expected: string;
  /** One answer per run, trimmed. */
  readonly answers: readonly string[];
  /** Runs whose answer equals `expected`. */
  readonly matched: number;
  /** Whether every run answered `expected`; undefined when answers are not asserted. */
  readonly passed: boolean | undefined;
  /** Client-side latency of one ask, request to full answer. */
  readonly latencyMs: LatencySummary;
}

export interface HarnessReport {
  readonly server: string;
  readonly model: ServerInfo['model'];
  readonly runs: number;
  /** True when answers are checked against `expected`. */
  readonly asserted: boolean;
  /** Why answers are not checked, when they are not. */
  readonly note?: string;
  readonly checks: readonly CheckResult[];
  /** False only when an asserted check failed. */
  readonly passed: boolean;
}

/**
 * Whether the expected answers apply to this model. They are the tiny model's trained
 * formats, checked for every revision of it (a bundle that misses them does not ship); other
 * models (a real Magma-8B) answer in their own words, which are reported only.
 */
export function assertionPolicy(model: { id: string; revision: string }): {
  asserted: boolean;
  note?: string;
} {
  if (model.id !== TINY_MODEL_ID) {
    return {
      asserted: false,
      note: `answers are reported, not checked: the expected formats are ${TINY_MODEL_ID}'s`,
    };
  }
  return { asserted: true };
}

/**
 * The four classic Set-of-Mark checks, asked through the SDK at each of `scales`: describe both
 * marked shapes, the colour of #1, compare #1 and #2, which is on the left. Questions and
 * expected answers come from the tiny model's own templates (tools/tiny-model/questions.ts).
 */
export async function runHarness(options: HarnessOptions): Promise<HarnessReport> {
  const { client, runs = 5, maxTokens = 64, scales = [1, 3] } = options;
  if (!Number.isInteger(runs) || runs < 1) {
    throw new RangeError(`runs must be a whole number >= 1, got ${runs}`);
  }
  const info = await client.info();
  const policy = assertionPolicy(info.model);
  const measured = [];
  for (const scale of scales) {
    const scene = await renderMarkedScene(undefined, undefined, scale);
    const image = `${scene.description.width}x${scene.description.height}`;
    for (const check of classicQuestions(scene.description)) {
      measured.push({ check, scene, image, answers: [] as string[], latencies: [] as number[] });
    }
  }

  for (let run = 1; run <= runs; run++) {
    for (const { check, scene, answers, latencies } of measured) {
      const started = performance.now();
      const response = await client.ask({
        image: scene.png,
        marks: scene.marks,
        prompt: check.question,
        options: { maxTokens },
      });
      const ms = performance.now() - started;
      const answer = response.answer.trim();
      answers.push(answer);
      latencies.push(ms);
      options.onAnswer?.({ type: check.type, run, answer, ms });
    }
  }

  const results = measured.map(({ check, image, answers, latencies }): CheckResult => {
    const matched = answers.filter((answer) => answer === check.answer).length;
    return {
      type: check.type,
      image,
      question: check.question,
      expected: check.answer,
      answers,
      matched,
      passed: policy.asserted ? matched === runs : undefined,
      latencyMs: summarize(latencies),
    };
  });
  return {
    server: client.baseUrl,
    model: info.model,
    runs,
    ...policy,
    checks: results,
    passed: results.every((check) => check.passed !== false),
  };
}
