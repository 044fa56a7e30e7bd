import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { GlobalFonts } from '@napi-rs/canvas';
import { serverPackageRoot } from '../package-root.js';

/**
 * Mark labels are drawn with Liberation Sans Regular, which has Arial's metrics (Magma's
 * UI agent drew its labels with arial.ttf). The file ships in the package so drawing never
 * depends on fonts installed on the machine.
 */
const FONT_FILE = 'LiberationSans-Regular.ttf';

/** A family name no system font uses, so a failed registration cannot fall back silently. */
export const LABEL_FONT_FAMILY = 'MagmaSomLabelSans';

let registered = false;

/** assets/fonts/ at the root of this package, wherever this module sits (src/ or dist/). */
function findFontFile(): string {
  const root = serverPackageRoot(import.meta.url);
  const candidate = root === undefined ? undefined : join(root, 'assets', 'fonts', FONT_FILE);
  if (candidate === undefined || !existsSync(candidate)) {
    throw new Error(`bundled font assets/fonts/${FONT_FILE} not found`);
  }
  return candidate;
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
