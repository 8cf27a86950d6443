import { DataError } from '@cg/cyclegan';
import { describe, expect, it } from 'vitest';
import { decodeImage, encodePng } from '../../src/data/fs-images.js';
import { newImage } from '../../src/data/image.js';
import { DEFAULT_MAX_PIXELS, PIL_MAX_IMAGE_PIXELS, probeImage } from '../../src/data/probe.js';
import { jpegWithHeader, pngWithHeader } from './hostile_images.js';

/** The DataError `fn` throws (fails the test if it throws anything else or nothing). */
function dataError(fn: () => unknown): DataError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(DataError);
    return e as DataError;
  }
  throw new Error('expected a DataError');
}

describe('decompression bombs: the size is read from the header and refused before decoding', () => {
  it("uses PIL's numbers: warn above 89,478,485 pixels, refuse above twice that", () => {
    expect(PIL_MAX_IMAGE_PIXELS).toBe(89_478_485);
    expect(DEFAULT_MAX_PIXELS).toBe(178_956_970);
  });

  it('refuses a tiny PNG whose IHDR says 20000×20000, in well under 2 s, naming file, size and --max_pixels', () => {
    const bomb = pngWithHeader(20000, 20000);
    expect(bomb.length).toBeLessThan(4096);
    const t0 = performance.now();
    const e = dataError(() => decodeImage(bomb, 'bomb.png'));
    expect(performance.now() - t0).toBeLessThan(2000);
    expect(e.message).toMatch(/^bomb\.png: 20000×20000 \(400\.0 MP\) is over the limit of 178956970 pixels/);
    expect(e.message).toMatch(/--max_pixels 400000000/);
    // probe (what validateDataset uses) refuses it too, so train/test catch it before the first epoch.
    expect(() => probeImage(bomb, 'bomb.png')).toThrow(/over the limit/);
  });

  it('refuses a JPEG whose SOF0 says 65535×65535', () => {
    const e = dataError(() => decodeImage(jpegWithHeader(65535, 65535), 'huge.jpg'));
    expect(e.message).toMatch(/^huge\.jpg: 65535×65535 \(4294\.8 MP\) is over the limit/);
  });

  it('maxPixels changes the limit; above half of it there is a warning, not an error', () => {
    const img = encodePng(newImage(40, 30, 3)); // 1200 pixels
    expect(() => decodeImage(img, 'a.png', { maxPixels: 1000 })).toThrow(/a\.png: 40×30 .*limit of 1000 pixels/);
    const warnings: string[] = [];
    expect(decodeImage(img, 'a.png', { maxPixels: 2000, warn: (m) => warnings.push(m) }).width).toBe(40);
    expect(warnings).toEqual([expect.stringMatching(/^a\.png: 40×30 .*very large image/)]);
    warnings.length = 0;
    decodeImage(img, 'a.png', { maxPixels: 2400, warn: (m) => warnings.push(m) });
    expect(warnings).toEqual([]);
    expect(decodeImage(img, 'a.png', { maxPixels: Number.POSITIVE_INFINITY }).height).toBe(30);
  });

  it('refuses a zero width or height from the header, naming the file', () => {
    expect(dataError(() => decodeImage(pngWithHeader(0, 5), 'flat.png')).message).toMatch(
      /^flat\.png: the PNG header says 0×5 pixels \(a zero side\)/,
    );
    expect(dataError(() => decodeImage(jpegWithHeader(7, 0), 'flat.jpg')).message).toMatch(
      /^flat\.jpg: the JPEG header says 7×0 pixels \(a zero side\)/,
    );
  });

  it('refuses a header cut short, naming the file', () => {
    const png = pngWithHeader(20000, 20000);
    for (const cut of [8, 12, 20, 32]) {
      expect(dataError(() => decodeImage(png.subarray(0, cut), 'cut.png')).message).toMatch(
        /^cut\.png: truncated or corrupt PNG \(the file ends at byte \d+, inside the header\)/,
      );
    }
    const jpg = jpegWithHeader(20000, 20000);
    for (const cut of [3, 6, 12]) {
      expect(dataError(() => decodeImage(jpg.subarray(0, cut), 'cut.jpg')).message).toMatch(
        /^cut\.jpg: truncated or corrupt JPEG/,
      );
    }
    // An SOF segment too short to hold the size.
    const shortSof = Buffer.from([0xff, 0xd8, 0xff, 0xc0, 0x00, 0x04, 8, 0, 0xff, 0xd9]);
    expect(dataError(() => decodeImage(shortSof, 'sof.jpg')).message).toMatch(/^sof\.jpg: .*frame header \(SOF\)/);
  });
});
