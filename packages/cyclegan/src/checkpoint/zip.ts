import { crc32 } from '../crc32.js';
import { CheckpointError } from '../errors.js';
import { MAX_ZIP_ENTRIES } from './limits.js';

/**
 * Just enough ZIP for torch.save's container: STORED entries only (torch never
 * compresses), ZIP64 records (torch always writes the ZIP64 end record), and
 * the 64-byte data alignment torch's writer uses so storages can be mmapped.
 */

export interface ZipEntry {
  name: string;
  data: Uint8Array;
}

const SIG_LOCAL = 0x04034b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_EOCD = 0x06054b50;
const SIG_ZIP64_EOCD = 0x06064b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;
const U32_MAX = 0xffffffff;
const U16_MAX = 0xffff;

const utf8 = new TextDecoder('utf-8');

function u64(dv: DataView, at: number): number {
  // Inexact above 2^53, but every such value fails the bounds checks below.
  return dv.getUint32(at + 4, true) * 4294967296 + dv.getUint32(at, true);
}

interface EndRecord {
  entries: number;
  cdOffset: number;
  cdSize: number;
  /** Where the end records begin; the central directory must end before this. */
  end: number;
}

function findEndRecord(bytes: Uint8Array, dv: DataView, fail: (msg: string) => never): EndRecord {
  if (bytes.length < 22) fail(`only ${bytes.length} bytes, too short for a zip end record`);
  let eocd = -1;
  const stop = Math.max(0, bytes.length - 22 - U16_MAX);
  for (let p = bytes.length - 22; p >= stop; p--) {
    if (dv.getUint32(p, true) === SIG_EOCD && p + 22 + dv.getUint16(p + 20, true) <= bytes.length) {
      eocd = p;
      break;
    }
  }
  if (eocd < 0) fail('no end-of-central-directory record (file truncated?)');
  if (dv.getUint16(eocd + 4, true) !== 0 || dv.getUint16(eocd + 6, true) !== 0) {
    fail('multi-part zip archives are not supported');
  }
  const rec: EndRecord = {
    entries: dv.getUint16(eocd + 10, true),
    cdSize: dv.getUint32(eocd + 12, true),
    cdOffset: dv.getUint32(eocd + 16, true),
    end: eocd,
  };
  const loc = eocd - 20;
  if (loc >= 0 && dv.getUint32(loc, true) === SIG_ZIP64_LOCATOR) {
    const at = u64(dv, loc + 8);
    if (!(at + 56 <= loc)) fail(`ZIP64 end record offset ${at} is outside the file`);
    if (dv.getUint32(at, true) !== SIG_ZIP64_EOCD) fail(`no ZIP64 end record at byte ${at}`);
    rec.entries = u64(dv, at + 32);
    rec.cdSize = u64(dv, at + 40);
    rec.cdOffset = u64(dv, at + 48);
    rec.end = at;
  } else if (rec.entries === U16_MAX || rec.cdSize === U32_MAX || rec.cdOffset === U32_MAX) {
    fail('end record says ZIP64 but the ZIP64 locator is missing');
  }
  if (!(rec.cdOffset + rec.cdSize <= rec.end)) {
    fail(`central directory [${rec.cdOffset}, +${rec.cdSize}) runs past its end record at ${rec.end}`);
  }
  // Each central entry is at least 46 bytes, so the count is bounded by the size.
  if (!(rec.entries * 46 <= rec.cdSize)) fail(`${rec.entries} entries cannot fit in a ${rec.cdSize}-byte directory`);
  if (rec.entries > MAX_ZIP_ENTRIES) {
    fail(`${rec.entries} entries are more than a torch.save checkpoint has (at most ${MAX_ZIP_ENTRIES})`);
  }
  return rec;
}

/**
 * Parse a ZIP archive into name → data (views into `bytes`, in directory order).
 * Checks CRCs, since a torch checkpoint is otherwise unchecked binary data.
 */
