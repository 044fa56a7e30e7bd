/**
 * The one place that defines what magma-tiny-som is asked and what it answers.
 * The data generator, the tokenizer builder, the eval and the example harness all
 * use these templates, so the phrasings the model was trained on are the ones asked.
 */
import { COLOR_NAMES, SHAPE_KINDS } from '../scenes/index.js';
import type { ColorName, Rng, ShapeKind } from '../scenes/index.js';
import { shuffled } from './rng.js';

/** Shapes and colours are the scene renderer's own, so a name always means what is drawn. */
export const SHAPES = SHAPE_KINDS;
export type ShapeName = ShapeKind;
export const COLORS: readonly ColorName[] = COLOR_NAMES;
export type { ColorName };

/** Plural forms used by the counting question. */
export const SHAPE_PLURALS: Record<ShapeName, string> = {
  circle: 'circles',
  square: 'squares',
  triangle: 'triangles',
};

export const MAX_MARKS = 6;
export const MAX_OBJECTS = 6;

/** One shape of a scene as the questions see it; `mark` is its 1-based label, or null if unmarked. */
export interface SceneObject {
  readonly shape: ShapeName;
  readonly color: ColorName;
  /** Centre in image pixels. */
  readonly cx: number;
  readonly cy: number;
  readonly mark: number | null;
}

export interface SceneDescription {
  readonly width: number;
  readonly height: number;
  readonly objects: readonly SceneObject[];
}

export const QUESTION_TYPES = [
  'describe',
  'color',
  'shape',
  'compare',
  'spatial',
  'find',
  'count',
] as const;
export type QuestionType = (typeof QUESTION_TYPES)[number];

export interface QuestionAnswer {
  readonly type: QuestionType;
  readonly question: string;
  readonly answer: string;
}

/** The question templates, as plain functions of their slots. */
export const templates = {
  describe: () => 'Describe the marked objects.',
  color: (a: number) => `What color is object #${a}?`,
  shape: (a: number) => `What shape is object #${a}?`,
  sameColor: (a: number, b: number) => `Do #${a} and #${b} have the same color?`,
  sameShape: (a: number, b: number) => `Do #${a} and #${b} have the same shape?`,
  leftOf: (a: number, b: number) => `Is #${a} left of #${b}?`,
  rightOf: (a: number, b: number) => `Is #${a} right of #${b}?`,
  above: (a: number, b: number) => `Is #${a} above #${b}?`,
  below: (a: number, b: number) => `Is #${a} below #${b}?`,
  whichLeft: (a: number, b: number) => `Which is on the left, #${a} or #${b}?`,
  find: (color: ColorName, shape: ShapeName) => `Which mark is the ${color} ${shape}?`,
  countShape: (shape: ShapeName) => `How many ${SHAPE_PLURALS[shape]} are there?`,
  countColor: (color: ColorName) => `How many ${color} objects are there?`,
  countMarked: () => 'How many objects are marked?',
} as const;

/** The answer formats. */
export const answers = {
  /** "#1 red circle, #2 blue square", in label order. */
  describe: (marked: readonly { mark: number; color: ColorName; shape: ShapeName }[]) =>
    [...marked]
      .sort((p, q) => p.mark - q.mark)
      .map((o) => `#${o.mark} ${o.color} ${o.shape}`)
      .join(', '),
  word: (w: string) => w,
  yesNo: (v: boolean) => (v ? 'yes' : 'no'),
  markRef: (a: number) => `#${a}`,
  /** Magma's own mark-answer form. */
  mark: (a: number) => `Mark: ${a}`,
  count: (n: number) => String(n),
} as const;

/**
 * Centres closer than this fraction of the image side are "not clearly" left/right
 * (or above/below) of each other, so no spatial question is asked about them.
 */
export const SPATIAL_MARGIN = 0.08;

type Marked = SceneObject & { readonly mark: number };

function markedObjects(scene: SceneDescription): Marked[] {
  return scene.objects.filter((o): o is Marked => o.mark !== null).sort((a, b) => a.mark - b.mark);
}

/** How question texts are worded: one text per template key and slots (see wordings.ts). */
export type Phrase = <K extends keyof typeof templates>(
  key: K,
  ...args: Parameters<(typeof templates)[K]>
) => string;

/** The canonical wording: exactly the templates above. */
export const canonicalPhrase: Phrase = (key, ...args) =>
  (templates[key] as (...a: typeof args) => string)(...args);

