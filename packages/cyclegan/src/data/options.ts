import { OptionError } from '../errors.js';

/** The official `--preprocess` choices (options/base_options.py). */
export const PREPROCESS_MODES = ['resize_and_crop', 'crop', 'scale_width', 'scale_width_and_crop', 'none'] as const;
export type Preprocess = (typeof PREPROCESS_MODES)[number];

/** Data options, named and defaulted as the official base/train options. */
export interface DataOptions {
  /** Folder holding `trainA/`, `trainB/` (and `testA/`, `testB/`). */
  dataroot: string;
  phase: 'train' | 'test';
  direction: 'AtoB' | 'BtoA';
  input_nc: 1 | 3;
  output_nc: 1 | 3;
  preprocess: Preprocess;
  load_size: number;
  crop_size: number;
  no_flip: boolean;
  serial_batches: boolean;
  batch_size: number;
  max_dataset_size: number;
  seed: number;
}

export const DEFAULT_DATA_OPTIONS: Readonly<Omit<DataOptions, 'dataroot'>> = {
  phase: 'train',
  direction: 'AtoB',
  input_nc: 3,
  output_nc: 3,
  preprocess: 'resize_and_crop',
  load_size: 286,
  crop_size: 256,
  no_flip: false,
  serial_batches: false,
  batch_size: 1,
  max_dataset_size: Number.POSITIVE_INFINITY,
  seed: 0,
};

/**
 * Fills in defaults and checks the values. For `phase: 'test'` the unset options take the official test
 * values (test_options.py sets `load_size = crop_size`; test.py forces serial batches and no flipping).
 */
export function resolveDataOptions(opts: Partial<DataOptions> & { dataroot: string }): DataOptions {
  const test = opts.phase === 'test';
  const crop = opts.crop_size ?? DEFAULT_DATA_OPTIONS.crop_size;
  const resolved: DataOptions = {
    ...DEFAULT_DATA_OPTIONS,
    ...(test ? { load_size: crop, serial_batches: true, no_flip: true } : {}),
    ...stripUndefined(opts),
    dataroot: opts.dataroot,
  };
  validateDataOptions(resolved);
  return resolved;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** Throws an OptionError naming every bad option and what would work. */
export function validateDataOptions(o: DataOptions, into?: string[]): void {
  const bad: string[] = into ?? [];
  const posInt = (name: keyof DataOptions, v: number) => {
    if (!Number.isInteger(v) || v < 1) bad.push(`--${name} must be a positive integer (got ${v})`);
  };
  if (typeof o.dataroot !== 'string' || o.dataroot === '')
    bad.push('--dataroot is required (a folder with trainA/ and trainB/)');
  if (o.phase !== 'train' && o.phase !== 'test') bad.push(`--phase must be train or test (got ${o.phase})`);
  if (o.direction !== 'AtoB' && o.direction !== 'BtoA')
    bad.push(`--direction must be AtoB or BtoA (got ${o.direction})`);
  if (o.input_nc !== 1 && o.input_nc !== 3) bad.push(`--input_nc must be 1 or 3 (got ${o.input_nc})`);
  if (o.output_nc !== 1 && o.output_nc !== 3) bad.push(`--output_nc must be 1 or 3 (got ${o.output_nc})`);
  if (!(PREPROCESS_MODES as readonly string[]).includes(o.preprocess)) {
    bad.push(`--preprocess must be one of ${PREPROCESS_MODES.join(', ')} (got ${o.preprocess})`);
  }
  posInt('load_size', o.load_size);
  posInt('crop_size', o.crop_size);
  posInt('batch_size', o.batch_size);
  if (!(o.max_dataset_size >= 1)) bad.push(`--max_dataset_size must be at least 1 (got ${o.max_dataset_size})`);
  if (!Number.isInteger(o.seed)) bad.push(`--seed must be an integer (got ${o.seed})`);
  // After resizing to load_size (or scaling the width to it) the crop must fit, or every image fails.
  if ((o.preprocess === 'resize_and_crop' || o.preprocess === 'scale_width_and_crop') && o.crop_size > o.load_size) {
    bad.push(
      `--crop_size ${o.crop_size} is larger than --load_size ${o.load_size} with --preprocess ${o.preprocess}; ` +
        'use a crop_size ≤ load_size (official defaults: load_size 286, crop_size 256)',
    );
  }
  // With `into`, the caller collects these with its own problems and throws once.
  if (!into && bad.length > 0) throw new OptionError(`data options: ${bad.join('; ')}`);
}