export function readZip(bytes: Uint8Array, source: string): Map<string, Uint8Array> {
  const fail = (msg: string): never => {
    throw new CheckpointError(`${source}: corrupt zip archive: ${msg}; the file is damaged, re-download or re-save it`);
  };
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const rec = findEndRecord(bytes, dv, fail);
  const out = new Map<string, Uint8Array>();
  let p = rec.cdOffset;
  const cdEnd = rec.cdOffset + rec.cdSize;
  for (let i = 0; i < rec.entries; i++) {
    if (p + 46 > cdEnd) fail(`central directory entry ${i} runs past the directory`);
    if (dv.getUint32(p, true) !== SIG_CENTRAL) fail(`bad central directory signature for entry ${i} at byte ${p}`);
    const flags = dv.getUint16(p + 8, true);
    const method = dv.getUint16(p + 10, true);
    const crc = dv.getUint32(p + 16, true);
    let compSize = dv.getUint32(p + 20, true);
    let size = dv.getUint32(p + 24, true);
    const nameLen = dv.getUint16(p + 28, true);
    const extraLen = dv.getUint16(p + 30, true);
    const commentLen = dv.getUint16(p + 32, true);
    let local = dv.getUint32(p + 42, true);
    const next = p + 46 + nameLen + extraLen + commentLen;
    if (next > cdEnd) fail(`central directory entry ${i} runs past the directory`);
    const name = utf8.decode(bytes.subarray(p + 46, p + 46 + nameLen));
    // ZIP64 extra: only the fields whose 32-bit slot is saturated, in this order.
    for (let e = p + 46 + nameLen; e + 4 <= p + 46 + nameLen + extraLen; ) {
      const id = dv.getUint16(e, true);
      const len = dv.getUint16(e + 2, true);
      const body = e + 4;
      if (body + len > p + 46 + nameLen + extraLen) fail(`extra field of '${name}' runs past its entry`);
      if (id === 0x0001) {
        let q = body;
        const field = (): number => {
          if (q + 8 > body + len) fail(`ZIP64 extra field of '${name}' is too short`);
          const v = u64(dv, q);
          q += 8;
          return v;
        };
        if (size === U32_MAX) size = field();
        if (compSize === U32_MAX) compSize = field();
        if (local === U32_MAX) local = field();
      }
      e = body + len;
    }
    p = next;
    if (flags & 1) fail(`entry '${name}' is encrypted`);
    if (method === 8) {
      throw new CheckpointError(
        `${source}: zip entry '${name}' is deflate-compressed; compressed entries are not supported (torch.save never compresses; re-save the checkpoint with torch.save)`,
      );
    }
    if (method !== 0) fail(`entry '${name}' uses compression method ${method}; only STORED entries are supported`);
    if (compSize !== size) fail(`STORED entry '${name}' has compressed size ${compSize} ≠ size ${size}`);
    if (!(local + 30 <= rec.cdOffset)) fail(`local header of '${name}' at ${local} is outside the data area`);
    if (dv.getUint32(local, true) !== SIG_LOCAL) fail(`bad local header signature for '${name}' at byte ${local}`);
    const start = local + 30 + dv.getUint16(local + 26, true) + dv.getUint16(local + 28, true);
    if (!(start + size <= rec.cdOffset)) fail(`data of '${name}' [${start}, +${size}) runs past the data area`);
    const data = bytes.subarray(start, start + size);
    if (crc32(data) !== crc) fail(`CRC mismatch in '${name}'`);
    if (out.has(name)) fail(`duplicate entry '${name}'`);
    out.set(name, data);
  }
  return out;
}

export interface ZipWriteOptions {
  /** Align each entry's data to this many bytes (torch uses 64). 0 or 1: none. */
  align?: number;
  /** Write ZIP64 records even when not needed (tests; big archives get them anyway). */
  zip64?: boolean;
}

function putU64(dv: DataView, at: number, v: number): void {
  dv.setUint32(at, v % 4294967296, true);
  dv.setUint32(at + 4, Math.floor(v / 4294967296), true);
}

