// `--max_pixels`, shared by every command that reads images: PIL's decompression-bomb limit, checked from
// each file's header before it is decoded (data/probe.ts); and `--max_memory` / `--max_host_memory`, the GPU
// budget past which an image runs in tiles and the host budget for those tiles' activations.

import { totalmem } from 'node:os';
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

/** `--max_memory MB`: the GPU bytes a translation may take before it runs in tiles; 0 means the adapter's limits. */
export const MAX_MEMORY_OPTION = { max_memory: 0 };

/** The GPU budget in bytes, checked; undefined (no budget beyond the adapter's limits) for 0. */
export function maxGpuBytesFrom(mb: number | undefined): number | undefined {
  const value = mb ?? 0;
  if (!(value >= 0)) throw new OptionError(`--max_memory must be a number of MB ≥ 0 (got ${value})`);
  return value ? value * 2 ** 20 : undefined;
}

/** `--max_host_memory MB`: the host bytes a tiled run's activations may take; 0 means half this machine's memory. */
export const MAX_HOST_MEMORY_OPTION = { max_host_memory: 0 };

/** The host budget in bytes, checked. */
export function maxHostBytesFrom(mb: number | undefined): number {
  const value = mb || Math.floor(totalmem() / 2 / 2 ** 20);
  if (!(value > 0)) throw new OptionError(`--max_host_memory must be a number of MB > 0 (got ${mb})`);
  return value * 2 ** 20;
}
