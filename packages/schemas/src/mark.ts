import { z } from 'zod';
import { DEFAULT_LIMITS } from './limits.js';
import { markBoxIssues } from './mark-box.js';

const coordinate = z.number().finite().min(0, 'must be >= 0');

export const HexColorSchema = z.string().regex(/^#[0-9a-fA-F]{6}$/, 'must be a #rrggbb colour');

/** Optional per-mark drawing overrides. Magma was trained on red marks; change them knowingly. */
export const MarkStyleSchema = z.strictObject({
  color: HexColorSchema.optional(),
});

/**
 * A numbered region: box corners in pixels of the submitted image (after EXIF orientation),
 * and the label drawn on it. Labels are whatever numbers the caller chooses; clients that
 * number marks for you start at 1, as the classic SoM prompt ("#1") does. Magma's UI-agent
 * data was 0-based, so 0 is accepted too.
 */
export const MarkSchema = z
  .strictObject({
    label: z.number().int().min(0).max(DEFAULT_LIMITS.maxLabel),
    x1: coordinate,
    y1: coordinate,
    x2: coordinate,
    y2: coordinate,
    style: MarkStyleSchema.optional(),
  })
  .superRefine((mark, ctx) => {
    for (const issue of markBoxIssues(mark)) ctx.addIssue({ code: 'custom', ...issue });
  });

/** Up to 64 marks with unique labels. */
export const MarkListSchema = z
  .array(MarkSchema)
  .max(DEFAULT_LIMITS.maxMarks, `at most ${DEFAULT_LIMITS.maxMarks} marks`)
  .superRefine((marks, ctx) => {
    const seen = new Map<number, number>();
    marks.forEach((mark, index) => {
      const first = seen.get(mark.label);
      if (first === undefined) {
        seen.set(mark.label, index);
      } else {
        ctx.addIssue({
          code: 'custom',
          path: [index, 'label'],
          message: `duplicate label ${mark.label} (also used by marks[${first}])`,
        });
      }
    });
  });

export type MarkStyle = z.infer<typeof MarkStyleSchema>;
export type Mark = z.infer<typeof MarkSchema>;

/** One problem with one mark, found once the image size is known. */
export interface MarkIssue {
  readonly index: number;
  readonly label: number;
  readonly message: string;
}

/**
 * Checks that every mark lies inside a width x height image. The schema cannot do this
 * because the size is known only after the image is decoded.
 */
export function findMarksOutsideImage(
  marks: readonly Mark[],
  width: number,
  height: number,
): MarkIssue[] {
  const issues: MarkIssue[] = [];
  marks.forEach((mark, index) => {
    if (mark.x2 > width || mark.y2 > height) {
      issues.push({
        index,
        label: mark.label,
        message: `mark ${mark.label} (${mark.x1},${mark.y1})-(${mark.x2},${mark.y2}) extends outside the ${width}x${height} image`,
      });
    }
  });
  return issues;
}
