import { CheckpointError } from '@cg/cyclegan';
import { describe, expect, it } from 'vitest';
import { readPth, readZip, writePth, writeZip } from '../../src/checkpoint/index.js';
import { fixture } from './helpers.js';

const entries = [
  { name: 'a/data.pkl', data: Uint8Array.of(1, 2, 3) },
  { name: 'a/data/0', data: new Uint8Array(100).map((_, i) => i) },
  { name: 'a/ünïcode', data: new Uint8Array(0) },
];

describe('zip', () => {
  it('round-trips STORED entries with 64-byte aligned data', () => {
    const out = readZip(writeZip(entries), 'mem.zip');
    expect([...out]).toEqual(entries.map((e) => [e.name, e.data]));
    for (const d of out.values()) expect(d.byteOffset % 64).toBe(0);
  });

  it('reads and writes ZIP64 records', () => {
    const bytes = writeZip(entries, { zip64: true });
    expect([...readZip(bytes, 'z64.zip')]).toEqual(entries.map((e) => [e.name, e.data]));
    // The end record's fields are saturated, so only the ZIP64 records can have been used.
    const dv = new DataView(bytes.buffer);
    expect(dv.getUint32(bytes.length - 6, true)).toBe(0xffffffff);
    const sd = readPth(fixture('dtypes_zip.pth'), 'x');
    const z64 = writeZip(
      [...readZip(writePth(sd), 'x')].map(([name, data]) => ({ name, data })),
      { zip64: true },
    );
    expect(readPth(z64, 'zip64.pth')).toEqual(sd);
  });

  it('reads the ZIP64 end records torch writes', () => {
    // torch (miniz) always appends a ZIP64 end record and locator; the fixture has them.
    const bytes = fixture('dtypes_zip.pth');
    const dv = new DataView(bytes.buffer, bytes.byteOffset);
    expect(dv.getUint32(bytes.length - 22 - 20, true)).toBe(0x07064b50);
    expect(readZip(bytes, 'dtypes_zip.pth').size).toBeGreaterThan(10);
  });

  it('refuses compressed entries with a clear message', () => {
    const bytes = writeZip(entries);
    const dv = new DataView(bytes.buffer);
    for (let p = 0; p < bytes.length - 4; p++) {
      const sig = dv.getUint32(p, true);
      if (sig === 0x04034b50) dv.setUint16(p + 8, 8, true);
      if (sig === 0x02014b50) dv.setUint16(p + 10, 8, true);
    }
    expect(() => readZip(bytes, 'deflate.pth')).toThrow(/deflate\.pth: .*compressed entries are not supported/);
  });

  it('detects corrupted data by CRC', () => {
    const bytes = writeZip(entries);
    const at = readZip(bytes, 'x').get('a/data/0')!.byteOffset + 7;
    bytes[at] ^= 0xff;
    expect(() => readZip(bytes, 'crc.zip')).toThrow(/CRC mismatch in 'a\/data\/0'/);
  });

  it('fails cleanly without an end record', () => {
    expect(() => readZip(Uint8Array.of(0x50, 0x4b, 3, 4), 'tiny.zip')).toThrow(CheckpointError);
    expect(() => readZip(new Uint8Array(100), 'zeros.zip')).toThrow(/no end-of-central-directory/);
  });
});
