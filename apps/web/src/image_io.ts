// Browser image IO: files → RgbImage (createImageBitmap + canvas getImageData), RgbImage → canvas and PNG
// (the browser's own encoder). The library itself stays platform-neutral; this is the browser's half of what
// `@cg/cyclegan/node` does with pngjs/jpeg-js. Everything but drawImage also runs in a Worker (no DOM there:
// an OffscreenCanvas instead of a <canvas>).
import type { RgbImage } from '@cg/cyclegan';

type Ctx2D = CanvasRenderingContext2D | OffscreenCanvasRenderingContext2D;

function canvas2d(width: number, height: number): { canvas: HTMLCanvasElement | OffscreenCanvas; ctx: Ctx2D } {
  const canvas =
    typeof document !== 'undefined'
      ? Object.assign(document.createElement('canvas'), { width, height })
      : new OffscreenCanvas(width, height);
  const ctx = canvas.getContext('2d', { willReadFrequently: true }) as Ctx2D | null;
  if (!ctx) throw new Error('this browser gives no 2D canvas context');
  return { canvas, ctx };
}

/**
 * Decodes a PNG/JPEG/WebP/GIF/BMP file to 8-bit RGB. Colour profiles are ignored (like PIL). Alpha is
 * dropped; unlike PIL, a canvas premultiplies it, so the colour of (nearly) transparent pixels is lost.
 */
export async function decodeImage(file: Blob, name = 'image'): Promise<RgbImage> {
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(file, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  } catch {
    throw new Error(`${name}: the browser cannot decode this file as an image (PNG, JPEG, WebP, GIF or BMP)`);
  }
  try {
    const { width, height } = bitmap;
    const { ctx } = canvas2d(width, height);
    ctx.drawImage(bitmap, 0, 0);
    const rgba = ctx.getImageData(0, 0, width, height).data;
    const data = new Uint8Array(width * height * 3);
    for (let i = 0, j = 0; j < data.length; i += 4, j += 3) {
      data[j] = rgba[i];
      data[j + 1] = rgba[i + 1];
      data[j + 2] = rgba[i + 2];
    }
    return { width, height, channels: 3, data };
  } finally {
    bitmap.close();
  }
}

/** The image as opaque RGBA ImageData. */
export function toImageData(img: RgbImage): ImageData {
  const n = img.width * img.height;
  const rgba = new Uint8ClampedArray(n * 4);
  const c = img.channels;
  for (let i = 0; i < n; i++) {
    const v = img.data.subarray(i * c, i * c + c);
    rgba[i * 4] = v[0];
    rgba[i * 4 + 1] = v[c === 3 ? 1 : 0];
    rgba[i * 4 + 2] = v[c === 3 ? 2 : 0];
    rgba[i * 4 + 3] = 255;
  }
  return new ImageData(rgba, img.width, img.height);
}

/** Draws the image at its own size into `canvas` (CSS scales it for display). */
export function drawImage(canvas: HTMLCanvasElement, img: RgbImage): void {
  canvas.width = img.width;
  canvas.height = img.height;
  canvas.getContext('2d')?.putImageData(toImageData(img), 0, 0);
}

/**
 * PNG of the image, encoded by the browser: OffscreenCanvas.convertToBlob in a Worker (the trainer's samples,
 * engine.ts), canvas.toBlob on the page (downloads, and the samples when the engine runs on the page).
 */
export async function encodePng(img: RgbImage): Promise<Blob> {
  const { canvas, ctx } = canvas2d(img.width, img.height);
  ctx.putImageData(toImageData(img), 0, 0);
  if (canvas instanceof OffscreenCanvas) return canvas.convertToBlob({ type: 'image/png' });
  return new Promise((resolve, reject) =>
    canvas.toBlob((b) => (b ? resolve(b) : reject(new Error('canvas.toBlob produced no PNG'))), 'image/png'),
  );
}
