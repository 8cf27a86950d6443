import { fmtShape, ShapeError, Tensor } from '@cg/tensor-core';
import {
  type BindingDecl,
  MAX_GROUPS_PER_DIM,
  runKernel,
  sameDevice,
  type UniformDecl,
  type UniformValues,
} from '../runtime.js';
import { expectRank } from '../shape.js';
import { type ConvStrategy, convStrategy, dispatchBudget, TILED_BK, tiledTile } from './conv_strategy.js';

/**
 * Dense matmul and the workgroup-memory GEMM template that the convolution
 * family reuses for its `workgroup-tiled` strategy.
 */

// ---- workgroup-tiled GEMM template ------------------------------------------

export interface TiledGemm {
  /** Pipeline label. */
  op: string;
  /** Baked: the tile is chosen from M. */
  M: number;
  /** Uniforms, like K's slicing: N and K may be run-time sizes. */
  N: number;
  K: number;
  /** K is cut into this many slices along workgroup z (split-K); `storeC` receives the slice index. */
  kSplit: number;
  /** The storage bindings the helpers read and write. */
  inputs: readonly BindingDecl[];
  outputs: readonly BindingDecl[];
  /** Further uniforms the helpers read (as `u.name`), besides the template's own `off`, `zero`, `K`, `chunk`. */
  uniforms?: UniformDecl;
  /**
   * Helpers defining
   * `fn loadA(m: u32, k: u32) -> f32`, `fn loadB(k: u32, n: u32) -> f32`
   * (both return 0 outside [0,M)×[0,K) / [0,K)×[0,N)) and
   * `fn storeC(m: u32, n: u32, z: u32, v: f32)` (ignores m ≥ M, n ≥ N).
   */
  prelude: string;
}

const GEMM_UNIFORMS = { off: 'u32', zero: 'u32', K: 'u32', chunk: 'u32' } as const;

/** K elements per split slice, a multiple of the K tile. */
export function tiledKChunk(g: Pick<TiledGemm, 'K' | 'kSplit'>): number {
  return Math.ceil(Math.ceil(g.K / g.kSplit) / TILED_BK) * TILED_BK;
}

export function tiledGemmWgsl(g: TiledGemm): string {
  const { bm, bn, bk, wgx, wgy } = tiledTile(g.M);
  const threads = wgx * wgy;
  const rm = bm / wgy; // outputs per invocation along m
  const rn = bn / wgx;
  const loadsA = (bm * bk) / threads;
  const loadsB = (bn * bk) / threads;
  const acc: string[] = [];
  const fma: string[] = [];
  const keep: string[] = [];
  for (let i = 0; i < rm; i++) {
    acc.push(`var c${i} = vec4f(0.0);`);
    keep.push(`res[${i}] = c${i};`);
  }
  for (let q = 0; q < 4; q++) {
    fma.push(`let a${q} = As[((kq * 4u + ${q}u) * ${bm}u) / 4u + l.y];`);
    fma.push(`let b${q} = Bs[((kq * 4u + ${q}u) * ${bn}u) / 4u + l.x];`);
    for (let i = 0; i < rm; i++) fma.push(`c${i} = fma(vec4f(a${q}[${i}]), b${q}, c${i});`);
  }
  // Loop bounds offset by a uniform zero keep NIR from unrolling them: on
  // lavapipe every unrolled load or store site costs ~10–25 ms of compile time.
  return /* wgsl */ `
${g.prelude}
// [k][m] and [k][n] tiles, read back as vec4 so each invocation fetches its 4 rows / 4 columns at once.
var<workgroup> As: array<vec4f, ${(bk * bm) / 4}>;
var<workgroup> Bs: array<vec4f, ${(bk * bn) / 4}>;
@compute @workgroup_size(${wgx}, ${wgy})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) l: vec3u, @builtin(local_invocation_index) li: u32) {
  let z = wid.z;
  let tileN = (wid.x + u.off) * ${bn}u;
  let tileM = wid.y * ${bm}u;
  let kBegin = z * u.chunk;
  let kEnd = min(u.K, kBegin + u.chunk);
  let m0 = tileM + l.y * ${rm}u;
  let n0 = tileN + l.x * ${rn}u;
  ${acc.join('\n  ')}
  for (var k0 = kBegin; k0 < kEnd; k0 += ${bk}u) {
    // Consecutive invocations walk k for A (rows of A are contiguous in k) and n for B.
    for (var e = 0u; e < ${loadsA}u + u.zero; e++) {
      let idx = li + e * ${threads}u;
      let kk = idx % ${bk}u;
      let mm = idx / ${bk}u;
      var v = 0.0;
      if (k0 + kk < kEnd) { v = loadA(tileM + mm, k0 + kk); }
      As[(kk * ${bm}u + mm) / 4u][mm % 4u] = v;
    }
    for (var e = 0u; e < ${loadsB}u + u.zero; e++) {
      let idx = li + e * ${threads}u;
      let nn = idx % ${bn}u;
      let kk = idx / ${bn}u;
      var v = 0.0;
      if (k0 + kk < kEnd) { v = loadB(k0 + kk, tileN + nn); }
      Bs[(kk * ${bn}u + nn) / 4u][nn % 4u] = v;
    }
    workgroupBarrier();
    for (var kq = 0u; kq < ${bk / 4}u + u.zero; kq++) {
      ${fma.join('\n      ')}
    }
    workgroupBarrier();
  }
  var res: array<vec4f, ${rm}>;
  ${keep.join('\n  ')}
  for (var e = 0u; e < ${rm * rn}u + u.zero; e++) {
    storeC(m0 + e / ${rn}u, n0 + e % ${rn}u, z, res[e / ${rn}u][e % ${rn}u]);
  }
}`;
}