/** Write STORED entries, with torch's `FB` padding extra field for alignment. */
export function writeZip(entries: readonly ZipEntry[], options: ZipWriteOptions = {}): Uint8Array {
  const align = options.align ?? 64;
  const enc = new TextEncoder();
  const names = entries.map((e) => enc.encode(e.name));
  for (const n of names) {
    if (n.length > U16_MAX) throw new CheckpointError(`zip writer: entry name of ${n.length} bytes is too long`);
  }
  const dataTotal = entries.reduce((s, e) => s + e.data.length + 30 + 20 + 4 + align + 46 + 28, 0);
  const zip64 =
    options.zip64 === true ||
    entries.length >= U16_MAX ||
    dataTotal + names.reduce((s, n) => s + 2 * n.length, 0) >= U32_MAX;
  const z64Local = zip64 ? 20 : 0;
  const z64Central = zip64 ? 28 : 0;

  // Layout pass: where each local header and its data go.
  const offsets: number[] = [];
  const pads: number[] = [];
  let cursor = 0;
  entries.forEach((e, i) => {
    offsets.push(cursor);
    const start = cursor + 30 + names[i].length + z64Local + 4;
    const pad = align > 1 ? (align - (start % align)) % align : 0;
    pads.push(pad);
    cursor = start + pad + e.data.length;
  });
  const cdOffset = cursor;
  const cdSize = names.reduce((s, n) => s + 46 + n.length + z64Central, 0);
  const endSize = (zip64 ? 56 + 20 : 0) + 22;
  const out = new Uint8Array(cdOffset + cdSize + endSize);
  const dv = new DataView(out.buffer);
  const version = zip64 ? 45 : 20;
  const flags = 0x0800; // names are UTF-8
  const dosDate = (0 << 9) | (1 << 5) | 1; // 1980-01-01: fixed, so output is reproducible
  const crcs = entries.map((e) => crc32(e.data));

  entries.forEach((e, i) => {
    let p = offsets[i];
    const size32 = zip64 ? U32_MAX : e.data.length;
    dv.setUint32(p, SIG_LOCAL, true);
    dv.setUint16(p + 4, version, true);
    dv.setUint16(p + 6, flags, true);
    dv.setUint16(p + 8, 0, true);
    dv.setUint16(p + 10, 0, true);
    dv.setUint16(p + 12, dosDate, true);
    dv.setUint32(p + 14, crcs[i], true);
    dv.setUint32(p + 18, size32, true);
    dv.setUint32(p + 22, size32, true);
    dv.setUint16(p + 26, names[i].length, true);
    dv.setUint16(p + 28, z64Local + 4 + pads[i], true);
    out.set(names[i], p + 30);
    p += 30 + names[i].length;
    if (zip64) {
      dv.setUint16(p, 0x0001, true);
      dv.setUint16(p + 2, 16, true);
      putU64(dv, p + 4, e.data.length);
      putU64(dv, p + 12, e.data.length);
      p += 20;
    }
    out[p] = 0x46; // 'F'
    out[p + 1] = 0x42; // 'B'
    dv.setUint16(p + 2, pads[i], true);
    out.fill(0x5a, p + 4, p + 4 + pads[i]); // 'Z', as torch pads
    out.set(e.data, p + 4 + pads[i]);
  });

  let p = cdOffset;
  entries.forEach((e, i) => {
    const size32 = zip64 ? U32_MAX : e.data.length;
    dv.setUint32(p, SIG_CENTRAL, true);
    dv.setUint16(p + 4, version, true);
    dv.setUint16(p + 6, version, true);
    dv.setUint16(p + 8, flags, true);
    dv.setUint16(p + 10, 0, true);
    dv.setUint16(p + 12, 0, true);
    dv.setUint16(p + 14, dosDate, true);
    dv.setUint32(p + 16, crcs[i], true);
    dv.setUint32(p + 20, size32, true);
    dv.setUint32(p + 24, size32, true);
    dv.setUint16(p + 28, names[i].length, true);
    dv.setUint16(p + 30, z64Central, true);
    dv.setUint32(p + 42, zip64 ? U32_MAX : offsets[i], true);
    out.set(names[i], p + 46);
    p += 46 + names[i].length;
    if (zip64) {
      dv.setUint16(p, 0x0001, true);
      dv.setUint16(p + 2, 24, true);
      putU64(dv, p + 4, e.data.length);
      putU64(dv, p + 12, e.data.length);
      putU64(dv, p + 20, offsets[i]);
      p += 28;
    }
  });

  if (zip64) {
    const at = p;
    dv.setUint32(p, SIG_ZIP64_EOCD, true);
    putU64(dv, p + 4, 44); // size of the rest of this record
    dv.setUint16(p + 12, version, true);
    dv.setUint16(p + 14, version, true);
    putU64(dv, p + 24, entries.length);
    putU64(dv, p + 32, entries.length);
    putU64(dv, p + 40, cdSize);
    putU64(dv, p + 48, cdOffset);
    p += 56;
    dv.setUint32(p, SIG_ZIP64_LOCATOR, true);
    putU64(dv, p + 8, at);
    dv.setUint32(p + 16, 1, true);
    p += 20;
  }
  dv.setUint32(p, SIG_EOCD, true);
  dv.setUint16(p + 8, zip64 ? U16_MAX : entries.length, true);
  dv.setUint16(p + 10, zip64 ? U16_MAX : entries.length, true);
  dv.setUint32(p + 12, zip64 ? U32_MAX : cdSize, true);
  dv.setUint32(p + 16, zip64 ? U32_MAX : cdOffset, true);
  return out;
}
