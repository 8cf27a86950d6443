import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DataError } from '@cg/cyclegan';
import jpeg from 'jpeg-js';
import pngjs from 'pngjs';
import { afterAll, describe, expect, it } from 'vitest';
import { decodeImage, encodePng, NodeImageSource, writeImage, writePng } from '../../src/data/fs-images.js';
import { type RgbImage, toRgb } from '../../src/data/image.js';
import { probeImage } from '../../src/data/probe.js';

const { PNG } = pngjs;
const dir = mkdtempSync(join(tmpdir(), 'cg-fs-images-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const fixturePath = (name: string) => fileURLToPath(new URL(`../fixtures/data/${name}`, import.meta.url));
const fixture = (name: string) => decodeImage(readFileSync(fixturePath(name)), name);

function pattern(w: number, h: number): Uint8Array {
  const d = new Uint8Array(w * h * 4);
  for (let i = 0; i < w * h; i++) {
    d[i * 4] = (i * 7) % 256;
    d[i * 4 + 1] = (i * 13) % 256;
    d[i * 4 + 2] = (i * 29) % 256;
    d[i * 4 + 3] = (i * 3) % 256;
  }
  return d;
}

function dropAlpha(rgba: Uint8Array): Uint8Array {
  const out = new Uint8Array((rgba.length / 4) * 3);
  for (let i = 0; i < rgba.length / 4; i++) out.set(rgba.subarray(i * 4, i * 4 + 3), i * 3);
  return out;
}

describe('decoding files written by pngjs and jpeg-js', () => {
  const src = new NodeImageSource();

  it('RGBA PNG → RGB with the alpha dropped, not composited (PIL convert("RGB"))', async () => {
    const rgba = pattern(9, 7);
    const p = join(dir, 'rgba.png');
    writeFileSync(p, PNG.sync.write({ width: 9, height: 7, data: Buffer.from(rgba) }));
    const img = await src.read(p);
    expect(img).toMatchObject({ width: 9, height: 7, channels: 3 });
    expect(img.data).toEqual(dropAlpha(rgba));
  });

  it('gray PNG → one channel; 16-bit PNG → 8 bits', async () => {
    const gray = Uint8Array.from({ length: 15 }, (_, i) => i * 17);
    const p = join(dir, 'gray.png');
    writeFileSync(
      p,
      PNG.sync.write(
        { width: 5, height: 3, data: Buffer.from(gray) },
        { colorType: 0, inputColorType: 0, inputHasAlpha: false },
      ),
    );
    const img = await src.read(p);
    expect(img).toMatchObject({ width: 5, height: 3, channels: 1 });
    expect(img.data).toEqual(gray);

    // 16-bit RGB: pngjs takes native-endian uint16 samples; v·257 must come back as v.
    const rgb8 = dropAlpha(pattern(4, 3));
    const rgb16 = Uint16Array.from(rgb8, (v) => v * 257);
    const p16 = join(dir, 'rgb16.png');
    writeFileSync(
      p16,
      PNG.sync.write(
        { width: 4, height: 3, data: Buffer.from(rgb16.buffer) },
        { colorType: 2, inputColorType: 2, inputHasAlpha: false, bitDepth: 16 },
      ),
    );
    const img16 = await src.read(p16);
    expect(img16).toMatchObject({ width: 4, height: 3, channels: 3 });
    expect(img16.data).toEqual(rgb8);
  });

  it('JPEG written by jpeg-js decodes to RGB close to the original', async () => {
    const w = 32;
    const h = 24;
    const rgba = new Uint8Array(w * h * 4);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) rgba.set([x * 8, y * 10, 128, 255], (y * w + x) * 4);
    }
    const p = join(dir, 'smooth.JPG');
    writeFileSync(p, jpeg.encode({ width: w, height: h, data: rgba }, 100).data);
    const img = await src.read(p);
    expect(img).toMatchObject({ width: w, height: h, channels: 3 });
    const want = dropAlpha(rgba);
    let worst = 0;
    for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(img.data[i] - want[i]));
    expect(worst).toBeLessThanOrEqual(6);
  });

  it('recognises the format by content, not by extension', async () => {
    const p = join(dir, 'actually-a-png.jpg');
    writeFileSync(p, PNG.sync.write({ width: 2, height: 2, data: Buffer.from(pattern(2, 2)) }));
    expect((await src.read(p)).width).toBe(2);
  });

  it('failures are DataErrors naming the file', async () => {
    const p = join(dir, 'notes.png');
    writeFileSync(p, 'just some text\n');
    await expect(src.read(p)).rejects.toThrow(DataError);
    await expect(src.read(p)).rejects.toThrow(/notes\.png: not a PNG or JPEG image/);
    const bmp = join(dir, 'old.bmp');
    writeFileSync(bmp, Buffer.from([0x42, 0x4d, 0, 0, 0, 0]));
    await expect(src.read(bmp)).rejects.toThrow(/old\.bmp: BMP images are not supported.*convert/);
    await expect(src.read(join(dir, 'missing.png'))).rejects.toThrow(/missing\.png: cannot read the file/);
  });
});

