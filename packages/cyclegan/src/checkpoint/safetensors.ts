import { CheckpointError } from '../errors.js';
import { fmtCount } from './byte_reader.js';
import { DTYPE_SIZE, decodeElements, encodeElements } from './dtypes.js';
import { type JsonObject, type JsonValue, parseHeaderJson } from './header_json.js';
import type { DType, StateDict } from './host_tensor.js';
import { MAX_STATE_DICT_KEYS } from './limits.js';

/**
 * safetensors: u64 little-endian header length N, N bytes of JSON
 * (`name → {dtype, shape, data_offsets: [begin, end]}` plus an optional
 * `__metadata__` of strings), then the raw little-endian tensor bytes, with
 * offsets relative to the start of that data. Every declared size is checked
 * against the file before anything is decoded.
 */

const TO_DTYPE: Readonly<Record<string, DType>> = {
  F32: 'float32',
  F16: 'float16',
  BF16: 'bfloat16',
  F64: 'float64',
  I64: 'int64',
  I32: 'int32',
  I16: 'int16',
  I8: 'int8',
  U8: 'uint8',
  BOOL: 'bool',
};
const FROM_DTYPE = Object.fromEntries(Object.entries(TO_DTYPE).map(([k, v]) => [v, k])) as Record<DType, string>;

/** The reference implementation refuses headers above 100 MB; so do we, before decoding. */
const MAX_HEADER = 100_000_000;

function isObject(v: JsonValue | undefined): v is JsonObject {
  return v instanceof Map;
}

interface Entry {
  name: string;
  dtype: DType;
  shape: number[];
  begin: number;
  end: number;
}

export function readSafetensors(bytes: Uint8Array, source = 'safetensors'): StateDict {
  const fail = (msg: string): never => {
    throw new CheckpointError(`${source}: invalid safetensors file: ${msg}`);
  };
  if (bytes.length < 8) fail(`only ${bytes.length} bytes, too short for the 8-byte header length (file truncated?)`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = dv.getUint32(4, true) * 4294967296 + dv.getUint32(0, true);
  if (n > MAX_HEADER) fail(`header length ${fmtCount(n)} exceeds the ${MAX_HEADER}-byte limit (file corrupt?)`);
  if (n > bytes.length - 8) {
    fail(`header length ${n} is larger than the ${bytes.length - 8} bytes after it (file truncated?)`);
  }
  let text = '';
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + n));
  } catch {
    fail(`header is not valid UTF-8 JSON: bytes 8 to ${8 + n} are not UTF-8 text (file corrupt?)`);
  }
  // One key more than the tensor limit, for __metadata__; a tensor entry is about 10 values.
  const limits = { maxKeys: MAX_STATE_DICT_KEYS + 1, maxValues: 32 * (MAX_STATE_DICT_KEYS + 1) };
  const header = parseHeaderJson(text, limits, (msg, at, kind) => {
    const byte = 8 + new TextEncoder().encode(text.slice(0, at)).length;
    return kind === 'syntax'
      ? fail(`header is not valid UTF-8 JSON: at byte ${byte}, ${msg} (file corrupt or not written by safetensors?)`)
      : fail(`header refused at byte ${byte}: ${msg}, which no safetensors writer produces (file corrupt or crafted?)`);
  });
  if (!isObject(header)) return fail('header is not a JSON object');
  const dataStart = 8 + n;
  const dataLen = bytes.length - dataStart;

  const entries: Entry[] = [];
  for (const [name, info] of header) {
    if (name === '__metadata__') {
      if (!isObject(info) || ![...info.values()].every((v) => typeof v === 'string')) {
        fail('__metadata__ must map strings to strings');
      }
      continue;
    }
    entries.push(parseEntry(name, info, dataLen, fail));
  }
  // Sorted by offset, which is the order the writer stored them in, so that
  // overlaps show up as neighbours.
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  for (let i = 1; i < entries.length; i++) {
    if (entries[i].begin < entries[i - 1].end) {
      const [a, b] = [entries[i - 1], entries[i]];
      fail(
        `tensors '${a.name}' and '${b.name}' overlap in the data section (bytes [${a.begin}, ${a.end}) and [${b.begin}, ${b.end})); the file is corrupt`,
      );
    }
  }
  const out: StateDict = new Map();
  for (const e of entries) {
    const data = decodeElements(bytes.subarray(dataStart + e.begin, dataStart + e.end), e.dtype);
    out.set(e.name, { dtype: e.dtype, shape: e.shape, data });
  }
  return out;
}

