import { CheckpointError } from '../errors.js';
import { MAX_EXPANDED_ELEMENTS } from './limits.js';

/**
 * Copy a strided view out of a storage into a contiguous row-major tensor.
 * Callers have checked that `offset + Σ (shape[i]−1)·stride[i]` is inside
 * `storage`, so no index here can go out of range, and that the view does not
 * repeat elements (see `repeatsElements`), so the copy is never larger than
 * the storage it comes from.
 */
export function gatherStrided(
  storage: Float32Array,
  offset: number,
  shape: readonly number[],
  stride: readonly number[],
  numel: number,
): Float32Array {
  if (numel === 0) return new Float32Array(0);
  if (numel > Math.max(storage.length, MAX_EXPANDED_ELEMENTS)) {
    // Unreachable through StorageBank; kept so no caller can turn a stride-0 view into a huge allocation.
    throw new CheckpointError(
      `gatherStrided: a view of ${numel} elements from a ${storage.length}-element storage repeats too many elements`,
    );
  }
  if (isContiguous(shape, stride)) return storage.slice(offset, offset + numel);
  const out = new Float32Array(numel);
  const rank = shape.length;
  const last = rank - 1;
  const idx = new Array<number>(rank).fill(0);
  const innerN = shape[last];
  const innerS = stride[last];
  let base = offset;
  // Odometer over all but the last dim; the last dim is the tight inner loop.
  for (let o = 0; o < numel; o += innerN) {
    for (let j = 0; j < innerN; j++) out[o + j] = storage[base + j * innerS];
    for (let d = last - 1; d >= 0; d--) {
      idx[d]++;
      base += stride[d];
      if (idx[d] < shape[d]) break;
      base -= stride[d] * shape[d];
      idx[d] = 0;
    }
  }
  return out;
}

/** Row-major contiguous, ignoring the stride of size-1 dims (torch does the same). */
export function isContiguous(shape: readonly number[], stride: readonly number[]): boolean {
  let expected = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    if (shape[d] !== 1 && stride[d] !== expected) return false;
    expected *= shape[d];
  }
  return true;
}

/** Row-major strides of a contiguous tensor. */
export function contiguousStrides(shape: readonly number[]): number[] {
  const out = new Array<number>(shape.length);
  let s = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    out[d] = s;
    s *= shape[d];
  }
  return out;
}
