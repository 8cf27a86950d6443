import { UnalignedDataset } from './data/dataset.js';
import type { ImageSource } from './data/files.js';
import type { DataOptions } from './data/options.js';

/** Opens the official unaligned dataset (`<dataroot>/<phase>A`, `<phase>B`) over an image source. */
export function createDataset(
  options: Partial<DataOptions> & { dataroot: string },
  source: ImageSource,
): Promise<UnalignedDataset> {
  return UnalignedDataset.open(options, source);
}
