import { crc32 } from '../crc32.js';
import { DataError } from '../errors.js';
import type { ImageInfo } from './files.js';

/*
 * Cheap structural checks of PNG and JPEG files, without decoding pixels: enough to catch what actually
 * breaks datasets (truncated downloads, HTML error pages saved as .jpg, unsupported formats) in a fraction
 * of a decode's time. PNG chunks carry CRCs, so for PNG this also catches flipped bits; JPEG has no checksum,
 * so a corrupt JPEG whose markers are intact passes (PIL would decode it to garbage too).
 */

/**
 * PIL's `Image.MAX_IMAGE_PIXELS` (1024 × 1024 × 1024 / 4 / 3): a 48 KB PNG can claim 20000×20000 pixels and
 * take gigabytes and minutes to inflate, so sizes are checked from the header before any pixel is decoded.
 * Like PIL, we warn above this and refuse above twice this (DecompressionBombWarning / DecompressionBombError).
 */
export const PIL_MAX_IMAGE_PIXELS = 89_478_485;
export const DEFAULT_MAX_PIXELS = 2 * PIL_MAX_IMAGE_PIXELS;

export interface PixelLimit {
  /** Refuse images with more pixels than this (default DEFAULT_MAX_PIXELS); warn above half of it. */
  maxPixels?: number;
  /** Receives the warning for an image between half the limit and the limit. */
  warn?: (msg: string) => void;
}

const megapixels = (n: number) => `${(n / 1e6).toFixed(1)} MP`;

/** Throws a DataError if the header's size is over the pixel limit; warns (if asked) when it is close. */
export function checkPixelLimit(info: ImageInfo, path: string, limit: PixelLimit = {}): void {
  const max = limit.maxPixels ?? DEFAULT_MAX_PIXELS;
  const pixels = info.width * info.height;
  const size = `${info.width}×${info.height} (${megapixels(pixels)})`;
  if (pixels > max) {
    // pngjs holds RGBA plus the inflated rows: about 8 bytes a pixel before we even convert.
    const gb = ((pixels * 8) / 2 ** 30).toFixed(1);
    throw new DataError(
      `${path}: ${size} is over the limit of ${max} pixels (${megapixels(max)}) that guards against ` +
        `decompression bombs; decoding it would take about ${gb} GB. If you trust the file, raise the limit ` +
        `with --max_pixels ${pixels}, or downscale the image first`,
    );
  }
  if (pixels > max / 2) {
    limit.warn?.(
      `${path}: ${size} is a very large image (limit ${megapixels(max)}); decoding it takes a lot of memory`,
    );
  }
}

export type SniffedFormat = 'png' | 'jpeg' | 'bmp' | 'ppm' | 'tiff' | 'gif' | 'webp';

/** The format the bytes are in, by magic number (file extensions lie), or null if none we know. */
export function sniffFormat(b: Uint8Array): SniffedFormat | null {
  const at = (i: number, ...bytes: number[]) => bytes.every((v, k) => b[i + k] === v);
  if (at(0, 0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a)) return 'png';
  if (at(0, 0xff, 0xd8, 0xff)) return 'jpeg';
  if (at(0, 0x42, 0x4d)) return 'bmp';
  if (b[0] === 0x50 && b[1] >= 0x31 && b[1] <= 0x36 && (b[2] === 0x0a || b[2] === 0x20 || b[2] === 0x0d)) return 'ppm';
  if (at(0, 0x49, 0x49, 0x2a, 0x00) || at(0, 0x4d, 0x4d, 0x00, 0x2a)) return 'tiff';
  if (at(0, 0x47, 0x49, 0x46, 0x38)) return 'gif';
  if (at(0, 0x52, 0x49, 0x46, 0x46) && at(8, 0x57, 0x45, 0x42, 0x50)) return 'webp';
  return null;
}

/** A DataError for bytes we cannot decode, with what to do about them. */
export function unsupportedFormatError(path: string, b: Uint8Array): DataError {
  const fmt = sniffFormat(b);
  if (fmt === null) {
    const head = Array.from(b.subarray(0, 8), (v) => v.toString(16).padStart(2, '0')).join(' ');
    const hint = b.length === 0 ? 'the file is empty' : `it starts with bytes ${head}`;
    return new DataError(`${path}: not a PNG or JPEG image (${hint}); delete it or replace it with the real image`);
  }
  return new DataError(
    `${path}: ${fmt.toUpperCase()} images are not supported (only PNG and JPEG); convert it, e.g. ` +
      '`mogrify -format png *.' +
      (fmt === 'jpeg' ? 'jpg' : fmt) +
      '` with ImageMagick',
  );
}

function u32(b: Uint8Array, i: number): number {
  return ((b[i] << 24) | (b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]) >>> 0;
}

function truncated(path: string, fmt: string, detail: string): DataError {
  return new DataError(
    `${path}: truncated or corrupt ${fmt} (${detail}); re-download or re-export the image, or delete it`,
  );
}

