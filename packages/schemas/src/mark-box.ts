/** A problem with a mark's box, at the corner that makes it empty or inverted. */
export interface MarkBoxIssue {
  readonly path: ['x2'] | ['y2'];
  readonly message: string;
}

/**
 * What is wrong with a box's corners: x2 must exceed x1 and y2 exceed y1. The contract's mark
 * schema (zod) and the SDK's pre-send check (zod/mini) both report these issues.
 */
export function markBoxIssues(box: {
  readonly x1: number;
  readonly y1: number;
  readonly x2: number;
  readonly y2: number;
}): MarkBoxIssue[] {
  const issues: MarkBoxIssue[] = [];
  if (!(box.x1 < box.x2)) {
    issues.push({
      path: ['x2'],
      message: 'x2 must be greater than x1 (zero-width or inverted box)',
    });
  }
  if (!(box.y1 < box.y2)) {
    issues.push({
      path: ['y2'],
      message: 'y2 must be greater than y1 (zero-height or inverted box)',
    });
  }
  return issues;
}
