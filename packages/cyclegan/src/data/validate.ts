import { DataError } from '../errors.js';
import { type DomainFiles, domainDirs, type ImageSource, listDomain } from './files.js';
import { type DataOptions, resolveDataOptions } from './options.js';

/*
 * Checks a dataset before training so a run never dies hours in on a bad file, and reports every problem at
 * once instead of the first.
 *
 * How deep: by default each image's header and structure are checked with `source.probe` when the source has
 * one (PNG: every chunk's CRC and the IEND chunk; JPEG: markers up to EOI), which reads each file once but
 * decodes nothing, so a few thousand images take seconds. That catches truncated files, non-images with image
 * extensions, unsupported formats and images too small for the crop. It misses only a JPEG whose entropy data
 * is corrupt while its markers are intact (such a file decodes to garbage, in PIL too). With `decode: true`,
 * or a source without `probe`, every image is fully decoded. Either way the loader still turns any later
 * decode failure into a DataError naming the file.
 */

export interface ValidateOptions {
  /** Decode every image instead of checking headers (slower, more thorough). */
  decode?: boolean;
  /** Files checked at the same time (IO overlap). */
  concurrency?: number;
  /** Problems spelled out in the error; the rest are counted. */
  maxListed?: number;
}

export interface DomainReport {
  dir: string;
  /** Images that will be used (after max_dataset_size). */
  count: number;
}

export interface DatasetReport {
  A: DomainReport;
  B: DomainReport;
  /** Things that do not stop training, e.g. non-image files that are skipped. */
  warnings: string[];
  checked: 'header' | 'decode';
}

async function mapLimit<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
}

function describe(e: unknown, path: string): string {
  if (e instanceof DataError) return e.message;
  return `${path}: ${e instanceof Error ? e.message : String(e)}`;
}

/**
 * Smallest side, after `--preprocess none` rounds sizes to a multiple of 4, that every generator accepts: a
 * resnet generator halves the image twice and its residual blocks then reflection-pad by 1, which needs a
 * side of at least 2 there (torch: pad < side); U-Nets need more (their multiple, 128 or 256).
 */
const MIN_ROUNDED_SIDE = 8;

