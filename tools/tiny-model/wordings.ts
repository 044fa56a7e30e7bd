/**
 * The ways a question may be worded. Users do not type the canonical templates: they write
 * "colour", drop the question mark, say "mark 2" or "object 2". Training draws from TRAIN
 * wordings; HELDOUT wordings never occur in training and measure how the model copes with
 * phrasing it has not seen (`npm run eval`'s "unseen wordings" condition). Answers keep the
 * trained formats whatever the wording.
 */
import type { Rng } from '../scenes/index.js';
import { SHAPE_PLURALS } from './questions.js';
import type { ColorName, Phrase, ShapeName, templates } from './questions.js';

type Ref = (n: number) => string;
type One = (a: string) => string;
type Two = (a: string, b: string) => string;
type Find = (color: ColorName, shape: ShapeName) => string;
type Count<T> = (x: T) => string;

export interface WordingSet {
  readonly refs: readonly Ref[];
  readonly describe: readonly string[];
  readonly color: readonly One[];
  readonly shape: readonly One[];
  readonly sameColor: readonly Two[];
  readonly sameShape: readonly Two[];
  readonly leftOf: readonly Two[];
  readonly rightOf: readonly Two[];
  readonly above: readonly Two[];
  readonly below: readonly Two[];
  readonly whichLeft: readonly Two[];
  readonly find: readonly Find[];
  readonly countShape: readonly Count<string>[];
  readonly countColor: readonly Count<ColorName>[];
  readonly countMarked: readonly string[];
}

/** Seen in training. The canonical templates are among them (ref "object #N" or "#N"). */
export const TRAIN_WORDINGS: WordingSet = {
  refs: [
    (n) => `#${n}`,
    (n) => `mark ${n}`,
    (n) => `object ${n}`,
    (n) => `object #${n}`,
    (n) => `mark #${n}`,
  ],
  describe: [
    'Describe the marked objects.',
    'Describe the marks.',
    'Describe every marked object.',
    'List the marked objects.',
    'What are the marked objects?',
  ],
  color: [
    (a) => `What color is ${a}?`,
    (a) => `What colour is ${a}?`,
    (a) => `What is the color of ${a}?`,
    (a) => `What is the colour of ${a}?`,
    (a) => `Which color is ${a}?`,
    (a) => `What color does ${a} have?`,
    (a) => `Color of ${a}?`,
  ],
  shape: [
    (a) => `What shape is ${a}?`,
    (a) => `What is the shape of ${a}?`,
    (a) => `Which shape is ${a}?`,
    (a) => `What kind of shape is ${a}?`,
    (a) => `Shape of ${a}?`,
  ],
  sameColor: [
    (a, b) => `Do ${a} and ${b} have the same color?`,
    (a, b) => `Do ${a} and ${b} have the same colour?`,
    (a, b) => `Are ${a} and ${b} the same color?`,
    (a, b) => `Is ${a} the same colour as ${b}?`,
  ],
  sameShape: [
    (a, b) => `Do ${a} and ${b} have the same shape?`,
    (a, b) => `Are ${a} and ${b} the same shape?`,
    (a, b) => `Is ${a} the same shape as ${b}?`,
  ],
  leftOf: [
    (a, b) => `Is ${a} left of ${b}?`,
    (a, b) => `Is ${a} to the left of ${b}?`,
    (a, b) => `Is ${a} on the left of ${b}?`,
  ],
  rightOf: [
    (a, b) => `Is ${a} right of ${b}?`,
    (a, b) => `Is ${a} to the right of ${b}?`,
    (a, b) => `Is ${a} on the right of ${b}?`,
  ],
  above: [
    (a, b) => `Is ${a} above ${b}?`,
    (a, b) => `Is ${a} higher than ${b}?`,
    (a, b) => `Is ${a} over ${b}?`,
  ],
  below: [
    (a, b) => `Is ${a} below ${b}?`,
    (a, b) => `Is ${a} lower than ${b}?`,
    (a, b) => `Is ${a} under ${b}?`,
  ],
  whichLeft: [
    (a, b) => `Which is on the left, ${a} or ${b}?`,
    (a, b) => `Which is further left, ${a} or ${b}?`,
    (a, b) => `Which of ${a} and ${b} is on the left?`,
  ],
  find: [
    (c, s) => `Which mark is the ${c} ${s}?`,
    (c, s) => `Which mark is on the ${c} ${s}?`,
    (c, s) => `Which number marks the ${c} ${s}?`,
    (c, s) => `Where is the ${c} ${s}?`,
    (c, s) => `Find the ${c} ${s}.`,
  ],
  countShape: [
    (p) => `How many ${p} are there?`,
    (p) => `How many ${p} are in the image?`,
    (p) => `How many ${p} do you see?`,
    (p) => `Count the ${p}.`,
  ],
  countColor: [
    (c) => `How many ${c} objects are there?`,
    (c) => `How many ${c} shapes are there?`,
    (c) => `How many ${c} objects are in the image?`,
    (c) => `Count the ${c} objects.`,
  ],
  countMarked: [
    'How many objects are marked?',
    'How many marks are there?',
    'How many objects have a mark?',
    'Count the marked objects.',
  ],
};

