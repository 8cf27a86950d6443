import { fmtShape } from '@cg/tensor-core';
import { CheckpointError } from '../errors.js';
import { DTYPE_SIZE, decodeElements } from './dtypes.js';
import type { HostTensor, StateDict } from './host_tensor.js';
import { MAX_EXPANDED_ELEMENTS } from './limits.js';
import { gatherStrided, isContiguous } from './strided.js';
import type { StorageRef, TensorRef } from './torch_globals.js';

/**
 * Turns the tensor references of an unpickled checkpoint into contiguous
 * float32 tensors: finds each storage's bytes, decodes it once (storages may
 * be shared), checks the view lies inside it, and copies the view out.
 */
export class StorageBank {
  private readonly decoded = new Map<string, Float32Array>();
  /** Tensors still to be materialised per decoded storage, so the last one may take it over. */
  private readonly pending = new Map<string, number>();
  /**
   * Elements we are still willing to allocate. A view may legally be larger
   * than its storage (stride 0), so the input size alone does not bound the
   * output; this cap makes a malicious shape fail fast instead of exhausting memory.
   */
  private budget: number;

  constructor(
    private readonly source: string,
    /** Raw bytes of a root storage, or undefined when the file lacks them. */
    private readonly lookup: (key: string) => Uint8Array | undefined,
    /** Where the bytes of `key` should have been, for the "missing" message. */
    private readonly describeMissing: (key: string) => string,
    private readonly littleEndian: boolean,
    fileBytes: number,
  ) {
    this.budget = 4 * fileBytes + 2 ** 24;
  }

  private fail(name: string, msg: string): never {
    throw new CheckpointError(`${this.source}: tensor '${name}': ${msg}`);
  }

  private static cacheKey(ref: StorageRef): string {
    return `${ref.key}\u0000${ref.dtype}`;
  }

  private values(name: string, ref: StorageRef): Float32Array {
    const cacheKey = StorageBank.cacheKey(ref);
    let root = this.decoded.get(cacheKey);
    if (!root) {
      const raw = this.lookup(ref.key);
      if (!raw)
        this.fail(name, `its storage data is missing (${this.describeMissing(ref.key)}); the file is incomplete`);
      const nbytes = ref.numel * DTYPE_SIZE[ref.dtype];
      if (raw.length < nbytes) {
        this.fail(
          name,
          `storage '${ref.key}' declares ${ref.numel} ${ref.dtype} elements but holds only ${raw.length} bytes`,
        );
      }
      root = decodeElements(raw.subarray(0, nbytes), ref.dtype, this.littleEndian);
      this.decoded.set(cacheKey, root);
    }
    const v = ref.view;
    if (!v) return root;
    if (!(v.offset + v.size <= root.length)) {
      this.fail(name, `storage view [${v.offset}, +${v.size}) lies outside its ${root.length}-element storage`);
    }
    return root.subarray(v.offset, v.offset + v.size);
  }

  materialize(name: string, t: TensorRef): HostTensor {
    let numel = 1;
    for (const d of t.shape) {
      numel *= d;
      if (numel > this.budget) {
        this.fail(name, `shape ${fmtShape(t.shape)} has more elements than this file could plausibly hold`);
      }
    }
    const storage = this.values(name, t.storage);
    if (numel > 0) {
      const view = `view (offset ${t.offset}, shape ${fmtShape(t.shape)}, stride ${fmtShape(t.stride)})`;
      let last = t.offset;
      for (let i = 0; i < t.shape.length; i++) last += (t.shape[i] - 1) * t.stride[i];
      if (!(last < storage.length)) {
        this.fail(name, `${view} reaches element ${last} of a ${storage.length}-element storage`);
      }
      // An expanded view makes a few stored bytes claim a big weight (and through it a big network).
      if (numel > storage.length && numel > MAX_EXPANDED_ELEMENTS) {
        this.fail(
          name,
          `${view} claims ${numel} elements from a ${storage.length}-element storage by repeating them ` +
            `(an expanded tensor, allowed only up to ${MAX_EXPANDED_ELEMENTS} elements); real state_dicts never ` +
            'contain these, so the file is corrupt or crafted; re-save the weights with torch.save(model.state_dict(), path)',
        );
      }
    }
    this.budget -= numel;
    const key = StorageBank.cacheKey(t.storage);
    const left = (this.pending.get(key) ?? 1) - 1;
    this.pending.set(key, left);
    let data: Float32Array;
    if (
      left === 0 &&
      !t.storage.view &&
      t.offset === 0 &&
      numel === storage.length &&
      isContiguous(t.shape, t.stride)
    ) {
      // The usual case: one tensor owns its whole storage, so hand the decoded array over instead of copying.
      data = storage;
      this.decoded.delete(key);
    } else {
      data = gatherStrided(storage, t.offset, t.shape, t.stride, numel);
    }
    return { dtype: t.storage.dtype, shape: [...t.shape], data };
  }

  materializeAll(refs: Map<string, TensorRef>): StateDict {
    for (const t of refs.values()) {
      const key = StorageBank.cacheKey(t.storage);
      this.pending.set(key, (this.pending.get(key) ?? 0) + 1);
    }
    const out: StateDict = new Map();
    for (const [name, t] of refs) out.set(name, this.materialize(name, t));
    return out;
  }
}