function zeroSize(path: string, fmt: string, width: number, height: number): DataError {
  return new DataError(
    `${path}: the ${fmt} header says ${width}×${height} pixels (a zero side), so there is no image; ` +
      're-export or delete the file',
  );
}

/** Size of a PNG after checking every chunk's bounds and CRC and that IHDR, IDAT and IEND are there. */
function probePng(b: Uint8Array, path: string): ImageInfo {
  let pos = 8;
  let width = 0;
  let height = 0;
  let sawIdat = false;
  let first = true;
  while (true) {
    if (first && pos + 25 > b.length)
      throw truncated(path, 'PNG', `the file ends at byte ${b.length}, inside the header`);
    if (pos + 12 > b.length) throw truncated(path, 'PNG', `file ends at byte ${b.length} before the IEND chunk`);
    const len = u32(b, pos);
    const type = String.fromCharCode(b[pos + 4], b[pos + 5], b[pos + 6], b[pos + 7]);
    const end = pos + 12 + len;
    if (end > b.length) throw truncated(path, 'PNG', `chunk ${type} at byte ${pos} runs past the end of the file`);
    if (crc32(b.subarray(pos + 4, pos + 8 + len)) !== u32(b, pos + 8 + len)) {
      throw truncated(path, 'PNG', `CRC mismatch in chunk ${type} at byte ${pos}`);
    }
    if (first) {
      if (type !== 'IHDR' || len !== 13) throw truncated(path, 'PNG', 'the first chunk is not IHDR');
      width = u32(b, pos + 8);
      height = u32(b, pos + 12);
      if (width === 0 || height === 0) throw zeroSize(path, 'PNG', width, height);
      first = false;
    }
    if (type === 'IDAT') sawIdat = true;
    if (type === 'IEND') break;
    pos = end;
  }
  if (!sawIdat) throw truncated(path, 'PNG', 'no IDAT chunk');
  return { format: 'png', width, height };
}

/** Size of a JPEG after walking its markers to the EOI that ends the image data. */
function probeJpeg(b: Uint8Array, path: string): ImageInfo {
  let pos = 2;
  let width = 0;
  let height = 0;
  let sawScan = false;
  while (true) {
    // Markers may be preceded by any number of 0xFF fill bytes.
    while (pos < b.length && b[pos] === 0xff && b[pos + 1] === 0xff) pos++;
    if (pos + 1 >= b.length) throw truncated(path, 'JPEG', 'the end-of-image marker is missing');
    if (b[pos] !== 0xff) throw truncated(path, 'JPEG', `expected a marker at byte ${pos}`);
    const m = b[pos + 1];
    pos += 2;
    if (m === 0xd9) break;
    if (m === 0x01 || (m >= 0xd0 && m <= 0xd7)) continue;
    if (pos + 2 > b.length) throw truncated(path, 'JPEG', 'the end-of-image marker is missing');
    const len = (b[pos] << 8) | b[pos + 1];
    if (len < 2 || pos + len > b.length)
      throw truncated(path, 'JPEG', `segment 0xFF${m.toString(16)} runs past the end`);
    const isSof = m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc;
    if (isSof && width === 0) {
      if (len < 8) throw truncated(path, 'JPEG', `the frame header (SOF) at byte ${pos - 2} is cut short`);
      height = (b[pos + 3] << 8) | b[pos + 4];
      width = (b[pos + 5] << 8) | b[pos + 6];
    }
    pos += len;
    if (m === 0xda) {
      sawScan = true;
      // Entropy-coded data: a 0xFF in it is followed by 0x00 (stuffing) or a restart marker; anything else ends it.
      while (pos + 1 < b.length && !(b[pos] === 0xff && b[pos + 1] !== 0 && (b[pos + 1] < 0xd0 || b[pos + 1] > 0xd7))) {
        pos++;
      }
    }
  }
  if (!sawScan) throw truncated(path, 'JPEG', 'no image data (SOS) before the end marker');
  if (width === 0 && height === 0) throw truncated(path, 'JPEG', 'no frame header (SOF) with the image size');
  // A zero height is legal JPEG (the DNL marker gives it later), but neither jpeg-js nor we support it.
  if (width === 0 || height === 0) throw zeroSize(path, 'JPEG', width, height);
  return { format: 'jpeg', width, height };
}

/**
 * Format and size of an image file's bytes; throws a DataError naming `path` if it is unusable or has more
 * pixels than `limit` allows.
 */
export function probeImage(bytes: Uint8Array, path: string, limit: PixelLimit = {}): ImageInfo {
  const fmt = sniffFormat(bytes);
  if (fmt !== 'png' && fmt !== 'jpeg') throw unsupportedFormatError(path, bytes);
  const info = fmt === 'png' ? probePng(bytes, path) : probeJpeg(bytes, path);
  checkPixelLimit(info, path, limit);
  return info;
}
