/**
 * Prints the mark sizing policy as a Markdown table (docs/MARKS.md): label and outline sizes in
 * image pixels and in the pixels each bundle's processor shows the model, for common image sizes.
 *
 *   node --import tsx tools/scenes/mark-sizes.ts
 */
import {
  measureLabelText,
  fontSizeForTextHeight,
} from '../../packages/server/src/images/mark-layout.js';
import {
  DEFAULT_MARK_MINIMUMS,
  magmaMarkSizing,
  markSizing,
  modelScale,
} from '../../packages/server/src/images/mark-sizing.js';
import type { MarkSizing, ModelResolution } from '../../packages/server/src/images/mark-sizing.js';

const SIZES: Array<[number, number]> = [
  [96, 96],
  [640, 480],
  [1024, 768],
  [1920, 1080],
  [4000, 3000],
];
const BUNDLES: Array<[string, ModelResolution]> = [
  ['magma-tiny-som (2x2 x 128)', { cropSize: 128, maxCrops: 4 }],
  ['Magma-8B (2x2 x 512)', { cropSize: 512, maxCrops: 4 }],
];

/** Drawn label height (the "5" label box) and outline, in image px. */
function drawn(sizing: MarkSizing): { label: number; outline: number } {
  const font = fontSizeForTextHeight(sizing.labelTextHeight);
  return { label: measureLabelText('5', font).height, outline: sizing.outlineWidth };
}

const fmt = (v: number) => (Number.isInteger(v) ? String(v) : v.toFixed(1));
const lines: string[] = [];
for (const [name, model] of BUNDLES) {
  lines.push(
    `**${name}**, floor ${DEFAULT_MARK_MINIMUMS.labelTextHeight} px labels, ${DEFAULT_MARK_MINIMUMS.outlineWidth} px outlines in model pixels`,
    '',
  );
  lines.push(
    '| image | scale | Magma rule: label / outline, image px | model px | default (`model`): label / outline, image px | model px |',
  );
  lines.push('|---|---|---|---|---|---|');
  for (const [w, h] of SIZES) {
    const s = modelScale(w, h, model);
    const magma = drawn(magmaMarkSizing(w, h));
    const ours = drawn(markSizing(w, h, model));
    lines.push(
      `| ${w}x${h} | ${s.toFixed(3)} | ${magma.label} / ${magma.outline} | ${fmt(magma.label * s)} / ${fmt(magma.outline * s)} | ` +
        `${ours.label} / ${ours.outline} | ${fmt(ours.label * s)} / ${fmt(ours.outline * s)} |`,
    );
  }
  lines.push('');
}
console.log(lines.join('\n'));
