import { mkdir, open, readdir, readFile, rename, stat, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { DataError } from '@cg/tensor-core';
import jpeg from 'jpeg-js';
import pngjs from 'pngjs';
import type { ImageInfo, ImageSource } from './files.js';
import { checkImage, type RgbImage, toRgb } from './image.js';
import { probeImage } from './probe.js';

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

function decodeJpeg(bytes: Uint8Array): RgbImage {
  const img = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: false, maxMemoryUsageInMB: 1024 });
  return { width: img.width, height: img.height, channels: 3, data: img.data };
}

/** Decodes PNG or JPEG bytes (recognised by content, not extension); any failure is a DataError naming `path`. */
export function decodeImage(bytes: Uint8Array, path: string): RgbImage {
  const info = probeImage(bytes, path);
  let img: RgbImage;
  try {
    img = info.format === 'png' ? decodePng(bytes) : decodeJpeg(bytes);
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

async function readBytes(path: string): Promise<Uint8Array> {
  try {
    return await readFile(path);
  } catch (e) {
    throw new DataError(`${path}: cannot read the file (${message(e)}); check that it exists and is readable`);
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
  async list(dir: string): Promise<string[]> {
    let isDir = false;
    try {
      isDir = (await stat(dir)).isDirectory();
    } catch {
      throw new DataError(`${dir}: folder not found; create it and put the domain's images in it`);
    }
    if (!isDir) throw new DataError(`${dir}: not a folder; --dataroot must hold the trainA/ and trainB/ folders`);
    const out: string[] = [];
    try {
      await walk(dir, out);
    } catch (e) {
      throw new DataError(`${dir}: cannot list the folder (${message(e)}); check its permissions`);
    }
    return out;
  }

  async read(path: string): Promise<RgbImage> {
    return decodeImage(await readBytes(path), path);
  }

  async probe(path: string): Promise<ImageInfo> {
    return probeImage(await readBytes(path), path);
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
  await mkdir(dirname(path), { recursive: true });
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
    throw new DataError(
      `${path}: cannot write the file (${message(e)}); check the folder's permissions and free space`,
    );
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