/** Official `__make_power_2` rounding (Python's round, half to even) of one side to a multiple of `base`. */
function roundedSide(side: number, base: number): number {
  const q = side / base;
  const r = Math.round(q);
  return (Math.abs(q % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r) * base;
}

/** Why an image of this size cannot go through the preprocessing, or null if it can. */
export function sizeProblem(o: DataOptions, path: string, w: number, h: number): string | null {
  // Only `crop` crops the image at its own size; the other crop modes resize first so the crop always fits.
  if (o.preprocess === 'crop' && (w < o.crop_size || h < o.crop_size)) {
    return (
      `${path}: ${w}×${h} is smaller than --crop_size ${o.crop_size}; ` +
      'use larger images, a smaller --crop_size, or --preprocess resize_and_crop'
    );
  }
  if (o.preprocess === 'none') {
    const rw = roundedSide(w, 4);
    const rh = roundedSide(h, 4);
    if (rw < MIN_ROUNDED_SIDE || rh < MIN_ROUNDED_SIDE) {
      return (
        `${path}: ${w}×${h} is too small for --preprocess none: it rounds to ${rw}×${rh} (a multiple of 4) and ` +
        `the generators need at least ${MIN_ROUNDED_SIDE}×${MIN_ROUNDED_SIDE}, so both sides must be 6 pixels or more; ` +
        'use larger images or another --preprocess (e.g. resize_and_crop)'
      );
    }
  }
  return null;
}

/** Extensions of image formats we do not read, so their files are skipped with a hint to convert them. */
const UNSUPPORTED_IMAGE_EXTENSIONS = ['.gif', '.webp', '.heic', '.heif', '.avif', '.jxl', '.svg'];

function isUnsupportedImage(path: string): boolean {
  const lower = path.toLowerCase();
  return UNSUPPORTED_IMAGE_EXTENSIONS.some((ext) => lower.endsWith(ext));
}

/** The warnings for files that listDomain skipped: unsupported image formats apart from everything else. */
function skipWarnings(dir: string, others: readonly string[]): string[] {
  const images = others.filter(isUnsupportedImage);
  const rest = others.filter((p) => !isUnsupportedImage(p));
  const eg = (files: readonly string[]) => files.slice(0, 3).join(', ');
  const out: string[] = [];
  if (images.length > 0) {
    out.push(
      `${dir}: skipping ${images.length} image(s) in formats we do not read (only PNG and JPEG), e.g. ${eg(images)}; ` +
        'convert them to use them, e.g. `mogrify -format png *.gif` with ImageMagick',
    );
  }
  if (rest.length > 0) {
    out.push(`${dir}: skipping ${rest.length} file(s) without an image extension, e.g. ${eg(rest)}`);
  }
  return out;
}

/**
 * Checks options and both domain folders; resolves with a summary, or rejects with one OptionError (bad options)
 * or one DataError listing the problems (first `maxListed`) and what to do about them.
 */
export async function validateDataset(
  opts: Partial<DataOptions> & { dataroot: string },
  source: ImageSource,
  vopts: ValidateOptions = {},
): Promise<DatasetReport> {
  const o = resolveDataOptions(opts);
  const decode = vopts.decode === true || source.probe === undefined;
  const dirs = domainDirs(o.dataroot, o.phase);
  const problems: string[] = [];
  const warnings: string[] = [];

  const domains: Record<'A' | 'B', DomainFiles | null> = { A: null, B: null };
  for (const key of ['A', 'B'] as const) {
    const dir = dirs[key];
    let files: DomainFiles;
    try {
      files = await listDomain(source, dir, o.max_dataset_size);
    } catch (e) {
      problems.push(describe(e, dir));
      continue;
    }
    if (files.images.length === 0) {
      const others =
        files.others.length === 0
          ? 'the folder is empty'
          : `found only ${files.others.length} other file(s), e.g. ${files.others.slice(0, 3).join(', ')}`;
      const convert = files.others.some(isUnsupportedImage) ? ' (convert GIF/WebP/HEIC images to PNG)' : '';
      problems.push(`${dir}: no images (${others}); put the ${key} domain's PNG or JPEG images there${convert}`);
    }
    if (files.images.length > 0) warnings.push(...skipWarnings(dir, files.others));
    domains[key] = files;
  }

  const paths = [...(domains.A?.images ?? []), ...(domains.B?.images ?? [])];
  await mapLimit(paths, vopts.concurrency ?? 8, async (path) => {
    try {
      const { width, height } = decode ? await source.read(path) : await source.probe!(path);
      const why = sizeProblem(o, path, width, height);
      if (why !== null) problems.push(why);
    } catch (e) {
      problems.push(describe(e, path));
    }
  });

  if (problems.length > 0) {
    // Workers finish out of order; list problems in a stable order.
    problems.sort();
    const max = vopts.maxListed ?? 10;
    const listed = problems.slice(0, max).map((p) => `  - ${p}`);
    if (problems.length > max) listed.push(`  … and ${problems.length - max} more`);
    throw new DataError(
      `dataset ${o.dataroot} cannot be used (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n` +
        `${listed.join('\n')}\n` +
        `Expected layout: ${dirs.A}/ and ${dirs.B}/ holding PNG or JPEG images. ` +
        'Fix or remove the files above (or point --dataroot at the right folder), then run again.',
    );
  }
  return {
    A: { dir: dirs.A, count: domains.A?.images.length ?? 0 },
    B: { dir: dirs.B, count: domains.B?.images.length ?? 0 },
    warnings,
    checked: decode ? 'decode' : 'header',
  };
}
