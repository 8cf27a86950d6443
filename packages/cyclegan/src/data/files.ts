import type { RgbImage } from './image.js';

/** What a platform provides to the data pipeline: Node reads the file system, a browser its own files. */
export interface ImageSource {
  /**
   * Every file under `dir`, recursively (like the official `os.walk`), as paths that `read` accepts.
   * Rejects with a DataError if `dir` does not exist or is not a folder.
   */
  list(dir: string): Promise<string[]>;
  /** Decodes one image; rejects with a DataError naming the file if it cannot. */
  read(path: string): Promise<RgbImage>;
  /**
   * Optional cheap check without decoding pixels: format, size, and that the file is complete.
   * Rejects with a DataError naming the file if the header or structure is broken.
   */
  probe?(path: string): Promise<ImageInfo>;
}

export interface ImageInfo {
  format: 'png' | 'jpeg';
  width: number;
  height: number;
}

/** The official IMG_EXTENSIONS (data/image_folder.py), matched case-insensitively. */
export const IMG_EXTENSIONS = ['.jpg', '.jpeg', '.png', '.ppm', '.bmp', '.tif', '.tiff'] as const;

export function isImageFile(path: string): boolean {
  const lower = path.toLowerCase();
  return IMG_EXTENSIONS.some((ext) => lower.endsWith(ext));
}

/** `a/b` + `c` → `a/b/c` with exactly one separator; sources receive `/`-separated paths. */
export function joinPath(dir: string, name: string): string {
  if (dir === '') return name;
  return dir.endsWith('/') || dir.endsWith('\\') ? dir + name : `${dir}/${name}`;
}

/** The last path component, for messages and result file names. */
export function baseName(path: string): string {
  const i = Math.max(path.lastIndexOf('/'), path.lastIndexOf('\\'));
  return i < 0 ? path : path.slice(i + 1);
}

/** The two folders of an unaligned dataset, e.g. `dataroot/trainA` and `dataroot/trainB`. */
export function domainDirs(dataroot: string, phase: string): { A: string; B: string } {
  return { A: joinPath(dataroot, `${phase}A`), B: joinPath(dataroot, `${phase}B`) };
}

export interface DomainFiles {
  /** Image files, sorted, capped at max_dataset_size. */
  images: string[];
  /** Files that were skipped because their extension is not an image one. */
  others: string[];
}

/**
 * The official `sorted(make_dataset(dir, max_dataset_size))`, except that we sort before capping: the
 * official caps the `os.walk` order, which differs between machines, and we want the same subset everywhere.
 */
export async function listDomain(source: ImageSource, dir: string, maxSize: number): Promise<DomainFiles> {
  const all = await source.list(dir);
  // Plain code-unit order, like Python's sorted() on str (localeCompare would differ between machines).
  const byCodeUnit = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  const images = all.filter(isImageFile).sort(byCodeUnit);
  const others = all.filter((p) => !isImageFile(p)).sort(byCodeUnit);
  return { images: images.slice(0, Math.min(maxSize, images.length)), others };
}
