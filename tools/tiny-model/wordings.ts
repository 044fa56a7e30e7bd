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

/**
 * Seen in training, and covered by the tokenizer's own merges (build-tokenizer.ts). The canonical
 * templates are among them (ref "object #N" or "#N").
 */
export const BASE_WORDINGS: WordingSet = {
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

/**
 * More frames seen in training, beyond the tokenizer's: their new words reach the model as
 * sub-word and byte pieces, as a user's unknown words do. Written to stay clear of the HELDOUT
 * frames below (no "tell me", "share", "would you say", "leftmost", "point to", "number of",
 * "box", "label", "what's"), so the "unseen wordings" eval measures phrasing the model never saw.
 */
export const EXTRA_WORDINGS: WordingSet = {
  refs: [
    (n) => `item ${n}`,
    (n) => `item #${n}`,
    (n) => `region ${n}`,
    (n) => `marker ${n}`,
    (n) => `tag ${n}`,
    (n) => `area ${n}`,
    (n) => `number ${n}`,
    (n) => `the object marked ${n}`,
    (n) => `the object marked #${n}`,
    (n) => `the one marked #${n}`,
    (n) => `the object with mark ${n}`,
  ],
  describe: [
    'Describe all marks.',
    'Describe all the marked objects.',
    'Describe the objects that are marked.',
    'Describe everything that is marked.',
    'Describe the marked shapes.',
    'Describe the marked items.',
    'Which objects are marked?',
    'What objects are marked?',
    'What is marked in the image?',
    'What are the marked shapes?',
    'List all marks.',
    'List every mark.',
    'List the marks and their objects.',
    'Give a description of the marked objects.',
    'Identify the marked objects.',
    'Summarize the marks.',
    'Go through the marks one by one.',
    'Explain what each mark is on.',
  ],
  color: [
    (a) => `What color does ${a} appear to be?`,
    (a) => `Give the color of ${a}.`,
    (a) => `Say the colour of ${a}.`,
    (a) => `Identify the color of ${a}.`,
    (a) => `Determine the colour of ${a}.`,
    (a) => `${a} is what color?`,
    (a) => `${a}: what colour?`,
    (a) => `The color of ${a}?`,
    (a) => `In which color is ${a}?`,
    (a) => `What hue is ${a}?`,
    (a) => `Which hue does ${a} have?`,
    (a) => `What color is ${a} painted?`,
    (a) => `Colour of ${a}, please.`,
  ],
  shape: [
    (a) => `What form does ${a} have?`,
    (a) => `What is the form of ${a}?`,
    (a) => `Give the shape of ${a}.`,
    (a) => `Identify the shape of ${a}.`,
    (a) => `Determine the shape of ${a}.`,
    (a) => `${a} is what shape?`,
    (a) => `What shape does ${a} have?`,
    (a) => `The shape of ${a}?`,
    (a) => `Is ${a} a circle, a square or a triangle?`,
    (a) => `What geometric shape is ${a}?`,
    (a) => `What type of shape is ${a}?`,
    (a) => `What kind of object is ${a}?`,
  ],
  sameColor: [
    (a, b) => `Are ${a} and ${b} of the same color?`,
    (a, b) => `Is ${a} the same color as ${b}?`,
    (a, b) => `Do ${a} and ${b} match in colour?`,
    (a, b) => `Does ${a} have the same color as ${b}?`,
    (a, b) => `${a} and ${b}: same color?`,
    (a, b) => `Same colour for ${a} and ${b}?`,
    (a, b) => `Are ${a} and ${b} identical in color?`,
    (a, b) => `Do ${a} and ${b} have matching colours?`,
    (a, b) => `Is ${a} colored like ${b}?`,
    (a, b) => `Is ${a} the same hue as ${b}?`,
  ],
  sameShape: [
    (a, b) => `Are ${a} and ${b} of the same shape?`,
    (a, b) => `Do ${a} and ${b} match in shape?`,
    (a, b) => `Does ${a} have the same shape as ${b}?`,
    (a, b) => `${a} and ${b}: same shape?`,
    (a, b) => `Same shape for ${a} and ${b}?`,
    (a, b) => `Are ${a} and ${b} identical in shape?`,
    (a, b) => `Do ${a} and ${b} have matching shapes?`,
    (a, b) => `Is ${a} shaped like ${b}?`,
    (a, b) => `Are ${a} and ${b} the same kind of shape?`,
  ],
  leftOf: [
    (a, b) => `Is ${a} to the left of ${b} in the image?`,
    (a, b) => `Does ${a} lie left of ${b}?`,
    (a, b) => `Is ${a} positioned left of ${b}?`,
    (a, b) => `Does ${a} sit to the left of ${b}?`,
    (a, b) => `${a} left of ${b}?`,
    (a, b) => `Is ${a} placed to the left of ${b}?`,
    (a, b) => `Does ${a} appear left of ${b}?`,
  ],
  rightOf: [
    (a, b) => `Is ${a} to the right of ${b} in the image?`,
    (a, b) => `Does ${a} lie right of ${b}?`,
    (a, b) => `Is ${a} positioned right of ${b}?`,
    (a, b) => `Does ${a} sit to the right of ${b}?`,
    (a, b) => `${a} right of ${b}?`,
    (a, b) => `Is ${a} placed to the right of ${b}?`,
    (a, b) => `Does ${a} appear right of ${b}?`,
  ],
  above: [
    (a, b) => `Is ${a} higher up than ${b}?`,
    (a, b) => `Is ${a} placed above ${b}?`,
    (a, b) => `Does ${a} sit above ${b}?`,
    (a, b) => `${a} above ${b}?`,
    (a, b) => `Does ${a} appear above ${b}?`,
    (a, b) => `Is ${a} positioned higher than ${b}?`,
  ],
  below: [
    (a, b) => `Is ${a} beneath ${b}?`,
    (a, b) => `Is ${a} placed below ${b}?`,
    (a, b) => `Does ${a} sit below ${b}?`,
    (a, b) => `${a} below ${b}?`,
    (a, b) => `Does ${a} appear below ${b}?`,
    (a, b) => `Is ${a} positioned lower than ${b}?`,
  ],
  whichLeft: [
    (a, b) => `Which one is on the left, ${a} or ${b}?`,
    (a, b) => `${a} or ${b}: which is on the left?`,
    (a, b) => `Which of ${a} and ${b} is further left?`,
    (a, b) => `Between ${a} and ${b}, which is on the left?`,
    (a, b) => `Which lies to the left, ${a} or ${b}?`,
    (a, b) => `Which is left, ${a} or ${b}?`,
    (a, b) => `Which is on the left side, ${a} or ${b}?`,
  ],
  find: [
    (c, s) => `Which mark does the ${c} ${s} have?`,
    (c, s) => `What number is on the ${c} ${s}?`,
    (c, s) => `What mark is the ${c} ${s}?`,
    (c, s) => `Which object is the ${c} ${s}?`,
    (c, s) => `Which one is the ${c} ${s}?`,
    (c, s) => `Locate the ${c} ${s}.`,
    (c, s) => `Show me the ${c} ${s}.`,
    (c, s) => `Identify the ${c} ${s}.`,
    (c, s) => `Which mark shows the ${c} ${s}?`,
    (c, s) => `The ${c} ${s} is which mark?`,
    (c, s) => `Which marked object is the ${c} ${s}?`,
    (c, s) => `Search for the ${c} ${s}.`,
  ],
  countShape: [
    (p) => `How many ${p} are visible?`,
    (p) => `How many ${p} does the image contain?`,
    (p) => `How many ${p} are shown?`,
    (p) => `How many ${p} are present?`,
    (p) => `How many ${p} in total?`,
    (p) => `Count all ${p}.`,
    (p) => `Count the ${p} in the image.`,
    (p) => `Give the count of ${p}.`,
    (p) => `${p}: how many?`,
  ],
  countColor: [
    (c) => `How many ${c} items are there?`,
    (c) => `How many ${c} ones are there?`,
    (c) => `How many ${c} objects are visible?`,
    (c) => `How many ${c} figures are there?`,
    (c) => `How many objects are ${c}?`,
    (c) => `How many shapes are ${c}?`,
    (c) => `Count all ${c} objects.`,
    (c) => `Count the ${c} shapes.`,
    (c) => `${c} objects: how many?`,
  ],
  countMarked: [
    'How many marks do you see?',
    'How many marks are visible?',
    'How many marked objects are there?',
    'How many marked shapes are there?',
    'How many objects carry a mark?',
    'How many objects were marked?',
    'How many marks are in the image?',
    'Count the marks.',
    'Count all marks.',
  ],
};

function mergeWordings(a: WordingSet, b: WordingSet): WordingSet {
  const merged: Record<string, readonly unknown[]> = {};
  for (const key of Object.keys(a) as (keyof WordingSet)[]) merged[key] = [...a[key], ...b[key]];
  return merged as unknown as WordingSet;
}

/** Everything training draws from: the base frames and the extra ones. */
export const TRAIN_WORDINGS: WordingSet = mergeWordings(BASE_WORDINGS, EXTRA_WORDINGS);

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

/**
 * Training's extra roughening, so that the model keys on the words that decide the answer and
 * not on the sentence around them: polite prefixes and suffixes, other nouns before a mark's
 * number (some of them made-up words, which tokenize like a user's unknown words), lower case.
 */
const NOISE = {
  prefix: 0.2,
  suffix: 0.12,
  extraRef: 0.3,
  madeUpRef: 0.08,
  lowercaseAll: 0.08,
  questionMarkVariant: 0.03,
  prefixes: [
    'Please, ',
    'Please ',
    'Hey, ',
    'Quick question: ',
    'Question: ',
    'Q: ',
    'So, ',
    'Okay, ',
    'OK ',
    'Hi! ',
    'Looking at the image, ',
    'In this image, ',
    'In the picture, ',
    'I want to know: ',
    'Could you answer this: ',
    'One more: ',
    'Now, ',
    'Next: ',
    'Hmm, ',
  ],
  suffixes: [
    ' please',
    ', please',
    ' in the image',
    ' in this picture',
    ' here',
    ' now',
    ' exactly',
  ],
  tails: [' Thanks.', ' Thank you!', ' Thanks', ' :)'],
} as const;

const CONSONANTS = 'bcdfghjklmnprstvwz';
const VOWELS = 'aeiou';

/** The nouns the held-out set names marks with ("box", "label", ...), from its ref forms. */
const HELDOUT_REF_NOUNS = new Set(
  HELDOUT_WORDINGS.refs.map((ref) => ref(1).replace(/\s*#?1$/, '')),
);

/** A pronounceable made-up word of 3 to 7 letters ("zobek"), never a noun the held-out set uses. */
function madeUpWord(rng: Rng): string {
  const length = 3 + Math.floor(rng() * 5);
  let word = '';
  for (let i = 0; i < length; i++) word += pickOf(rng, i % 2 === 0 ? CONSONANTS : VOWELS);
  return HELDOUT_REF_NOUNS.has(word) ? madeUpWord(rng) : word;
}

function pickOf<T>(rng: Rng, items: readonly T[] | string): T {
  return items[Math.floor(rng() * items.length)] as T;
}

/** Drops the final "?" or "." and lower-cases the first letter, each at random. */
function roughen(rng: Rng, text: string): string {
  let out = text;
  if (rng() < DROP_FINAL_PUNCTUATION) out = out.replace(/[?.]$/, '');
  if (rng() < LOWERCASE_FIRST) out = out.charAt(0).toLowerCase() + out.slice(1);
  return out;
}

/** Training's noise on top of `roughen` (see NOISE). */
function addNoise(rng: Rng, text: string): string {
  let out = text;
  if (rng() < NOISE.suffix) {
    const end = /[?.!]$/.exec(out)?.[0] ?? '';
    out = out.slice(0, out.length - end.length) + pickOf<string>(rng, NOISE.suffixes) + end;
  }
  if (rng() < NOISE.prefix) {
    const rest = rng() < 0.7 ? out.charAt(0).toLowerCase() + out.slice(1) : out;
    out = pickOf<string>(rng, NOISE.prefixes) + rest;
  }
  if (rng() < NOISE.suffix / 3) out += pickOf<string>(rng, NOISE.tails);
  if (rng() < NOISE.lowercaseAll) out = out.toLowerCase();
  if (rng() < NOISE.questionMarkVariant) out = out.replace(/[?]$/, rng() < 0.5 ? ' ?' : '??');
  return out;
}

/** How training names a mark: mostly the base forms, sometimes another noun or a made-up one. */
function trainRef(rng: Rng): Ref {
  const roll = rng();
  if (roll < NOISE.madeUpRef) {
    const noun = madeUpWord(rng);
    return rng() < 0.5 ? (n) => `${noun} ${n}` : (n) => `${noun} #${n}`;
  }
  if (roll < NOISE.madeUpRef + NOISE.extraRef) return pickOf(rng, EXTRA_WORDINGS.refs);
  return pickOf(rng, BASE_WORDINGS.refs);
}

/**
 * A Phrase that words each question at random from `set` (one ref form per question). `noisy`
 * adds training's noise and other names for marks (for training and the in-distribution eval).
 */
export function randomPhrase(rng: Rng, set: WordingSet, noisy = false): Phrase {
  const worded = (key: keyof typeof templates, args: unknown[]): string => {
    const ref = noisy ? trainRef(rng) : pickOf(rng, set.refs);
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
  return ((key: keyof typeof templates, ...args: unknown[]) => {
    const text = roughen(rng, worded(key, args));
    return noisy ? addNoise(rng, text) : text;
  }) as Phrase;
}

/** Every base wording of every question (without the random roughening), for the tokenizer. */
export function baseWordingTexts(
  maxMark: number,
  colors: readonly ColorName[],
  shapes: readonly ShapeName[],
): string[] {
  const set = BASE_WORDINGS;
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
