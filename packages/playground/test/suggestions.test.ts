import { describe, expect, it } from 'vitest';
import { templates } from '../../../tools/tiny-model/questions.js';
import { suggestedQuestions } from '../src/ask/suggestions.js';

describe('suggestedQuestions', () => {
  it('words every suggestion exactly as magma-tiny-som was trained (its canonical templates)', () => {
    expect(suggestedQuestions([1, 2])).toEqual([
      templates.describe(),
      templates.color(1),
      templates.shape(1),
      templates.sameColor(1, 2),
      templates.sameShape(1, 2),
      templates.leftOf(1, 2),
      templates.whichLeft(1, 2),
      templates.countMarked(),
    ]);
  });

  it('fills the marks in the order given, and needs two marks for the comparisons', () => {
    expect(suggestedQuestions([7, 3])).toContain('Is #7 left of #3?');
    expect(suggestedQuestions([4])).toEqual([
      templates.describe(),
      templates.color(4),
      templates.shape(4),
      templates.countMarked(),
    ]);
    expect(suggestedQuestions([])).toEqual([]);
  });
});