function parseEntry(name: string, info: JsonValue, dataLen: number, fail: (msg: string) => never): Entry {
  const where = `tensor '${name}'`;
  if (!isObject(info)) return fail(`${where}: entry is not an object`);
  const tag = info.get('dtype');
  const dtype = typeof tag === 'string' && Object.hasOwn(TO_DTYPE, tag) ? TO_DTYPE[tag] : undefined;
  if (!dtype) {
    return fail(
      `${where}: dtype ${JSON.stringify(tag ?? null)} is not supported (use F32/F16/BF16/F64/I64/I32/I16/I8/U8/BOOL)`,
    );
  }
  const shape = info.get('shape');
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)) {
    return fail(`${where}: shape must be an array of non-negative integers (got ${JSON.stringify(shape ?? null)})`);
  }
  const offs = info.get('data_offsets');
  if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((o) => Number.isSafeInteger(o) && (o as number) >= 0)) {
    return fail(`${where}: data_offsets must be two non-negative integers (got ${JSON.stringify(offs ?? null)})`);
  }
  const [begin, end] = offs as number[];
  if (!(begin <= end && end <= dataLen)) {
    fail(`${where}: data_offsets [${begin}, ${end}] are outside the ${dataLen}-byte data section (file truncated?)`);
  }
  let nbytes = DTYPE_SIZE[dtype];
  for (const d of shape as number[]) nbytes *= d;
  if (nbytes !== end - begin) {
    fail(
      `${where}: shape [${shape.join(',')}] of ${tag} needs ${fmtCount(nbytes)} bytes but data_offsets span ${end - begin}`,
    );
  }
  return { name, dtype, shape: shape as number[], begin, end };
}

/** Serialise a state dict; each tensor is stored in its own `dtype`. */
export function writeSafetensors(sd: StateDict, metadata?: Record<string, string>): Uint8Array {
  const parts: string[] = [];
  if (metadata) parts.push(`"__metadata__":${JSON.stringify(metadata)}`);
  const blobs: Uint8Array[] = [];
  let offset = 0;
  for (const [name, t] of sd) {
    if (name === '__metadata__') throw new CheckpointError("writeSafetensors: a tensor cannot be named '__metadata__'");
    let numel = 1;
    for (const d of t.shape) numel *= d;
    if (t.data.length !== numel) {
      throw new CheckpointError(
        `writeSafetensors: tensor '${name}' has ${t.data.length} values but its shape [${t.shape.join(',')}] needs ${numel}`,
      );
    }
    const blob = encodeElements(t.data, t.dtype, name);
    blobs.push(blob);
    // Keys written by hand: JSON.stringify of an object would reorder integer-like names.
    const info = { dtype: FROM_DTYPE[t.dtype], shape: t.shape, data_offsets: [offset, offset + blob.length] };
    parts.push(`${JSON.stringify(name)}:${JSON.stringify(info)}`);
    offset += blob.length;
  }
  let header = new TextEncoder().encode(`{${parts.join(',')}}`);
  // Pad with spaces so the data section starts 8-byte aligned (as the reference writer does).
  const padded = Math.ceil(header.length / 8) * 8;
  if (padded !== header.length) {
    const h = new Uint8Array(padded).fill(0x20);
    h.set(header);
    header = h;
  }
  const out = new Uint8Array(8 + header.length + offset);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, header.length, true);
  dv.setUint32(4, 0, true);
  out.set(header, 8);
  let p = 8 + header.length;
  for (const b of blobs) {
    out.set(b, p);
    p += b.length;
  }
  return out;
}
