import { CheckpointError } from '@cg/tensor-core';
import { DTYPE_SIZE, decodeElements, encodeElements } from './dtypes.js';
import type { DType, StateDict } from './host_tensor.js';

/**
 * safetensors: u64 little-endian header length N, N bytes of JSON
 * (`name → {dtype, shape, data_offsets: [begin, end]}` plus an optional
 * `__metadata__` of strings), then the raw little-endian tensor bytes, with
 * offsets relative to the start of that data.
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

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function readSafetensors(bytes: Uint8Array, source = 'safetensors'): StateDict {
  const fail = (msg: string): never => {
    throw new CheckpointError(`${source}: invalid safetensors file: ${msg}`);
  };
  if (bytes.length < 8) fail(`only ${bytes.length} bytes, too short for the 8-byte header length (file truncated?)`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = dv.getUint32(4, true) * 4294967296 + dv.getUint32(0, true);
  if (n > MAX_HEADER) fail(`header length ${n} exceeds the ${MAX_HEADER}-byte limit`);
  if (n > bytes.length - 8)
    fail(`header length ${n} is larger than the ${bytes.length - 8} bytes after it (file truncated?)`);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + n)));
  } catch (e) {
    fail(`header is not valid UTF-8 JSON (${(e as Error).message})`);
  }
  if (!isRecord(header)) return fail('header is not a JSON object');
  const dataStart = 8 + n;
  const dataLen = bytes.length - dataStart;

  const entries: { name: string; dtype: DType; shape: number[]; begin: number; end: number }[] = [];
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') {
      if (!isRecord(info) || !Object.values(info).every((v) => typeof v === 'string')) {
        fail('__metadata__ must map strings to strings');
      }
      continue;
    }
    const where = `tensor '${name}'`;
    if (!isRecord(info)) return fail(`${where}: entry is not an object`);
    const dtype =
      typeof info.dtype === 'string' && Object.hasOwn(TO_DTYPE, info.dtype) ? TO_DTYPE[info.dtype] : undefined;
    if (!dtype)
      return fail(
        `${where}: dtype ${JSON.stringify(info.dtype)} is not supported (use F32/F16/BF16/F64/I64/I32/I16/I8/U8/BOOL)`,
      );
    const shape = info.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      return fail(`${where}: shape must be an array of non-negative integers`);
    }
    const offs = info.data_offsets;
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((o) => Number.isSafeInteger(o) && o >= 0)) {
      return fail(`${where}: data_offsets must be two non-negative integers`);
    }
    const [begin, end] = offs as number[];
    if (!(begin <= end && end <= dataLen)) {
      fail(`${where}: data_offsets [${begin}, ${end}] are outside the ${dataLen}-byte data section (file truncated?)`);
    }
    let nbytes = DTYPE_SIZE[dtype];
    for (const d of shape as number[]) nbytes *= d;
    if (nbytes !== end - begin) {
      fail(
        `${where}: shape [${shape.join(',')}] of ${info.dtype} needs ${nbytes} bytes but data_offsets span ${end - begin}`,
      );
    }
    entries.push({ name, dtype, shape: shape as number[], begin, end });
  }
  // File order is offset order; this also restores the original key order,
  // which JSON.parse loses for integer-like keys.
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  for (let i = 1; i < entries.length; i++) {
    if (entries[i].begin < entries[i - 1].end) {
      fail(`tensors '${entries[i - 1].name}' and '${entries[i].name}' overlap in the data section`);
    }
  }
  const out: StateDict = new Map();
  for (const e of entries) {
    const data = decodeElements(bytes.subarray(dataStart + e.begin, dataStart + e.end), e.dtype);
    out.set(e.name, { dtype: e.dtype, shape: e.shape, data });
  }
  return out;
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
