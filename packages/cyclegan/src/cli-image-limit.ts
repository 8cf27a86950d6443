// `--max_pixels`, shared by every command that reads images: PIL's decompression-bomb limit, checked from
// each file's header before it is decoded (data/probe.ts).

import { DEFAULT_MAX_PIXELS } from './data/probe.js';
import { OptionError } from './errors.js';

/** The option's entry for parseArgs' defaults table. */
export const MAX_PIXELS_OPTION = { max_pixels: DEFAULT_MAX_PIXELS };

/** The limit the user asked for, checked; `inf` turns it off. */
export function maxPixelsFrom(value: number | undefined): number {
  const maxPixels = value ?? DEFAULT_MAX_PIXELS;
  if (!(maxPixels >= 1)) {
    throw new OptionError(`--max_pixels must be a positive number of pixels, or inf for no limit (got ${maxPixels})`);
  }
  return maxPixels;
}
