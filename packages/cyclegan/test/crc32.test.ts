import { describe, expect, it } from 'vitest';
import { crc32 } from '../src/crc32.js';

/** The textbook bit-at-a-time CRC-32, to check the sliced one against. */
function crc32Bitwise(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
}

describe('crc32', () => {
  it('gives the check value of "123456789" and of the empty string', () => {
    expect(crc32(new TextEncoder().encode('123456789'))).toBe(0xcbf43926);
    expect(crc32(new Uint8Array(0))).toBe(0);
  });

  it('matches the bitwise definition for every length 0..40 and unaligned views', () => {
    const data = Uint8Array.from({ length: 300 }, (_, i) => (i * 167 + 13) & 0xff);
    for (let n = 0; n <= 40; n++) {
      for (const start of [0, 1, 3, 7]) {
        const v = data.subarray(start, start + n);
        expect(crc32(v), `length ${n} at ${start}`).toBe(crc32Bitwise(v));
      }
    }
    expect(crc32(data)).toBe(crc32Bitwise(data));
  });
});