/**
 * Dispatches a tiled GEMM, cut along N into several dispatches when one would run too long.
 * `key` names everything the prelude bakes; `uniforms` are the values of `g.uniforms`.
 */
export function runTiledGemm(
  g: TiledGemm,
  key: string,
  inputs: readonly Tensor[],
  outputs: readonly Tensor[],
  uniforms: Readonly<Record<string, number>> = {},
): void {
  const { bm, bn } = tiledTile(g.M);
  const gx = Math.ceil(g.N / bn);
  const gy = Math.ceil(g.M / bm);
  // Budget the work the hardware does, padding included.
  const flopsPerColumn = 2 * g.K * gy * bm * bn;
  const perDispatch = Math.max(1, Math.min(MAX_GROUPS_PER_DIM, Math.floor(dispatchBudget.maxFlops / flopsPerColumn)));
  if (gy > MAX_GROUPS_PER_DIM || g.kSplit > MAX_GROUPS_PER_DIM) {
    throw new ShapeError(`${g.op}: GEMM of ${g.M}×${g.N}×${g.K} is too large for one dispatch grid`);
  }
  const decl = { inputs: g.inputs, outputs: g.outputs, uniforms: { ...GEMM_UNIFORMS, ...g.uniforms } };
  const chunk = tiledKChunk(g);
  for (let off = 0; off < gx; off += perDispatch) {
    runKernel({
      op: g.op,
      key: `tiled|${key}`,
      decl: decl as { inputs: readonly BindingDecl[]; outputs: readonly BindingDecl[]; uniforms: UniformDecl },
      wgsl: () => tiledGemmWgsl(g),
      inputs,
      outputs,
      uniforms: { ...uniforms, off, zero: 0, K: g.K, chunk } as UniformValues<UniformDecl>,
      workgroups: [Math.min(perDispatch, gx - off), gy, g.kSplit],
    });
  }
}

// ---- matmul -----------------------------------------------------------------

export interface MatmulOptions {
  strategy?: ConvStrategy;
}

