/**
 * Element types a checkpoint file may store. Values are always handed to the
 * model as float32; `dtype` remembers what the file said so a writer can put
 * the tensor back the same way (e.g. `num_batches_tracked` stays int64).
 */
export type DType =
  | 'float32'
  | 'float16'
  | 'bfloat16'
  | 'float64'
  | 'int64'
  | 'int32'
  | 'int16'
  | 'int8'
  | 'uint8'
  | 'bool';

/** A tensor in host memory, contiguous, row-major. */
export interface HostTensor {
  dtype: DType;
  /** `[]` for a 0-dim (scalar) tensor. */
  shape: number[];
  /** Row-major values converted to float32; length is the product of `shape`. */
  data: Float32Array;
}

/** PyTorch-style state dict: parameter/buffer name → tensor, in file order. */
export type StateDict = Map<string, HostTensor>;

/** Product of the dims; 1 for a scalar. */
export function numelOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}
