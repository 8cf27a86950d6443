import { CheckpointError } from '../errors.js';
import type { DType } from './host_tensor.js';

/** Bytes per element. */
export const DTYPE_SIZE: Readonly<Record<DType, number>> = {
  float32: 4,
  float16: 2,
  bfloat16: 2,
  float64: 8,
  int64: 8,
  int32: 4,
  int16: 2,
  int8: 1,
  uint8: 1,
  bool: 1,
};

const hostIsLittleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 0x1f) return frac ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** float32 → IEEE half bits, round-to-nearest-even like torch's `.half()`. */
function floatToHalf(x: number): number {
  f32[0] = x;
  const b = u32[0];
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  let mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let h = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && h & 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  // A carry out of the mantissa correctly bumps the exponent (up to infinity).
  if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++;
  return sign | h;
}

function floatToBfloat16(x: number): number {
  f32[0] = x;
  const b = u32[0];
  if (Number.isNaN(x)) return ((b >>> 16) & 0x8000) | 0x7fc0;
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

/**
 * Raw element bytes → float32 values. `bytes.length` must be a multiple of the
 * element size (callers check this against the declared shape first).
 */
export function decodeElements(bytes: Uint8Array, dtype: DType, littleEndian = true): Float32Array {
  const size = DTYPE_SIZE[dtype];
  const n = Math.floor(bytes.length / size);
  if (dtype === 'float32' && littleEndian === hostIsLittleEndian) {
    // Copy into a fresh, aligned buffer, which a Float32Array view needs. Not bytes.slice(): on a Node
    // Buffer (what fs.readFile returns) slice() is a view of the whole file, not a copy.
    const out = new Float32Array(n);
    new Uint8Array(out.buffer).set(bytes.subarray(0, n * 4));
    return out;
  }
  const out = new Float32Array(n);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const le = littleEndian;
  switch (dtype) {
    case 'float32':
      for (let i = 0; i < n; i++) out[i] = dv.getFloat32(i * 4, le);
      break;
    case 'float64':
      for (let i = 0; i < n; i++) out[i] = dv.getFloat64(i * 8, le);
      break;
    case 'float16':
      for (let i = 0; i < n; i++) out[i] = halfToFloat(dv.getUint16(i * 2, le));
      break;
    case 'bfloat16':
      for (let i = 0; i < n; i++) {
        u32[0] = dv.getUint16(i * 2, le) << 16;
        out[i] = f32[0];
      }
      break;
    case 'int64':
      for (let i = 0; i < n; i++) {
        const lo = dv.getUint32(i * 8 + (le ? 0 : 4), le);
        const hi = dv.getInt32(i * 8 + (le ? 4 : 0), le);
        out[i] = hi * 4294967296 + lo;
      }
      break;
    case 'int32':
      for (let i = 0; i < n; i++) out[i] = dv.getInt32(i * 4, le);
      break;
    case 'int16':
      for (let i = 0; i < n; i++) out[i] = dv.getInt16(i * 2, le);
      break;
    case 'int8':
      for (let i = 0; i < n; i++) out[i] = dv.getInt8(i);
      break;
    case 'uint8':
      for (let i = 0; i < n; i++) out[i] = bytes[i];
      break;
    case 'bool':
      for (let i = 0; i < n; i++) out[i] = bytes[i] ? 1 : 0;
      break;
  }
  return out;
}

/** [min, max) per integer dtype; exclusive because 2^63 − 1 is not a float. */
const INT_RANGE: Partial<Record<DType, [number, number]>> = {
  int64: [-(2 ** 63), 2 ** 63],
  int32: [-(2 ** 31), 2 ** 31],
  int16: [-32768, 32768],
  int8: [-128, 128],
  uint8: [0, 256],
};

/**
 * float32 values → little-endian element bytes of `dtype`. Integer dtypes round
 * to nearest and refuse values they cannot hold rather than wrapping silently.
 * For float32 on a little-endian host the result is a view of `data` (no copy):
 * callers copy it into their output anyway.
 */
export function encodeElements(data: Float32Array, dtype: DType, name: string): Uint8Array {
  if (dtype === 'float32' && hostIsLittleEndian) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const n = data.length;
  const out = new Uint8Array(n * DTYPE_SIZE[dtype]);
  const dv = new DataView(out.buffer);
  const range = INT_RANGE[dtype];
  let ints: Float64Array | undefined;
  if (range) {
    ints = new Float64Array(n);
    const [lo, hi] = range;
    for (let i = 0; i < n; i++) {
      const v = Math.round(data[i]);
      // float32 cannot hold the int32/int64 maxima: they read back as exactly 2^31 / 2^63,
      // so that one value means "the maximum" (written below as hi − 1).
      const saturated = v === hi && Math.fround(hi - 1) === hi;
      if (!(v >= lo && (v < hi || saturated))) {
        throw new CheckpointError(
          `checkpoint writer: tensor '${name}' is ${dtype} but element ${i} is ${data[i]}, which ${dtype} cannot hold`,
        );
      }
      ints[i] = v;
    }
  }
  switch (dtype) {
    case 'float32':
      for (let i = 0; i < n; i++) dv.setFloat32(i * 4, data[i], true);
      break;
    case 'float64':
      for (let i = 0; i < n; i++) dv.setFloat64(i * 8, data[i], true);
      break;
    case 'float16':
      for (let i = 0; i < n; i++) dv.setUint16(i * 2, floatToHalf(data[i]), true);
      break;
    case 'bfloat16':
      for (let i = 0; i < n; i++) dv.setUint16(i * 2, floatToBfloat16(data[i]), true);
      break;
    case 'int64':
      for (let i = 0; i < n; i++) {
        const v = ints![i];
        if (v >= 2 ** 63) {
          // 2^63 − 1 is not a double: write the int64 maximum's bits directly.
          dv.setUint32(i * 8, 0xffffffff, true);
          dv.setInt32(i * 8 + 4, 0x7fffffff, true);
          continue;
        }
        const hi = Math.floor(v / 4294967296);
        dv.setUint32(i * 8, v - hi * 4294967296, true);
        dv.setInt32(i * 8 + 4, hi, true);
      }
      break;
    case 'int32':
      for (let i = 0; i < n; i++) dv.setInt32(i * 4, Math.min(ints![i], 2 ** 31 - 1), true);
      break;
    case 'int16':
      for (let i = 0; i < n; i++) dv.setInt16(i * 2, ints![i], true);
      break;
    case 'int8':
      for (let i = 0; i < n; i++) dv.setInt8(i, ints![i]);
      break;
    case 'uint8':
      for (let i = 0; i < n; i++) out[i] = ints![i];
      break;
    case 'bool':
      for (let i = 0; i < n; i++) out[i] = data[i] !== 0 ? 1 : 0;
      break;
  }
  return out;
}