describe('decoding matches PIL (Image.open(p).convert("RGB")) on files PIL wrote', () => {
  it.each(['palette.png', 'rgba.png', 'la.png'])('%s exactly', (name) => {
    expect(toRgb(fixture(name)).data).toEqual(fixture(`${name}.rgb.png`).data);
  });

  // jpeg-js and libjpeg differ in IDCT rounding and chroma upsampling (jpeg-js replicates subsampled chroma,
  // libjpeg interpolates it), so JPEG inputs cannot be bit-exact with the official loader.
  it.each(['photo_q90.jpg', 'photo_gray.jpg'])('%s within a few levels', (name) => {
    const ours = toRgb(fixture(name)).data;
    const pil = fixture(`${name}.rgb.png`).data;
    let worst = 0;
    let sum = 0;
    for (let i = 0; i < pil.length; i++) {
      const d = Math.abs(ours[i] - pil[i]);
      worst = Math.max(worst, d);
      sum += d;
    }
    // Measured with PIL 9.4 / jpeg-js 0.4.4: colour (4:2:0) mean 1.49, max 10; gray mean 0.06, max 1.
    expect(sum / pil.length).toBeLessThan(2.5);
    expect(worst).toBeLessThanOrEqual(16);
  });
});

describe('probe (header and structure check without decoding)', () => {
  const src = new NodeImageSource();

  it('reports format and size of PNG and JPEG', async () => {
    expect(await src.probe(fixturePath('src_rgb.png'))).toEqual({ format: 'png', width: 40, height: 30 });
    expect(await src.probe(fixturePath('photo_q90.jpg'))).toEqual({ format: 'jpeg', width: 64, height: 48 });
  });

  it('catches a flipped bit in PNG pixel data (chunk CRC) and a JPEG cut short', () => {
    const png = new Uint8Array(readFileSync(fixturePath('src_rgb.png')));
    png[png.length - 30] ^= 0x10;
    expect(() => probeImage(png, 'flip.png')).toThrow(
      /flip\.png: truncated or corrupt PNG \(CRC mismatch in chunk IDAT/,
    );
    const jpg = readFileSync(fixturePath('photo_q90.jpg'));
    expect(() => probeImage(jpg.subarray(0, jpg.length - 2), 'cut.jpg')).toThrow(
      /cut\.jpg: .*end-of-image marker is missing/,
    );
    expect(() => probeImage(new Uint8Array(0), 'empty.jpg')).toThrow(
      /empty\.jpg: not a PNG or JPEG image \(the file is empty\)/,
    );
  });
});

describe('writing', () => {
  const img: RgbImage = { width: 3, height: 2, channels: 3, data: Uint8Array.from({ length: 18 }, (_, i) => i * 14) };

  it('encodePng round-trips RGB and gray', () => {
    expect(decodeImage(encodePng(img), 'x.png')).toEqual(img);
    const gray: RgbImage = { width: 2, height: 2, channels: 1, data: Uint8Array.of(0, 50, 200, 255) };
    expect(decodeImage(encodePng(gray), 'g.png')).toEqual(gray);
  });

  it('writeImage/writePng write atomically into new folders and leave no temp files', async () => {
    const out = join(dir, 'out', 'nested');
    await writePng(join(out, 'a.png'), img);
    await writeImage(join(out, 'b.jpg'), img);
    expect(readdirSync(out).sort()).toEqual(['a.png', 'b.jpg']);
    expect(decodeImage(readFileSync(join(out, 'a.png')), 'a.png')).toEqual(img);
    expect(decodeImage(readFileSync(join(out, 'b.jpg')), 'b.jpg')).toMatchObject({ width: 3, height: 2 });
    await expect(writeImage(join(out, 'c.gif'), img)).rejects.toThrow(/use a \.png, \.jpg or \.jpeg/);
  });
});
