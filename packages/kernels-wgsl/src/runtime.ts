import { type Device, type Shape, Tensor } from '@cg/tensor-core';

/**
 * Packs a WGSL uniform struct. Fields are 4 bytes each, in declaration
 * order; the struct is padded to 16 bytes as uniform buffers require.
 * Declare the struct in WGSL with the same field order (u32/i32/f32 only).
 */
export class Params {
  private readonly words: number[] = [];
  private readonly kinds: ('u' | 'i' | 'f')[] = [];
  u32(...v: number[]): this {
    for (const x of v) {
      this.words.push(x);
      this.kinds.push('u');
    }
    return this;
  }
  i32(...v: number[]): this {
    for (const x of v) {
      this.words.push(x);
      this.kinds.push('i');
    }
    return this;
  }
  f32(...v: number[]): this {
    for (const x of v) {
      this.words.push(x);
      this.kinds.push('f');
    }
    return this;
  }
  bytes(): ArrayBuffer {
    const n = Math.max(4, Math.ceil(this.words.length / 4) * 4);
    const buf = new ArrayBuffer(n * 4);
    const u = new Uint32Array(buf);
    const i = new Int32Array(buf);
    const f = new Float32Array(buf);
    this.words.forEach((w, k) => {
      if (this.kinds[k] === 'u') u[k] = w >>> 0;
      else if (this.kinds[k] === 'i') i[k] = w | 0;
      else f[k] = w;
    });
    return buf;
  }
}

export interface KernelCall {
  /** Op name, used as the pipeline label and in error messages. */
  op: string;
  /** Everything baked into the WGSL (tile sizes, constant shapes); the cache key is `${op}|${key}`. */
  key: string;
  /** Builds the WGSL; only called on a pipeline-cache miss. */
  wgsl: () => string;
  /** Bound in order at @binding(0..): inputs first (read), then outputs (read_write). */
  inputs: readonly Tensor[];
  outputs: readonly Tensor[];
  /** Bound as a uniform after the storage buffers. */
  params?: Params;
  workgroups: readonly [number, number?, number?];
}

/** Records one kernel dispatch on the inputs' device. Nothing is submitted or read back. */
export function runKernel(call: KernelCall): void {
  const device = (call.outputs[0] ?? call.inputs[0]).device;
  const pipeline = device.pipeline(`${call.op}|${call.key}`, call.op, call.wgsl);
  const buffers = [...call.inputs, ...call.outputs].map((t) => ({ buffer: t.buffer, bytes: t.byteLength }));
  const [x, y = 1, z = 1] = call.workgroups;
  if (x === 0 || y === 0 || z === 0) return;
  device.dispatch(pipeline, buffers, call.params ? call.params.bytes() : null, [x, y, z]);
}

/** WebGPU caps each dispatch dimension at 65535 workgroups. */
export const MAX_GROUPS_PER_DIM = 65535;

/**
 * Workgroup counts for `n` independent items at `perGroup` items per
 * workgroup, folded into 2-D when one dimension is not enough. Pair with
 * `flatIndex` in WGSL.
 */
export function flatWorkgroups(n: number, perGroup: number): [number, number, number] {
  const groups = Math.ceil(n / perGroup);
  if (groups <= MAX_GROUPS_PER_DIM) return [groups, 1, 1];
  const y = Math.ceil(groups / MAX_GROUPS_PER_DIM);
  return [Math.ceil(groups / y), y, 1];
}

/**
 * WGSL for the linear workgroup index under `flatWorkgroups`; needs
 * `@builtin(workgroup_id) wid` and `@builtin(num_workgroups) nwg` in main.
 */
export const flatGroupIndex = 'wid.x + wid.y * nwg.x';

/** Allocates the output of an op on `like`'s device. */
export function empty(like: Tensor, shape: Shape): Tensor {
  return Tensor.empty(like.device, shape);
}

export function sameDevice(op: string, ...ts: Tensor[]): Device {
  const d = ts[0].device;
  for (const t of ts) {
    if (t.device !== d) throw new Error(`${op}: tensors live on different devices`);
  }
  return d;
}
