import { describe, expect, it } from 'vitest';
import { createRng } from '../../tools/scenes/index.js';
import { COLORS, SHAPES, SHAPE_PLURALS, templates } from '../../tools/tiny-model/questions.js';
import type { Phrase } from '../../tools/tiny-model/questions.js';
import {
  BASE_WORDINGS,
  EXTRA_WORDINGS,
  HELDOUT_WORDINGS,
  TRAIN_WORDINGS,
  randomPhrase,
} from '../../tools/tiny-model/wordings.js';
import type { WordingSet } from '../../tools/tiny-model/wordings.js';

// The "unseen wordings" figure of `npm run eval` means something only if training never sees
// those wordings: no held-out frame, no held-out name for a mark, however training words and
// roughens its questions.

type Key = keyof typeof templates;
const KEYS = Object.keys(templates) as Key[];

/** Arguments for each question kind, enough to tell frames apart. */
function argsOf(key: Key): unknown[][] {
  switch (key) {
    case 'describe':
    case 'countMarked':
      return [[]];
    case 'color':
    case 'shape':
      return [[2]];
    case 'find':
      return COLORS.flatMap((c) => SHAPES.map((s) => [c, s]));
    case 'countShape':
      return SHAPES.map((s) => [s]);
    case 'countColor':
      return COLORS.map((c) => [c]);
    default:
      return [[1, 3]];
  }
}

/** A comparable form: lower case, no final punctuation, single spaces. */
const normalize = (text: string): string =>
  text
    .toLowerCase()
    .replace(/[?.!]+$/, '')
    .replace(/\s+/g, ' ')
    .trim();

/** Every text of `set` for `key`, with every one of its ref forms. */
function frameTexts(set: WordingSet, key: Key): string[] {
  const texts: string[] = [];
  for (const args of argsOf(key)) {
    for (const ref of set.refs) {
      const [a, b] = args;
      switch (key) {
        case 'describe':
        case 'countMarked':
          texts.push(...set[key]);
          break;
        case 'color':
        case 'shape':
          texts.push(...set[key].map((f) => f(ref(a as number))));
          break;
        case 'find':
          texts.push(...set.find.map((f) => f(a as never, b as never)));
          break;
        case 'countShape':
          texts.push(...set.countShape.map((f) => f(SHAPE_PLURALS[a as never])));
          break;
        case 'countColor':
          texts.push(...set.countColor.map((f) => f(a as never)));
          break;
        default:
          texts.push(...set[key].map((f) => f(ref(a as number), ref(b as number))));
      }
    }
  }
  return texts;
}

describe('training wordings and held-out wordings', () => {
  it('share no frame: the extra training frames were written clear of the held-out ones', () => {
    for (const key of KEYS) {
      const heldOut = new Set(frameTexts(HELDOUT_WORDINGS, key).map(normalize));
      for (const set of [BASE_WORDINGS, EXTRA_WORDINGS]) {
        const clashes = frameTexts(set, key).filter((text) => heldOut.has(normalize(text)));
        expect(clashes, key).toEqual([]);
      }
    }
  });

  it('never name a mark the way only the held-out set does ("box 2", "label 2")', () => {
    const heldOutNouns = HELDOUT_WORDINGS.refs
      .map((ref) => ref(2).replace(/#?2$/, '').trim())
      .filter((noun) => !BASE_WORDINGS.refs.some((ref) => ref(2).startsWith(noun)));
    expect(heldOutNouns.length).toBeGreaterThan(0);
    const rng = createRng(11);
    const phrase: Phrase = randomPhrase(rng, TRAIN_WORDINGS, true);
    for (let i = 0; i < 20_000; i++) {
      const key = KEYS[i % KEYS.length]!;
      const args = argsOf(key)[0]!;
      const text = (phrase as (k: Key, ...a: unknown[]) => string)(key, ...args).toLowerCase();
      for (const noun of heldOutNouns) expect(text).not.toMatch(new RegExp(`\\b${noun} #?\\d`));
    }
  });

  it('produce no held-out question, roughened or not, in 20,000 noisy training questions', () => {
    const heldOut = new Set(
      KEYS.flatMap((key) => frameTexts(HELDOUT_WORDINGS, key)).map(normalize),
    );
    const rng = createRng(12);
    const phrase = randomPhrase(rng, TRAIN_WORDINGS, true) as (k: Key, ...a: unknown[]) => string;
    let varied = 0;
    const seen = new Set<string>();
    for (let i = 0; i < 20_000; i++) {
      const key = KEYS[i % KEYS.length]!;
      const options = argsOf(key);
      const text = phrase(key, ...options[i % options.length]!);
      expect(heldOut.has(normalize(text)), text).toBe(false);
      if (!seen.has(text)) varied++;
      seen.add(text);
    }
    // the noise makes the training texts many, not a handful per template
    expect(varied).toBeGreaterThan(5_000);
  });
});
