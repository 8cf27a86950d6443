import { deflateSync } from 'node:zlib';
import { crc32 } from '../../src/crc32.js';

/*
 * Hand-made PNG and JPEG byte streams whose headers claim what their data does not hold (a 20000×20000
 * PNG in a few hundred bytes, a zero side, a header cut short), for the tests of what we refuse to decode.
 */

function chunk(type: string, data: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'latin1');
  out.set(data, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

/** A structurally valid RGB PNG whose IHDR says `width × height` but whose IDAT holds one row of zeros. */
export function pngWithHeader(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8); // 8-bit RGB, no interlace
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  const idat = deflateSync(Buffer.alloc(1 + Math.min(width, 1000) * 3));
  return Buffer.concat([signature, chunk('IHDR', ihdr), chunk('IDAT', idat), chunk('IEND', new Uint8Array(0))]);
}

/** A baseline JPEG (SOF0, 3 components) whose frame header says `width × height`, with a two-byte scan. */
export function jpegWithHeader(width: number, height: number): Buffer {
  const sof = [0xff, 0xc0, 0x00, 0x11, 8, height >> 8, height & 0xff, width >> 8, width & 0xff, 3];
  const components = [1, 0x11, 0, 2, 0x11, 0, 3, 0x11, 0];
  const sos = [0xff, 0xda, 0x00, 0x0c, 3, 1, 0x00, 2, 0x00, 3, 0x00, 0, 63, 0];
  return Buffer.from([0xff, 0xd8, ...sof, ...components, ...sos, 0x00, 0x00, 0xff, 0xd9]);
}
