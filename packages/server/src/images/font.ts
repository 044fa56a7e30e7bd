import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GlobalFonts } from '@napi-rs/canvas';

/**
 * Mark labels are drawn with Liberation Sans Regular, which has Arial's metrics (Magma's
 * UI agent drew its labels with arial.ttf). The file ships in the package so drawing never
 * depends on fonts installed on the machine.
 */
const FONT_FILE = 'LiberationSans-Regular.ttf';

/** A family name no system font uses, so a failed registration cannot fall back silently. */
export const LABEL_FONT_FAMILY = 'MagmaSomLabelSans';

let registered = false;

/**
 * Finds assets/fonts/ by walking up from this module: it sits two levels below the package
 * root in src/images/ (vitest, tsx) and one or two levels below it in the tsup build (dist/).
 */
function findFontFile(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, 'assets', 'fonts', FONT_FILE);
    if (existsSync(candidate)) return candidate;
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`bundled font assets/fonts/${FONT_FILE} not found`);
    dir = parent;
  }
}

/** Registers the bundled label font once per process; later calls do nothing. */
export function ensureLabelFont(): void {
  if (registered) return;
  GlobalFonts.registerFromPath(findFontFile(), LABEL_FONT_FAMILY);
  if (!GlobalFonts.has(LABEL_FONT_FAMILY)) {
    throw new Error(`could not register the bundled font ${FONT_FILE}`);
  }
  registered = true;
}
