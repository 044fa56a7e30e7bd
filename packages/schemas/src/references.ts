import type { Mark } from './mark.js';
import type { MarkReference } from './ask.js';

// "Mark: 3" is how Magma names a mark; "#3" is how SoM prompts and answers usually do.
const REFERENCE = /\bMark:\s*(\d+)|#(\d+)\b/g;

/**
 * Finds the marks an answer names, in order of appearance, and joins each with the submitted
 * mark of that label when there is one.
 */
export function parseMarkReferences(answer: string, marks: readonly Mark[] = []): MarkReference[] {
  const byLabel = new Map(marks.map((mark) => [mark.label, mark]));
  const references: MarkReference[] = [];
  for (const match of answer.matchAll(REFERENCE)) {
    const label = Number(match[1] ?? match[2]);
    if (!Number.isSafeInteger(label)) continue;
    const mark = byLabel.get(label);
    references.push({ label, text: match[0], offset: match.index, ...(mark ? { mark } : {}) });
  }
  return references;
}
