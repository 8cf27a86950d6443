// The app's synchronous PNG encoder (the trainer's samples in the browser) against Node's decoder.
import { decodeImage } from '@cg/cyclegan/node';
import { describe, expect, test } from 'vitest';
import { encodePngSync } from '../../apps/web/src/png.js';

describe('encodePngSync', () => {
  test.each([
    [3, 5, 3],
    [1, 1, 1],
    [200, 120, 3], // more than one 64 KiB stored block
    [17, 9, 1],
  ] as const)('%i×%i, %i channel(s) decodes to the same pixels', (width, height, channels) => {
    const data = new Uint8Array(width * height * channels).map((_, i) => (i * 37 + (i >> 7)) & 0xff);
    const png = encodePngSync({ width, height, channels, data });
    const back = decodeImage(png, 'sync.png');
    expect([back.width, back.height]).toEqual([width, height]);
    const gray = (img: Uint8Array, c: number) => Array.from(img).filter((_, i) => i % c === 0);
    if (channels === 3) expect(Buffer.from(back.data).equals(Buffer.from(data))).toBe(true);
    else expect(gray(back.data, back.channels)).toEqual(Array.from(data));
  });
});