/** c = a · b for a: [M, K], b: [K, N] → [M, N]. */
export function matmul(a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor {
  const op = 'matmul';
  sameDevice(op, a, b);
  expectRank(op, 'a', a, 2, '[M, K]');
  expectRank(op, 'b', b, 2, '[K, N]');
  const [M, K] = a.shape;
  const [K2, N] = b.shape;
  if (K !== K2) {
    throw new ShapeError(
      `${op}: inner dimensions differ (expected b [${K}, N], got a ${fmtShape(a.shape)}, b ${fmtShape(b.shape)})`,
    );
  }
  const c = Tensor.empty(a.device, [M, N]);
  if (M * N === 0) return c;
  if (K === 0) {
    a.device.clear(c.buffer, c.byteLength);
    return c;
  }
  const strategy = convStrategy(a.device, opts.strategy);
  if (strategy === 'register' && N % 4 === 0 && K % 4 === 0) matmulRegister(a, b, c, M, N, K);
  else matmulTiled(a, b, c, M, N, K);
  return c;
}

/** Rows per workgroup, columns per invocation, invocations per workgroup (measured best on lavapipe: 13–15 GFLOP/s). */
const MM_TM = 32;
const MM_TN = 16;
const MM_WG = 32;

/**
 * Register-blocked matmul: a workgroup owns TM rows of A, an invocation TN
 * columns of B and C, so each invocation keeps TM×TN sums. On lavapipe
 * every loaded element costs ~30 FMAs' worth of time while spilled
 * accumulators are cheap stack traffic, so the tile is large (32×16) and
 * every load is a vec4: per 4 steps of k, TM + TN/4·4 vec4 loads feed
 * 4·TM·TN FMAs. Loads go through small private arrays filled in loops, which
 * keeps llvmpipe's compile time (dominated by the number of load sites) low.
 */
function matmulRegister(a: Tensor, b: Tensor, c: Tensor, M: number, N: number, K: number): void {
  // Small operands get a smaller tile: less waste, and far less to compile.
  const tm = Math.min(MM_TM, Math.ceil(M / 4) * 4);
  const tn = Math.min(MM_TN, N);
  let wg = MM_WG;
  const N4 = N / 4;
  const K4 = K / 4;
  const q = tn / 4;
  const lanes = Math.ceil(N / tn);
  wg = Math.min(wg, Math.ceil(lanes / 8) * 8);
  const gy = Math.ceil(lanes / wg);
  const gx = Math.ceil(M / tm);
  const acc: string[] = [];
  const fma: string[] = [];
  const keep: string[] = [];
  for (let i = 0; i < tm; i++) for (let v = 0; v < q; v++) acc.push(`var c${i}_${v} = vec4f(0.0);`);
  for (let kk = 0; kk < 4; kk++) {
    for (let i = 0; i < tm; i++) {
      for (let v = 0; v < q; v++) fma.push(`c${i}_${v} = fma(vec4f(as_[${i}][${kk}]), bs[${kk * q + v}], c${i}_${v});`);
    }
  }
  for (let i = 0; i < tm; i++) for (let v = 0; v < q; v++) keep.push(`res[${i * q + v}] = c${i}_${v};`);
  const flopsPerGroupColumn = 2 * gx * tm * K * wg * tn;
  const perDispatch = Math.max(1, Math.floor(dispatchBudget.maxFlops / flopsPerGroupColumn));
  for (let off = 0; off < gy; off += perDispatch) {
    runKernel({
      op: 'matmul',
      key: `register|${tm},${tn},${wg}|${M}|${N}|${K}`,
      decl: {
        inputs: [
          { name: 'A', type: 'vec4f' },
          { name: 'B', type: 'vec4f' },
        ],
        outputs: [{ name: 'C', type: 'vec4f' }],
        uniforms: { off: 'u32', zero: 'u32' },
      },
      wgsl: () => /* wgsl */ `
@compute @workgroup_size(${wg})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let m0 = wid.x * ${tm}u;
  let lane = (wid.y + u.off) * ${wg}u + lid;
  let col = min(lane * ${q}u, ${N4 - 1}u);
  ${acc.join('\n  ')}
  var as_: array<vec4f, ${tm}>;
  var bs: array<vec4f, ${4 * q}>;
  for (var k4 = 0u; k4 < ${K4}u; k4++) {
    for (var i = 0u; i < ${tm}u + u.zero; i++) {
      as_[i] = A[min(m0 + i, ${M - 1}u) * ${K4}u + k4];
    }
    for (var e = 0u; e < ${4 * q}u + u.zero; e++) {
      bs[e] = B[(k4 * 4u + e / ${q}u) * ${N4}u + min(col + e % ${q}u, ${N4 - 1}u)];
    }
    ${fma.join('\n    ')}
  }
  var res: array<vec4f, ${tm * q}>;
  ${keep.join('\n  ')}
  for (var e = 0u; e < ${tm * q}u + u.zero; e++) {
    let m = m0 + e / ${q}u;
    let cv = lane * ${q}u + e % ${q}u;
    if (m < ${M}u && cv < ${N4}u) { C[m * ${N4}u + cv] = res[e]; }
  }
}`,
      inputs: [a, b],
      outputs: [c],
      uniforms: { off, zero: 0 },
      workgroups: [gx, Math.min(perDispatch, gy - off), 1],
    });
  }
}

function matmulTiled(a: Tensor, b: Tensor, c: Tensor, M: number, N: number, K: number): void {
  const g: TiledGemm = {
    op: 'matmul',
    M,
    N,
    K,
    kSplit: 1,
    inputs: ['A', 'B'],
    outputs: ['C'],
    prelude: /* wgsl */ `
fn loadA(m: u32, k: u32) -> f32 { return select(0.0, A[min(m, ${M - 1}u) * ${K}u + k], m < ${M}u); }
fn loadB(k: u32, n: u32) -> f32 { return select(0.0, B[k * ${N}u + min(n, ${N - 1}u)], n < ${N}u); }
fn storeC(m: u32, n: u32, z: u32, v: f32) { if (m < ${M}u && n < ${N}u) { C[m * ${N}u + n] = v; } }`,
  };
  runTiledGemm(g, `${M}|${N}|${K}`, [a, b], [c]);
}

/** Float64 reference: c[i][j] = Σ_k a[i][k]·b[k][j]. */
export function matmulRef(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  M: number,
  K: number,
  N: number,
): { data: Float64Array; shape: number[] } {
  const data = new Float64Array(M * N);
  for (let i = 0; i < M; i++) {
    for (let k = 0; k < K; k++) {
      const aik = a[i * K + k];
      for (let j = 0; j < N; j++) data[i * N + j] += aik * b[k * N + j];
    }
  }
  return { data, shape: [M, N] };
}