/** Every question that has one exact answer for this scene, grouped by type, worded by `phrase`. */
export function allQuestions(
  scene: SceneDescription,
  phrase: Phrase = canonicalPhrase,
): Map<QuestionType, QuestionAnswer[]> {
  const byType = new Map<QuestionType, QuestionAnswer[]>(QUESTION_TYPES.map((t) => [t, []]));
  const add = (type: QuestionType, question: string, answer: string) =>
    byType.get(type)?.push({ type, question, answer });
  const marked = markedObjects(scene);
  const dx = SPATIAL_MARGIN * scene.width;
  const dy = SPATIAL_MARGIN * scene.height;

  if (marked.length > 0) add('describe', phrase('describe'), answers.describe(marked));
  for (const o of marked) {
    add('color', phrase('color', o.mark), answers.word(o.color));
    add('shape', phrase('shape', o.mark), answers.word(o.shape));
  }
  for (const a of marked) {
    for (const b of marked) {
      if (a === b) continue;
      add('compare', phrase('sameColor', a.mark, b.mark), answers.yesNo(a.color === b.color));
      add('compare', phrase('sameShape', a.mark, b.mark), answers.yesNo(a.shape === b.shape));
      if (Math.abs(a.cx - b.cx) >= dx) {
        add('spatial', phrase('leftOf', a.mark, b.mark), answers.yesNo(a.cx < b.cx));
        add('spatial', phrase('rightOf', a.mark, b.mark), answers.yesNo(a.cx > b.cx));
        add(
          'spatial',
          phrase('whichLeft', a.mark, b.mark),
          answers.markRef(a.cx < b.cx ? a.mark : b.mark),
        );
      }
      if (Math.abs(a.cy - b.cy) >= dy) {
        add('spatial', phrase('above', a.mark, b.mark), answers.yesNo(a.cy < b.cy));
        add('spatial', phrase('below', a.mark, b.mark), answers.yesNo(a.cy > b.cy));
      }
    }
  }
  for (const color of COLORS) {
    for (const shape of SHAPES) {
      const hits = marked.filter((o) => o.color === color && o.shape === shape);
      const first = hits[0];
      if (hits.length === 1 && first)
        add('find', phrase('find', color, shape), answers.mark(first.mark));
    }
  }
  for (const shape of SHAPES) {
    add(
      'count',
      phrase('countShape', shape),
      answers.count(scene.objects.filter((o) => o.shape === shape).length),
    );
  }
  for (const color of COLORS) {
    add(
      'count',
      phrase('countColor', color),
      answers.count(scene.objects.filter((o) => o.color === color).length),
    );
  }
  add('count', phrase('countMarked'), answers.count(marked.length));
  return byType;
}

/**
 * Up to `perType` random questions of each type for one scene (fewer when the scene
 * allows fewer), in a random order, worded by `phrase`. Deterministic for a given rng state.
 *
 * Within a type, each pick first draws an answer uniformly among those the scene's questions
 * have, then a question with that answer. Drawn uniformly over questions instead, "Do #1 and #2
 * have the same colour?" is "no" four times in five, and a model that always says "no" scores
 * 80% on it (the 2026-12-01 retrain did exactly that); likewise "how many" is mostly 0 or 1.
 */
export function sampleQuestions(
  scene: SceneDescription,
  rng: Rng,
  perType = 1,
  phrase: Phrase = canonicalPhrase,
): QuestionAnswer[] {
  const out: QuestionAnswer[] = [];
  for (const [, list] of allQuestions(scene, phrase)) {
    const byAnswer = new Map<string, QuestionAnswer[]>();
    for (const qa of shuffled(rng, list)) {
      byAnswer.set(qa.answer, [...(byAnswer.get(qa.answer) ?? []), qa]);
    }
    for (let picked = 0; picked < perType && byAnswer.size > 0; picked++) {
      const present = [...byAnswer.keys()];
      const answer = present[Math.floor(rng() * present.length)] as string;
      const group = byAnswer.get(answer) as QuestionAnswer[];
      out.push(group.pop() as QuestionAnswer);
      if (group.length === 0) byAnswer.delete(answer);
    }
  }
  return shuffled(rng, out);
}

/**
 * The four classic Set-of-Mark checks, exactly as the example harness asks them, for a
 * scene with two marked objects #1 and #2.
 */
export function classicQuestions(scene: SceneDescription): QuestionAnswer[] {
  const marked = markedObjects(scene);
  const [one, two] = [marked.find((o) => o.mark === 1), marked.find((o) => o.mark === 2)];
  if (!one || !two) throw new Error('classic checks need marks #1 and #2');
  return [
    { type: 'describe', question: templates.describe(), answer: answers.describe(marked) },
    { type: 'color', question: templates.color(1), answer: answers.word(one.color) },
    {
      type: 'compare',
      question: templates.sameColor(1, 2),
      answer: answers.yesNo(one.color === two.color),
    },
    {
      type: 'spatial',
      question: templates.whichLeft(1, 2),
      answer: answers.markRef(one.cx < two.cx ? 1 : 2),
    },
  ];
}

/** Every distinct text the model can be asked or must answer: the tokenizer keeps the tokens these need. */
export function enumerateTaskTexts(): string[] {
  const texts = new Set<string>();
  const marks = Array.from({ length: MAX_MARKS }, (_, i) => i + 1);
  texts.add(templates.describe());
  texts.add(templates.countMarked());
  for (const a of marks) {
    texts.add(templates.color(a));
    texts.add(templates.shape(a));
    texts.add(answers.markRef(a));
    texts.add(answers.mark(a));
    for (const b of marks) {
      texts.add(templates.sameColor(a, b));
      texts.add(templates.sameShape(a, b));
      texts.add(templates.leftOf(a, b));
      texts.add(templates.rightOf(a, b));
      texts.add(templates.above(a, b));
      texts.add(templates.below(a, b));
      texts.add(templates.whichLeft(a, b));
    }
  }
  for (const color of COLORS) {
    texts.add(templates.countColor(color));
    texts.add(answers.word(color));
    for (const shape of SHAPES) {
      texts.add(templates.find(color, shape));
      for (const a of marks) {
        // Describe answers are comma-joined pieces; each piece in first and later position.
        const piece = { mark: a, color, shape };
        texts.add(answers.describe([piece]));
        texts.add(answers.describe([{ mark: 0, color: 'red', shape: 'circle' }, piece]));
      }
    }
  }
  for (const shape of SHAPES) {
    texts.add(templates.countShape(shape));
    texts.add(answers.word(shape));
  }
  texts.add(answers.yesNo(true));
  texts.add(answers.yesNo(false));
  for (let n = 0; n <= MAX_OBJECTS; n++) texts.add(answers.count(n));
  return [...texts];
}