/** Never seen in training: new sentence frames, and two new ways to name a mark. */
export const HELDOUT_WORDINGS: WordingSet = {
  refs: [(n) => `#${n}`, (n) => `mark ${n}`, (n) => `box ${n}`, (n) => `label ${n}`],
  describe: [
    'Tell me about the marked objects.',
    'Describe each mark.',
    'Name the marked objects.',
    'What do the marks show?',
  ],
  color: [
    (a) => `Tell me the color of ${a}.`,
    (a) => `What's the colour of ${a}?`,
    (a) => `Name the color of ${a}.`,
    (a) => `Which colour has ${a}?`,
  ],
  shape: [
    (a) => `Tell me the shape of ${a}.`,
    (a) => `What's the shape of ${a}?`,
    (a) => `Name the shape of ${a}.`,
  ],
  sameColor: [
    (a, b) => `Do ${a} and ${b} share a color?`,
    (a, b) => `Is the colour of ${a} the same as that of ${b}?`,
  ],
  sameShape: [
    (a, b) => `Do ${a} and ${b} share a shape?`,
    (a, b) => `Is the shape of ${a} the same as that of ${b}?`,
  ],
  leftOf: [
    (a, b) => `Is ${a} further left than ${b}?`,
    (a, b) => `Would you say ${a} is left of ${b}?`,
  ],
  rightOf: [
    (a, b) => `Is ${a} further right than ${b}?`,
    (a, b) => `Would you say ${a} is right of ${b}?`,
  ],
  above: [(a, b) => `Is ${a} located above ${b}?`, (a, b) => `Would you say ${a} is above ${b}?`],
  below: [(a, b) => `Is ${a} located below ${b}?`, (a, b) => `Would you say ${a} is below ${b}?`],
  whichLeft: [
    (a, b) => `Which is leftmost, ${a} or ${b}?`,
    (a, b) => `Of ${a} and ${b}, which is more to the left?`,
  ],
  find: [
    (c, s) => `Which label belongs to the ${c} ${s}?`,
    (c, s) => `What is the mark of the ${c} ${s}?`,
    (c, s) => `Point to the ${c} ${s}.`,
  ],
  countShape: [(p) => `How many ${p} can you find?`, (p) => `What is the number of ${p}?`],
  countColor: [
    (c) => `How many ${c} things can you see?`,
    (c) => `What is the number of ${c} shapes?`,
  ],
  countMarked: ['How many marked objects can you find?', 'What is the number of marks?'],
};

/** Shares of the surface variations applied on top of a frame. */
const DROP_FINAL_PUNCTUATION = 0.3;
const LOWERCASE_FIRST = 0.15;

function pickOf<T>(rng: Rng, items: readonly T[]): T {
  return items[Math.floor(rng() * items.length)]!;
}

/** Drops the final "?" or "." and lower-cases the first letter, each at random. */
function roughen(rng: Rng, text: string): string {
  let out = text;
  if (rng() < DROP_FINAL_PUNCTUATION) out = out.replace(/[?.]$/, '');
  if (rng() < LOWERCASE_FIRST) out = out.charAt(0).toLowerCase() + out.slice(1);
  return out;
}

/** A Phrase that words each question at random from `set` (one ref form per question). */
export function randomPhrase(rng: Rng, set: WordingSet): Phrase {
  const worded = (key: keyof typeof templates, args: unknown[]): string => {
    const ref = pickOf(rng, set.refs);
    const [a, b] = args;
    switch (key) {
      case 'describe':
        return pickOf(rng, set.describe);
      case 'color':
      case 'shape':
        return pickOf(rng, set[key])(ref(a as number));
      case 'sameColor':
      case 'sameShape':
      case 'leftOf':
      case 'rightOf':
      case 'above':
      case 'below':
      case 'whichLeft':
        return pickOf(rng, set[key])(ref(a as number), ref(b as number));
      case 'find':
        return pickOf(rng, set.find)(a as ColorName, b as ShapeName);
      case 'countShape':
        return pickOf(rng, set.countShape)(SHAPE_PLURALS[a as ShapeName]);
      case 'countColor':
        return pickOf(rng, set.countColor)(a as ColorName);
      case 'countMarked':
        return pickOf(rng, set.countMarked);
    }
  };
  return ((key: keyof typeof templates, ...args: unknown[]) =>
    roughen(rng, worded(key, args))) as Phrase;
}

/** Every training wording of every question (without the random roughening), for the tokenizer. */
export function trainWordingTexts(
  maxMark: number,
  colors: readonly ColorName[],
  shapes: readonly ShapeName[],
): string[] {
  const set = TRAIN_WORDINGS;
  const texts = new Set<string>(set.describe);
  set.countMarked.forEach((t) => texts.add(t));
  const refs = Array.from({ length: maxMark }, (_, i) => set.refs.map((r) => r(i + 1))).flat();
  for (const a of refs) {
    for (const f of [...set.color, ...set.shape]) texts.add(f(a));
    for (const b of refs) {
      for (const f of [
        ...set.sameColor,
        ...set.sameShape,
        ...set.leftOf,
        ...set.rightOf,
        ...set.above,
        ...set.below,
        ...set.whichLeft,
      ])
        texts.add(f(a, b));
    }
  }
  for (const c of colors) {
    for (const f of set.countColor) texts.add(f(c));
    for (const s of shapes) for (const f of set.find) texts.add(f(c, s));
  }
  for (const s of shapes) for (const f of set.countShape) texts.add(f(SHAPE_PLURALS[s]));
  return [...texts];
}
