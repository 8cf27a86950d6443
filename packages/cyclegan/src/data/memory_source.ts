import { DataError } from '../errors.js';
import { type ImageSource, joinPath } from './files.js';
import type { RgbImage } from './image.js';

/**
 * An ImageSource over images held in memory, keyed by `/`-separated paths: the synthetic demo dataset, tests,
 * and browsers that decoded user files themselves.
 */
export class MemoryImageSource implements ImageSource {
  private readonly files = new Map<string, RgbImage>();

  /** Adds `images` as `<dir>/<prefix><index>.png`; returns the paths. */
  addAll(dir: string, images: readonly RgbImage[], prefix = ''): string[] {
    const width = String(Math.max(0, images.length - 1)).length;
    return images.map((img, i) => {
      const path = joinPath(dir, `${prefix}${String(i).padStart(width, '0')}.png`);
      this.files.set(path, img);
      return path;
    });
  }

  set(path: string, img: RgbImage): void {
    this.files.set(path, img);
  }

  async list(dir: string): Promise<string[]> {
    const prefix = dir.endsWith('/') ? dir : `${dir}/`;
    const out = [...this.files.keys()].filter((p) => p.startsWith(prefix));
    if (out.length === 0) throw new DataError(`${dir}: folder not found; create it and put the domain's images in it`);
    return out;
  }

  async read(path: string): Promise<RgbImage> {
    const img = this.files.get(path);
    if (img === undefined) throw new DataError(`${path}: no such image`);
    return img;
  }
}
