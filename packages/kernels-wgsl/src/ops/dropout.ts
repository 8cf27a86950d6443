import { ArgumentError, Tensor } from '@cg/tensor-core';
import { flatGroupIndex, flatWorkgroups, runKernel } from '../runtime.js';
import { expectSameShape } from '../shape.js';
import { binaryMap } from './binary.js';

/**
 * Inverted dropout as PyTorch's: each element is kept with probability 1 − p
 * and scaled by 1/(1 − p), so the expectation is unchanged and eval mode is
 * the identity. The randomness is a counter-based hash of (seed, index), not
 * a stateful generator: the mask is a pure function of the seed, needs no
 * RNG state on the GPU, and the same seed gives the same mask on every
 * adapter (integer arithmetic only).
 *
 * Hash: PCG's output permutation used as a hash (Jarzynski & Olano, "Hash
 * Functions for GPU Rendering", 2020). Element i draws
 * h = pcg(pcg(i) ^ key(seed)); it is dropped when its top 24 bits fall below
 * round(p · 2^24). Hashing i before mixing in the key keeps different seeds
 * from producing shifted copies of one stream.
 */

const WG = 64;
const PER_THREAD = 4;

const PCG_WGSL = /* wgsl */ `
fn pcg(v: u32) -> u32 {
  let state = v * 747796405u + 2891336453u;
  let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
  return (word >> 22u) ^ word;
}`;

/** The same hash in JS (uint32 arithmetic via Math.imul). */
function pcg(v: number): number {
  const state = (Math.imul(v, 747796405) + 2891336453) >>> 0;
  const word = Math.imul((state >>> ((state >>> 28) + 4)) ^ state, 277803737) >>> 0;
  return ((word >>> 22) ^ word) >>> 0;
}

function checkArgs(p: number, seed: number): void {
  if (!(p >= 0 && p <= 1)) throw new ArgumentError(`dropout: probability p must be in [0, 1], got ${p}`);
  if (!Number.isSafeInteger(seed)) throw new ArgumentError(`dropout: seed must be a safe integer, got ${seed}`);
}

/** The 32-bit key of a seed; all 53 bits of an integer seed matter. */
function seedKey(seed: number): number {
  const lo = seed >>> 0;
  const hi = Math.floor(seed / 4294967296) >>> 0;
  return pcg(lo ^ pcg(hi)) >>> 0;
}

const threshold = (p: number) => Math.round(p * 16777216);
/** PyTorch drops everything at p = 1 (its scale would be infinite). */
const keepScale = (p: number) => (p < 1 ? 1 / (1 - p) : 0);

/**
 * y = x · mask, where mask holds 0 or 1/(1 − p). The mask is returned for
 * the backward pass (dropoutBackward); one kernel writes both.
 */
export function dropout(x: Tensor, p: number, seed: number): { y: Tensor; mask: Tensor } {
  checkArgs(p, seed);
  const y = Tensor.empty(x.device, x.shape);
  const mask = Tensor.empty(x.device, x.shape);
  runKernel({
    op: 'dropout',
    key: '',
    decl: { inputs: ['xs'], outputs: ['ys', 'ms'], uniforms: { n: 'u32', key: 'u32', threshold: 'u32', scale: 'f32' } },
    wgsl: () => /* wgsl */ `
${PCG_WGSL}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let base = ((${flatGroupIndex}) * ${WG}u + lid) * ${PER_THREAD}u;
  for (var k = 0u; k < ${PER_THREAD}u; k++) {
    let i = base + k;
    if (i < u.n) {
      let h = pcg(pcg(i) ^ u.key);
      let m = select(0.0, u.scale, (h >> 8u) >= u.threshold);
      ms[i] = m;
      ys[i] = xs[i] * m;
    }
  }
}`,
    inputs: [x],
    outputs: [y, mask],
    uniforms: { n: x.size, key: seedKey(seed), threshold: threshold(p), scale: keepScale(p) },
    workgroups: flatWorkgroups(x.size, WG * PER_THREAD),
  });
  return { y, mask };
}

/** dx = dy · mask. */
export function dropoutBackward(dy: Tensor, mask: Tensor): Tensor {
  expectSameShape('dropoutBackward', dy, mask, ['dy', 'mask']);
  return binaryMap('dropoutBackward', 'a * b', dy, mask);
}

/**
 * The mask `dropout` must produce for n elements, computed on the CPU with
 * the same hash: pins the random stream so it cannot change silently.
 * Values are the f32 the GPU stores (0 or fround(1/(1 − p))).
 */
export function dropoutMaskRef(n: number, p: number, seed: number): Float32Array {
  checkArgs(p, seed);
  const key = seedKey(seed);
  const thr = threshold(p);
  const scale = Math.fround(keepScale(p));
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = pcg(pcg(i) ^ key) >>> 8 >= thr ? scale : 0;
  return out;
}
