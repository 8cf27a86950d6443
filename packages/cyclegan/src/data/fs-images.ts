import { mkdir, open, readdir, readFile, rename, stat, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import jpeg from 'jpeg-js';
import pngjs from 'pngjs';
import { DataError } from '../errors.js';
import { fsError, fsErrorAt } from '../fs-errors.js';
import type { ImageInfo, ImageSource } from './files.js';
import { checkImage, type RgbImage, toRgb } from './image.js';
import { type PixelLimit, probeImage } from './probe.js';

export { describeFsError, fsError, fsErrorAt } from '../fs-errors.js';

/*
 * Node file IO for the data pipeline: decoding with pngjs and jpeg-js (pure JS, so no native build), encoding
 * PNG for sample grids and results. Decoding follows PIL's `Image.open(p).convert('RGB')` where it can: alpha
 * is dropped (not composited), palettes expanded. Known differences: 16-bit PNGs are rescaled to 8 bits with
 * rounding (PIL keeps the high byte, and clips 16-bit gray to white); tRNS colour keys turn pixels black in
 * pngjs; JPEG pixels can differ from libjpeg's by a level or two (different IDCT and chroma upsampling).
 */

const { PNG } = pngjs;

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function decodePng(bytes: Uint8Array): RgbImage {
  const png = PNG.sync.read(asBuffer(bytes));
  const { width, height, data } = png;
  const n = width * height;
  // Gray stays one channel (converting to RGB later is exact); colour drops alpha like PIL's convert('RGB').
  const gray = png.colorType === 0 || png.colorType === 4;
  const c = gray ? 1 : 3;
  const out = new Uint8Array(n * c);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < c; k++) out[i * c + k] = data[i * 4 + k];
  }
  return { width, height, channels: c, data: out };
}

function decodeJpeg(bytes: Uint8Array, pixels: number): RgbImage {
  // Our pixel limit has been checked already; jpeg-js's own (100 MP, 1 GB) would refuse images below it.
  // Its coefficient buffers take about 12 bytes a pixel for 4:4:4 colour, plus the output.
  const maxMemoryUsageInMB = Math.max(1024, Math.ceil((pixels * 24) / 2 ** 20));
  const img = jpeg.decode(bytes, {
    useTArray: true,
    formatAsRGBA: false,
    maxResolutionInMP: Number.POSITIVE_INFINITY,
    maxMemoryUsageInMB,
  });
  return { width: img.width, height: img.height, channels: 3, data: img.data };
}

/**
 * Decodes PNG or JPEG bytes (recognised by content, not extension); any failure is a DataError naming `path`.
 * The size is read from the header first and refused above `limit.maxPixels` (default: PIL's limit).
 */
export function decodeImage(bytes: Uint8Array, path: string, limit: PixelLimit = {}): RgbImage {
  const info = probeImage(bytes, path, limit);
  let img: RgbImage;
  try {
    img = info.format === 'png' ? decodePng(bytes) : decodeJpeg(bytes, info.width * info.height);
  } catch (e) {
    throw new DataError(
      `${path}: cannot decode ${info.format.toUpperCase()} (${message(e)}); re-export or delete the image`,
    );
  }
  if (img.width !== info.width || img.height !== info.height) {
    throw new DataError(
      `${path}: decoded ${img.width}×${img.height} but the header says ${info.width}×${info.height}; ` +
        're-export or delete the image',
    );
  }
  return img;
}

/** The file's bytes; a DataError naming `path` and the problem in words if it cannot be read. */
export async function readImageBytes(path: string): Promise<Uint8Array> {
  try {
    return await readFile(path);
  } catch (e) {
    throw await fsErrorAt(path, 'read the file', e);
  }
}

async function walk(dir: string, out: string[]): Promise<void> {
  const entries = await readdir(dir, { withFileTypes: true });
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.isDirectory()) await walk(p, out);
    else if (e.isFile() || e.isSymbolicLink()) out.push(p);
  }
}

/** ImageSource over the local file system (paths are OS paths). */
export class NodeImageSource implements ImageSource {
  /** `limit`: the pixel limit for every image read or probed (default: PIL's). */
  constructor(private readonly limit: PixelLimit = {}) {}

  async list(dir: string): Promise<string[]> {
    let isDir = false;
    try {
      isDir = (await stat(dir)).isDirectory();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw fsError(dir, 'open the folder', e);
      throw new DataError(`${dir}: folder not found; create it and put the domain's images in it`);
    }
    if (!isDir) throw new DataError(`${dir}: not a folder; --dataroot must hold the trainA/ and trainB/ folders`);
    const out: string[] = [];
    try {
      await walk(dir, out);
    } catch (e) {
      throw fsError(dir, 'list the folder', e);
    }
    return out;
  }

  async read(path: string): Promise<RgbImage> {
    return decodeImage(await readImageBytes(path), path, this.limit);
  }

  async probe(path: string): Promise<ImageInfo> {
    return probeImage(await readImageBytes(path), path, this.limit);
  }
}

/** PNG bytes of an 8-bit gray or RGB image. */
export function encodePng(img: RgbImage): Uint8Array {
  checkImage(img, 'encodePng');
  const colorType = img.channels === 1 ? 0 : 2;
  // deflate level 6: files within a few percent of level 9 at a fraction of the time (grids are written often).
  return PNG.sync.write(
    { width: img.width, height: img.height, data: asBuffer(img.data) },
    { colorType, inputColorType: colorType, inputHasAlpha: false, bitDepth: 8, deflateLevel: 6 },
  );
}

/** JPEG bytes (jpeg-js wants RGBA input). */
export function encodeJpeg(img: RgbImage, quality = 95): Uint8Array {
  checkImage(img, 'encodeJpeg');
  const rgb = toRgb(img);
  const n = img.width * img.height;
  const rgba = Buffer.alloc(n * 4);
  for (let i = 0; i < n; i++) {
    rgba[i * 4] = rgb.data[i * 3];
    rgba[i * 4 + 1] = rgb.data[i * 3 + 1];
    rgba[i * 4 + 2] = rgb.data[i * 3 + 2];
    rgba[i * 4 + 3] = 255;
  }
  return jpeg.encode({ width: img.width, height: img.height, data: rgba }, quality).data;
}

/**
 * Writes `bytes` to `path` via a temporary file and a rename, so a crash or a reader never sees half a file.
 * Creates the parent folder.
 */
export async function writeFileAtomic(path: string, bytes: Uint8Array): Promise<void> {
  try {
    await mkdir(dirname(path), { recursive: true });
  } catch (e) {
    throw fsError(dirname(path), 'create the folder', e);
  }
  const tmp = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  try {
    // Data on disk before the rename makes it visible: a crash leaves either the old file or the new one.
    const fh = await open(tmp, 'w');
    try {
      await fh.writeFile(bytes);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => {});
    throw fsError(path, 'write the file', e);
  }
}

/** Writes an image, atomically, as PNG or JPEG according to the extension of `path`. */
export async function writeImage(path: string, img: RgbImage): Promise<void> {
  const lower = path.toLowerCase();
  if (lower.endsWith('.png')) return writeFileAtomic(path, encodePng(img));
  if (lower.endsWith('.jpg') || lower.endsWith('.jpeg')) return writeFileAtomic(path, encodeJpeg(img));
  throw new DataError(`${path}: cannot write this format; use a .png, .jpg or .jpeg file name`);
}

/** Writes an image as PNG, atomically, whatever the extension. */
export async function writePng(path: string, img: RgbImage): Promise<void> {
  return writeFileAtomic(path, encodePng(img));
}
