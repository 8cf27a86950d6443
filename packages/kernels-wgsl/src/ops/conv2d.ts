import { fmtShape, type Shape, ShapeError, Tensor } from '@cg/tensor-core';
import {
  flatGroupIndex,
  flatWorkgroups,
  type KernelCall,
  MAX_GROUPS_PER_DIM,
  runKernel,
  sameDevice,
  type UniformDecl,
  type UniformValues,
} from '../runtime.js';
import { sizeOf } from '../shape.js';
import {
  type ConvStrategy,
  convStrategy,
  dispatchBudget,
  registerForm,
  registerTile,
  tiledTile,
  useSubgroups,
  weightGradTile,
} from './conv_strategy.js';
import { UNARY_OPS } from './elementwise_records.js';
import { runTiledGemm, type TiledGemm, tiledKChunk } from './matmul.js';
import { pad2dBackward } from './pad2d.js';
import { sum } from './reduce.js';

/**
 * conv2d (NCHW, f32, dilation 1, groups 1) and its two gradients.
 *
 * Every convolution in this family is one of two kernels:
 * - a *gather convolution* (implicit GEMM, M = output channels, N = output
 *   pixels, K = input channels × taps): conv2d itself, and — per output
 *   phase (oy mod stride, ox mod stride) — the transposed convolution, which
 *   is conv2dBackwardInput and convTranspose2d (an adjoint pair: one kernel);
 * - a *weight-gradient reduction* (M = output channels, N = input channels ×
 *   taps, K = batch × output pixels), shared by conv2dBackwardWeight and
 *   convTranspose2dBackwardWeight with the two activations' roles swapped.
 * Each has a `register` and a `workgroup-tiled` implementation (see
 * conv_strategy.ts). Channels, kernel sizes, strides, paddings and tiles are
 * baked into the WGSL (they shape the unrolled FMAs, and LLVM folds divisions
 * by them); batch and image sizes are uniforms, so a new image size compiles
 * no pipeline (docs/ARCHITECTURE.md §3).
 */

/** Stride, padding and tiling shared by conv2d and convTranspose2d. */
export interface ConvBaseOptions {
  stride?: number | [number, number];
  padding?: number | [number, number];
  /** Override the per-adapter tiling choice (tests run both). */
  strategy?: ConvStrategy;
}

/**
 * How conv2d fills the `padding` border: `zeros` (the default), or PyTorch's
 * ReflectionPad2d / ReplicationPad2d folded into the kernel's input index math
 * (no padded copy is made; reflect needs padding < H and < W).
 */
export type ConvPadMode = 'zeros' | 'reflect' | 'replicate';

/** Activation applied after the bias add, in the kernel's output write. */
export type ConvEpilogue = 'none' | 'relu' | 'tanh';

export interface Conv2dOptions extends ConvBaseOptions {
  /**
   * Border mode of `padding` (default `zeros`). With `reflect`/`replicate`, x is
   * the unpadded input of every pass: conv2dBackwardInput returns dx of that
   * input (the mirrored contributions summed) and conv2dBackwardWeight reads it
   * through the same index folding.
   */
  padMode?: ConvPadMode;
  /** conv2d only: activation after the bias add (default `none`); the backward passes ignore it. */
  epilogue?: ConvEpilogue;
}

export interface ConvGeometry {
  sH: number;
  sW: number;
  pH: number;
  pW: number;
}

function pair(v: number | readonly number[] | undefined, dflt: number): [number, number] {
  if (v === undefined) return [dflt, dflt];
  if (typeof v === 'number') return [v, v];
  return [v[0], v[1]];
}

/** @internal Reads and checks stride/padding (shared with conv_transpose2d). */
export function convGeometry(op: string, opts: ConvBaseOptions, ctx: () => string): ConvGeometry {
  const s = opts.stride;
  const p = opts.padding;
  if (Array.isArray(s) && s.length !== 2) {
    throw new ShapeError(`${op}: stride must be a number or [sH, sW] (got ${JSON.stringify(s)}; ${ctx()})`);
  }
  if (Array.isArray(p) && p.length !== 2) {
    throw new ShapeError(`${op}: padding must be a number or [pH, pW] (got ${JSON.stringify(p)}; ${ctx()})`);
  }
  const [sH, sW] = pair(s, 1);
  const [pH, pW] = pair(p, 0);
  if (![sH, sW].every((v) => Number.isInteger(v) && v >= 1)) {
    throw new ShapeError(`${op}: stride must be a positive integer (expected ≥ 1, got ${sH}, ${sW}; ${ctx()})`);
  }
  if (![pH, pW].every((v) => Number.isInteger(v) && v >= 0)) {
    throw new ShapeError(`${op}: padding must be a non-negative integer (expected ≥ 0, got ${pH}, ${pW}; ${ctx()})`);
  }
  return { sH, sW, pH, pW };
}

/** @internal Checks that a shape is a rank-4 array of positive integers. */
export function expect4(op: string, name: string, layout: string, shape: Shape, ctx: () => string): void {
  if (shape.length !== 4 || !shape.every((d) => Number.isInteger(d) && d >= 1)) {
    throw new ShapeError(
      `${op}: ${name} must be ${layout} (expected 4 dimensions, each ≥ 1, got ${fmtShape(shape)}; ${ctx()})`,
    );
  }
}

function shapesCtx(x: Shape, w: Shape, extra = ''): () => string {
  return () => `x ${fmtShape(x)}, w ${fmtShape(w)}${extra}`;
}

function geomText(g: ConvGeometry): string {
  return `stride [${g.sH},${g.sW}], padding [${g.pH},${g.pW}]`;
}

function checkedConv2dShape(op: string, xShape: Shape, wShape: Shape, opts: Conv2dOptions) {
  const ctx = shapesCtx(xShape, wShape);
  expect4(op, 'x', '[N, Cin, H, W]', xShape, ctx);
  expect4(op, 'w', '[Cout, Cin, kH, kW]', wShape, ctx);
  const g = convGeometry(op, opts, ctx);
  const [N, Cin, H, W] = xShape;
  const [Cout, Cw, kH, kW] = wShape;
  if (Cin !== Cw) {
    throw new ShapeError(
      `${op}: input channels differ (expected w.shape[1] = x.shape[1] = ${Cin}, got ${Cw}; ${ctx()})`,
    );
  }
  const Ho = Math.floor((H + 2 * g.pH - kH) / g.sH) + 1;
  const Wo = Math.floor((W + 2 * g.pW - kW) / g.sW) + 1;
  if (H + 2 * g.pH < kH || W + 2 * g.pW < kW || Ho < 1 || Wo < 1) {
    throw new ShapeError(
      `${op}: the kernel does not fit the padded input (expected H + 2·pH ≥ kH and W + 2·pW ≥ kW, got ` +
        `${H}+${2 * g.pH} vs ${kH} and ${W}+${2 * g.pW} vs ${kW}; ${ctx()}, ${geomText(g)})`,
    );
  }
  const padMode = opts.padMode ?? 'zeros';
  if (!PAD_MODES.includes(padMode)) {
    throw new ShapeError(
      `${op}: unknown padMode (expected ${PAD_MODES.join(' | ')}, got ${JSON.stringify(padMode)}; ${ctx()})`,
    );
  }
  // PyTorch's ReflectionPad2d mirrors without repeating the edge, so the pad must be shorter than the side.
  if (padMode === 'reflect' && (g.pH >= H || g.pW >= W)) {
    throw new ShapeError(
      `${op}: reflect padding must be smaller than the input (expected pH < H and pW < W, got padding ` +
        `[${g.pH},${g.pW}] for H ${H}, W ${W}; ${ctx()})`,
    );
  }
  const epilogue = opts.epilogue ?? 'none';
  if (!EPILOGUES.includes(epilogue)) {
    throw new ShapeError(
      `${op}: unknown epilogue (expected ${EPILOGUES.join(' | ')}, got ${JSON.stringify(epilogue)}; ${ctx()})`,
    );
  }
  return { N, Cin, H, W, Cout, kH, kW, Ho, Wo, g, padMode, epilogue };
}

const PAD_MODES: readonly ConvPadMode[] = ['zeros', 'reflect', 'replicate'];
const EPILOGUES: readonly ConvEpilogue[] = ['none', 'relu', 'tanh'];

/** [N, Cout, Ho, Wo] of conv2d(x, w) with Ho = ⌊(H + 2·pH − kH) / sH⌋ + 1. */
export function conv2dOutputShape(xShape: Shape, wShape: Shape, opts: Conv2dOptions = {}): number[] {
  const s = checkedConv2dShape('conv2dOutputShape', xShape, wShape, opts);
  return [s.N, s.Cout, s.Ho, s.Wo];
}

function checkBias(op: string, bias: Tensor | null, channels: number, ctx: () => string): void {
  if (bias && (bias.rank !== 1 || bias.shape[0] !== channels)) {
    throw new ShapeError(`${op}: bias must be [C] (expected [${channels}], got ${fmtShape(bias.shape)}; ${ctx()})`);
  }
}

function checkShapeEq(op: string, name: string, got: Shape, want: Shape, ctx: () => string): void {
  if (got.length !== want.length || got.some((d, i) => d !== want[i])) {
    throw new ShapeError(
      `${op}: ${name} has the wrong shape (expected ${fmtShape(want)}, got ${fmtShape(got)}; ${ctx()})`,
    );
  }
}

// ---- the gather convolution ------------------------------------------------

/**
 * @internal One gather convolution:
 *   y[n, o, qy·outSY + outOY, qx·outSX + outOX] = bias[o] +
 *     Σ_{c, a<A, b<B} w[o·wO + c·wC + wA0 + a·wAs + wB0 + b·wBs] · x[n, c, qy·SY + OY + a, qx·SX + OX + b]
 * over the output sub-grid qy < qH, qx < qW; x is zero outside [0,inH)×[0,inW).
 * conv2d is one of these; a transposed convolution is one per output phase.
 */
export interface GatherSpec {
  N: number;
  C: number;
  O: number;
  inH: number;
  inW: number;
  outH: number;
  outW: number;
  qH: number;
  qW: number;
  outSY: number;
  outOY: number;
  outSX: number;
  outOX: number;
  SY: number;
  OY: number;
  SX: number;
  OX: number;
  A: number;
  B: number;
  wO: number;
  wC: number;
  wA0: number;
  wAs: number;
  wB0: number;
  wBs: number;
  bias: boolean;
  /** How reads outside [0,inH)×[0,inW) are answered: zero, or folded back into the image. */
  padMode: ConvPadMode;
  epilogue: ConvEpilogue;
}

/** The fields of a GatherSpec that change the code (channels, taps, strides, phase, weight layout); the rest are uniforms. */
function bakedKey(s: GatherSpec): string {
  return [
    s.C,
    s.O,
    s.outSY,
    s.outOY,
    s.outSX,
    s.outOX,
    s.SY,
    s.OY,
    s.SX,
    s.OX,
    s.A,
    s.B,
    s.wO,
    s.wC,
    s.wA0,
    s.wAs,
    s.wB0,
    s.wBs,
    s.bias ? 1 : 0,
    s.padMode,
    s.epilogue,
  ].join(',');
}

/**
 * WGSL helpers `fold(i, n)` (an index outside [0, n) mapped back inside as the
 * pad mode fills the border: reflect mirrors without repeating the edge,
 * replicate clamps) and `act(v)` (the epilogue). fold also clamps, so tile
 * lanes past the output's edge, which are computed and then dropped, still read in bounds.
 */
function convHelpersWgsl(mode: ConvPadMode, epilogue: ConvEpilogue): string {
  const fold =
    mode === 'reflect'
      ? 'let r = abs(i); return clamp(select(r, 2 * n - 2 - r, r >= n), 0, n - 1);'
      : 'return clamp(i, 0, n - 1);';
  const act = epilogue === 'relu' ? 'max(v, 0.0)' : epilogue === 'tanh' ? `tanhStable(v)` : 'v';
  return /* wgsl */ `
${mode === 'zeros' ? '' : `fn fold(i: i32, n: i32) -> i32 { ${fold} }`}
${epilogue === 'tanh' ? `fn tanhStable(x: f32) -> f32 { return ${UNARY_OPS.tanh.wgsl}; }` : ''}
fn act(v: f32) -> f32 { return ${act}; }`;
}

/** Uniforms every gather kernel reads: the spatial sizes, which must not cost a pipeline per image size. */
const GATHER_UNIFORMS = {
  qH: 'u32',
  qW: 'u32',
  inH: 'u32',
  inW: 'u32',
  plane: 'u32',
  outW: 'u32',
  outPlane: 'u32',
} as const;

function gatherSizes(s: GatherSpec): UniformValues<typeof GATHER_UNIFORMS> {
  return {
    qH: s.qH,
    qW: s.qW,
    inH: s.inH,
    inW: s.inW,
    plane: s.inH * s.inW,
    outW: s.outW,
    outPlane: s.outH * s.outW,
  };
}

/** @internal Runs a gather convolution into `y` (which must hold the whole output array). */
export function gatherConv(
  op: string,
  spec: GatherSpec,
  x: Tensor,
  w: Tensor,
  bias: Tensor | null,
  y: Tensor,
  strategy: ConvStrategy,
): void {
  if (spec.N * spec.O * spec.qH * spec.qW === 0) return;
  // A phase that no tap reaches (kernel smaller than the stride) only receives the bias: no GEMM to tile.
  if (strategy === 'register' || spec.A * spec.B === 0) gatherRegister(op, spec, x, w, bias, y);
  else gatherTiled(op, spec, x, w, bias, y);
}

function outIndexExpr(s: GatherSpec, n: string, o: string, qy: string, qx: string): string {
  return `(${n} * ${s.O}u + ${o}) * u.outPlane + (${qy} * ${s.outSY}u + ${s.outOY}u) * u.outW + ${qx} * ${s.outSX}u + ${s.outOX}u`;
}

/** Invocations per workgroup of the register kernels, bucketed so small images share a pipeline. */
function lanesPerGroup(items: number): number {
  return items > 16 ? 32 : items > 8 ? 16 : 8;
}

/**
 * Kernels of at most this many taps (A·B: the phases of stride-2 transposed convolutions and of
 * stride-2 input gradients, 1×1 convs) run all their rows in one step of the channel loop, so each
 * sum takes A·B FMAs back to back instead of B. Measured on lavapipe (2026-12, alternating in one
 * process, medians of 12, GFLOP/s): convT 3×3 s2 256→128 forward 11.5–15.2 → 17.0–19.1, the input
 * gradient of 3×3 s2 64→128 10.5 → 16.7, of 4×4 s2 64→128 14.8 → 16.9. For 3×3 and larger
 * kernels it was slower (3×3 256→256 forward 25.0 → 21.9, 7×7 21.1 → 11.7; 30+ row values live).
 */
const ROWS_AT_ONCE_MAX_TAPS = 4;

/**
 * Register-blocked gather convolution. A workgroup owns TM output channels;
 * each invocation owns TN neighbouring output pixels of one row and keeps
 * TM×TN sums. Per input channel and tap row it loads the row segment its
 * pixels touch ((TN−1)·SX + B values, zero-masked at the border or folded
 * back in by the pad mode) and the TM×B weights of that row, then runs
 * TM·TN·B FMAs from registers. Weights are repacked as [O/TM][C][A][Kb]
 * (Kb = TM·B rounded up to 8, element b·TM + i), so one (channel, row)
 * block is contiguous: read as vec4s, or, with `shared` (subgroups), lane l
 * loads elements l, l+8, … and subgroupBroadcast hands each to every lane —
 * all lanes of a workgroup need the same weights, and on lavapipe a lane
 * load costs ~10 FMAs whether or not its address is uniform, while a
 * broadcast is a register shuffle (measured: 2–5× faster passes).
 *
 * Loaded values are named lets, not private arrays: on lavapipe the arrays
 * (scratch memory) made the kernel ~2× slower. Each named load is a load
 * site llvmpipe compiles (~25 ms each), which is what bounds TN
 * (registerTile). The `compact` form (registerForm: SwiftShader, whose
 * compiler stalls on the named one) loads the row segment and the weight
 * block by loops into private arrays instead and shares nothing. Channels,
 * taps, strides, paddings are baked; image sizes are uniforms, divided once
 * per invocation.
 */
function gatherRegister(op: string, s: GatherSpec, x: Tensor, w: Tensor, bias: Tensor | null, y: Tensor): void {
  if (s.A * s.B === 0) {
    biasOnly(op, s, bias, y);
    return;
  }
  const form = registerForm(x.device);
  const compact = form === 'compact';
  const shared = !compact && useSubgroups(x.device);
  const { tm, tn } = registerTile(s.O, s.B, s.qW, form);
  const nbx = Math.ceil(s.qW / tn);
  const P = s.N * s.qH * nbx;
  const J = (tn - 1) * s.SX + s.B;
  const gx = Math.ceil(s.O / tm);
  const wg = lanesPerGroup(P);
  const gy = Math.ceil(P / wg);
  const per = Math.ceil((tm * s.B) / 8);
  const Kb = per * 8;
  const total = gx * s.C * s.A * Kb;
  const wq = Tensor.empty(x.device, [total]);
  runKernel({
    op: `${op}.packWeights`,
    key: `${tm},${Kb}|${[s.O, s.C, s.A, s.B, s.wO, s.wC, s.wA0, s.wAs, s.wB0, s.wBs].join(',')}`,
    decl: { inputs: ['W'], outputs: ['Wq'] },
    wgsl: () => /* wgsl */ `
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let idx = (${flatGroupIndex}) * 64u + lid;
  if (idx >= ${total}u) { return; }
  let e = idx % ${Kb}u;
  let r = idx / ${Kb}u;
  let a = r % ${s.A}u;
  let r2 = r / ${s.A}u;
  let c = r2 % ${s.C}u;
  let ob = r2 / ${s.C}u;
  let b = min(e / ${tm}u, ${s.B - 1}u);
  let o = ob * ${tm}u + e % ${tm}u;
  let ok = e < ${tm * s.B}u && o < ${s.O}u;
  let src = i32(min(o, ${s.O - 1}u) * ${s.wO}u + c * ${s.wC}u) + ${s.wA0 + s.wB0} + i32(a) * ${s.wAs} + i32(b) * ${s.wBs};
  Wq[idx] = select(0.0, W[u32(src)], ok);
}`,
    inputs: [w],
    outputs: [wq],
    workgroups: flatWorkgroups(total, 64),
  });
  const acc: string[] = [];
  const keep: string[] = [];
  for (let i = 0; i < tm; i++) {
    for (let t = 0; t < tn; t++) {
      acc.push(`var c${i}_${t} = 0.0;`);
      keep.push(`res[${i * tn + t}] = c${i}_${t};`);
    }
  }
  const folded = s.padMode !== 'zeros';
  const loads: string[] = [];
  const fma: string[] = [];
  const rowsAtOnce = !compact && s.A * s.B <= ROWS_AT_ONCE_MAX_TAPS;
  const rowLoad = (j: string, r = '') =>
    folded
      ? `X[u32(rb${r} + fold(ix + ${j}, i32(u.inW)))]`
      : `select(0.0, X[u32(rb${r} + ${j})], rowOk${r} && u32(ix + ${j}) < u.inW)`;
  if (compact) {
    // Loops with a uniform zero in the bound, so the compiler keeps them loops: two load sites, not J + Kb/4.
    loads.push(`for (var j = 0; j < ${J} + i32(u.zero); j++) { xs[j] = ${rowLoad('j')}; }`);
    loads.push(`for (var e = 0u; e < ${Kb / 4}u + u.zero; e++) { ws[e] = Wq[wb + e]; }`);
    for (let b = 0; b < s.B; b++) {
      for (let i = 0; i < tm; i++) {
        const e = b * tm + i;
        for (let t = 0; t < tn; t++)
          fma.push(`c${i}_${t} = fma(ws[${e >> 2}][${e & 3}], xs[${t * s.SX + b}], c${i}_${t});`);
      }
    }
  } else {
    // The kernel rows one step of the channel loop takes: all of them (rowsAtOnce; row a's values are suffixed
    // a), or the one the row loop's `a` picks (its rb and rowOk come from the loop; no suffix).
    const rows = rowsAtOnce ? Array.from({ length: s.A }, (_, a) => a) : [null];
    const name = (a: number | null) => (a === null ? '' : String(a));
    for (const a of rows) {
      const r = name(a);
      if (a !== null) {
        loads.push(
          folded
            ? `let rb${a} = xb + fold(iy + ${a}, i32(u.inH)) * i32(u.inW);`
            : `let rowOk${a} = u32(iy + ${a}) < u.inH;\n    let rb${a} = xb + ${a} * i32(u.inW);`,
        );
      }
      const w0 = (a ?? 0) * Kb;
      if (shared) for (let k = 0; k < per; k++) loads.push(`let v${r}_${k} = Wq[wb + ${w0 + k * 8}u];`);
      else for (let k = 0; k < Kb / 4; k++) loads.push(`let v${r}_${k} = Wq[wb + ${w0 / 4 + k}u];`);
      for (let j = 0; j < J; j++) loads.push(`let x${r}_${j} = ${rowLoad(String(j), r)};`);
    }
    // One sum at a time: its taps back to back, with that channel's weights in named values. The sums
    // (TM·TN of them) do not fit in registers, so each visit to one is a spill load and store; B visits in a
    // row cost one. Measured on lavapipe (2026-12, both orders alternating in one process, medians of 12–15,
    // GFLOP/s), against tap-major order: 3×3 256→256 13–17 → 20–21, 3×3 64→64 14.6 → 17.3, 4×4 s2 64→128
    // 10.8–12.3 → 12.6–16.1, convT input gradient 12.7 → 16.4; stride-2 3×3 and 7×7 level. Same sums in the
    // same order per output, so bit-identical results.
    for (let i = 0; i < tm; i++) {
      for (const a of rows)
        for (let b = 0; b < s.B; b++) {
          const e = b * tm + i;
          const v = `v${name(a)}_`;
          fma.push(
            `let w${i}_${name(a)}_${b} = ${shared ? `subgroupBroadcast(${v}${e >> 3}, ${e & 7}u)` : `${v}${e >> 2}[${e & 3}]`};`,
          );
        }
      for (let t = 0; t < tn; t++)
        for (const a of rows)
          for (let b = 0; b < s.B; b++)
            fma.push(`c${i}_${t} = fma(w${i}_${name(a)}_${b}, x${name(a)}_${t * s.SX + b}, c${i}_${t});`);
    }
  }
  const decl = {
    inputs: ['X', { name: 'Wq', type: shared ? 'f32' : 'vec4f' }, ...(s.bias ? ['Bias'] : [])],
    outputs: ['Y'],
    uniforms: { off: 'u32', zero: 'u32', P: 'u32', nbx: 'u32', ...GATHER_UNIFORMS },
    enables: shared ? (['subgroups'] as const) : [],
  } as const;
  const wgsl = () => /* wgsl */ `${convHelpersWgsl(s.padMode, s.epilogue)}
@compute @workgroup_size(${wg})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32${shared ? ', @builtin(subgroup_invocation_id) sid: u32' : ''}) {
  // Every lane runs every loop trip (dead lanes compute a clamped pixel): subgroupBroadcast needs uniform control flow.
  let blk = (wid.y + u.off) * ${wg}u + lid;
  let live = blk < u.P;
  let bi = min(blk, u.P - 1u);
  let qx0 = (bi % u.nbx) * ${tn}u;
  let nq = bi / u.nbx;
  let qy = nq % u.qH;
  let n = nq / u.qH;
  let o0 = wid.x * ${tm}u;
  let iy = i32(qy * ${s.SY}u) + ${s.OY};
  let ix = i32(qx0 * ${s.SX}u) + ${s.OX};
  ${acc.join('\n  ')}
  ${compact ? `var xs: array<f32, ${J}>;\n  var ws: array<vec4f, ${Kb / 4}>;` : ''}
  var xb = i32(n * ${s.C}u * u.plane)${folded ? '' : ' + iy * i32(u.inW) + ix'};
  var wb = ${shared ? `wid.x * ${s.C * s.A * Kb}u + (sid & 7u)` : `wid.x * ${(s.C * s.A * Kb) / 4}u`};
  for (var c = 0u; c < ${s.C}u; c++) {
    ${
      rowsAtOnce
        ? `${loads.join('\n    ')}
    wb += ${shared ? s.A * Kb : (s.A * Kb) / 4}u;
    ${fma.join('\n    ')}`
        : `for (var a = 0u; a < ${s.A}u + u.zero; a++) {
      ${
        folded
          ? `let rb = xb + fold(iy + i32(a), i32(u.inH)) * i32(u.inW);`
          : `let rowOk = u32(iy + i32(a)) < u.inH;
      let rb = xb + i32(a * u.inW);`
      }
      ${loads.join('\n      ')}
      wb += ${shared ? Kb : Kb / 4}u;
      ${fma.join('\n      ')}
    }`
    }
    xb += i32(u.plane);
  }
  var res: array<f32, ${tm * tn}>;
  ${keep.join('\n  ')}
  for (var e = 0u; e < ${tm * tn}u + u.zero; e++) {
    let o = o0 + e / ${tn}u;
    let qx = qx0 + e % ${tn}u;
    if (live && o < ${s.O}u && qx < u.qW) {
      Y[${outIndexExpr(s, 'n', 'o', 'qy', 'qx')}] = act(res[e]${s.bias ? ' + Bias[o]' : ''});
    }
  }
}`;
  const key = `${shared ? 'subgroup' : form}|${tm},${tn},${wg}|${bakedKey(s)}`;
  const flopsPerGroupRow = 2 * gx * tm * wg * tn * s.C * s.A * s.B;
  const perDispatch = Math.max(1, Math.min(MAX_GROUPS_PER_DIM, Math.floor(dispatchBudget.maxFlops / flopsPerGroupRow)));
  const sizes = gatherSizes(s);
  for (let off = 0; off < gy; off += perDispatch) {
    runKernel({
      op,
      key,
      decl,
      wgsl,
      inputs: [x, wq, ...(bias ? [bias] : [])],
      outputs: [y],
      uniforms: { off, zero: 0, P, nbx, ...sizes },
      workgroups: [gx, Math.min(perDispatch, gy - off), 1],
    });
  }
  wq.dispose();
}

/** Output phase that no tap reaches (kernel smaller than the stride): it holds just the bias. */
function biasOnly(op: string, s: GatherSpec, bias: Tensor | null, y: Tensor): void {
  const total = s.N * s.O * s.qH * s.qW;
  runKernel({
    op: `${op}.biasOnly`,
    key: bakedKey(s),
    decl: { inputs: s.bias ? ['Bias'] : [], outputs: ['Y'], uniforms: { total: 'u32', ...GATHER_UNIFORMS } },
    wgsl: () => /* wgsl */ `${convHelpersWgsl('zeros', s.epilogue)}
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let idx = (${flatGroupIndex}) * 64u + lid;
  if (idx >= u.total) { return; }
  let qx = idx % u.qW;
  let qy = (idx / u.qW) % u.qH;
  let o = (idx / (u.qW * u.qH)) % ${s.O}u;
  let n = idx / (u.qW * u.qH * ${s.O}u);
  Y[${outIndexExpr(s, 'n', 'o', 'qy', 'qx')}] = act(${s.bias ? 'Bias[o]' : '0.0'});
}`,
    inputs: bias ? [bias] : [],
    outputs: [y],
    uniforms: { total, ...gatherSizes(s) },
    workgroups: flatWorkgroups(total, 64),
  });
}

/** Workgroup-memory implicit GEMM: A = weights [O, C·A·B], B = im2col of x, gathered while staging. */
function gatherTiled(op: string, s: GatherSpec, x: Tensor, w: Tensor, bias: Tensor | null, y: Tensor): void {
  const AB = s.A * s.B;
  const K = s.C * AB;
  const NP = s.N * s.qH * s.qW;
  const decodeK = `let c = k / ${AB}u; let r = k % ${AB}u; let a = r / ${s.B}u; let b = r % ${s.B}u;`;
  // Sizes are uniforms: two divisions per decode, the remainders by multiply-subtract (a GPU divides by a non-constant in software).
  const decodeP = `let t = p / u.qW; let qx = p - t * u.qW; let n = t / u.qH; let qy = t - n * u.qH;`;
  const g: TiledGemm = {
    op,
    M: s.O,
    N: NP,
    K,
    kSplit: 1,
    inputs: ['X', 'W', ...(s.bias ? ['Bias'] : [])],
    outputs: ['Y'],
    uniforms: { NP: 'u32', ...GATHER_UNIFORMS },
    prelude: /* wgsl */ `${convHelpersWgsl(s.padMode, s.epilogue)}
fn loadA(m: u32, k: u32) -> f32 {
  ${decodeK}
  let idx = i32(min(m, ${s.O - 1}u) * ${s.wO}u + c * ${s.wC}u) + ${s.wA0 + s.wB0} + i32(a) * ${s.wAs} + i32(b) * ${s.wBs};
  return select(0.0, W[u32(idx)], m < ${s.O}u);
}
fn loadB(k: u32, p: u32) -> f32 {
  ${decodeK}
  ${decodeP}
  ${
    s.padMode === 'zeros'
      ? `let iy = i32(qy * ${s.SY}u + a) + ${s.OY};
  let ix = i32(qx * ${s.SX}u + b) + ${s.OX};
  let ok = p < u.NP && u32(iy) < u.inH && u32(ix) < u.inW;`
      : `let iy = fold(i32(qy * ${s.SY}u + a) + ${s.OY}, i32(u.inH));
  let ix = fold(i32(qx * ${s.SX}u + b) + ${s.OX}, i32(u.inW));
  let ok = p < u.NP;`
  }
  let idx = select(0u, (n * ${s.C}u + c) * u.plane + u32(iy) * u.inW + u32(ix), ok);
  return select(0.0, X[idx], ok);
}
fn storeC(m: u32, p: u32, z: u32, v: f32) {
  if (m < ${s.O}u && p < u.NP) {
    ${decodeP}
    Y[${outIndexExpr(s, 'n', 'm', 'qy', 'qx')}] = act(v${s.bias ? ' + Bias[m]' : ''});
  }
}`,
  };
  runTiledGemm(g, bakedKey(s), bias ? [x, w, bias] : [x, w], [y], { NP, ...gatherSizes(s) });
}

// ---- the transposed convolution (conv2dBackwardInput = convTranspose2d) ----

/**
 * @internal out[n, o, i, j] = bias[o] + Σ_{c, kh, kw} inp[n, c, (i + pH − kh)/sH, (j + pW − kw)/sW] · w(c, o, kh, kw)
 * (terms where the division is inexact or out of range vanish), with
 * w(c, o, kh, kw) = w[c·wInStride + o·wOutStride + kh·kW + kw].
 *
 * Split by output phase (i mod sH, j mod sW): within a phase only taps
 * kh ≡ (phase + pH) mod sH contribute, and they read consecutive input
 * pixels, so each phase is a stride-1 gather convolution with a sub-kernel
 * of ⌈kH/sH⌉×⌈kW/sW⌉ taps (flipped), and no multiply is wasted on the zeros
 * a "dilate the input, then convolve" formulation would insert.
 */
export function transposedConv(
  op: string,
  inp: Tensor,
  w: Tensor,
  bias: Tensor | null,
  out: Tensor,
  geo: { kH: number; kW: number; wInStride: number; wOutStride: number } & ConvGeometry,
  strategy: ConvStrategy,
): void {
  const [N, C, inH, inW] = inp.shape;
  const [, O, outH, outW] = out.shape;
  const { kH, kW, sH, sW, pH, pW } = geo;
  for (let phy = 0; phy < sH; phy++) {
    const qH = Math.ceil((outH - phy) / sH);
    if (qH <= 0) continue;
    const kh0 = (phy + pH) % sH;
    const A = kH > kh0 ? Math.ceil((kH - kh0) / sH) : 0;
    const OY = (phy + pH - kh0) / sH - (A - 1);
    for (let phx = 0; phx < sW; phx++) {
      const qW = Math.ceil((outW - phx) / sW);
      if (qW <= 0) continue;
      const kw0 = (phx + pW) % sW;
      const B = kW > kw0 ? Math.ceil((kW - kw0) / sW) : 0;
      const OX = (phx + pW - kw0) / sW - (B - 1);
      const spec: GatherSpec = {
        N,
        C,
        O,
        inH,
        inW,
        outH,
        outW,
        qH,
        qW,
        outSY: sH,
        outOY: phy,
        outSX: sW,
        outOX: phx,
        SY: 1,
        OY: A > 0 ? OY : 0,
        SX: 1,
        OX: B > 0 ? OX : 0,
        A: B > 0 ? A : 0,
        B: A > 0 ? B : 0,
        wO: geo.wOutStride,
        wC: geo.wInStride,
        // Tap a reads input row qy + OY + a, i.e. kernel row kh0 + sH·(A−1−a): the kernel runs flipped.
        wA0: (kh0 + sH * (A - 1)) * kW,
        wAs: -sH * kW,
        wB0: kw0 + sW * (B - 1),
        wBs: -sW,
        bias: bias !== null,
        padMode: 'zeros',
        epilogue: 'none',
      };
      gatherConv(op, spec, inp, w, bias, out, strategy);
    }
  }
}

// ---- the weight-gradient reduction -----------------------------------------

/**
 * @internal dw[o, c, kh, kw] = Σ_{n, oy, ox} g[n, o, oy, ox] · a[n, c, oy·sH − pH + kh, ox·sW − pW + kw]
 * for g: [N, O, Ho, Wo], a: [N, C, H, W]; written into a new [O, C, kH, kW] tensor.
 * conv2dBackwardWeight is (g = dy, a = x); convTranspose2dBackwardWeight is (g = x, a = dy).
 */
export function weightGrad(
  op: string,
  g: Tensor,
  a: Tensor,
  kH: number,
  kW: number,
  geo: ConvGeometry,
  strategy: ConvStrategy,
  padMode: ConvPadMode = 'zeros',
): Tensor {
  const [N, O, Ho, Wo] = g.shape;
  const C = a.shape[1];
  const total = O * C * kH * kW;
  const flops = 2 * total * N * Ho * Wo;
  const rows = N * Ho;
  const wShape = [O, C, kH, kW];
  let groups: number;
  const shared = strategy === 'register' && useSubgroups(g.device);
  if (strategy === 'register') {
    const { tm, khb, ci } = registerWeightGradTile(shared, O, C, kH, kW, Wo);
    const lanes = Math.ceil(C / ci) * Math.ceil(kH / khb);
    groups = Math.ceil(O / tm) * Math.ceil(lanes / Math.min(32, Math.ceil(lanes / 8) * 8));
  } else {
    const { bm, bn } = tiledTile(O);
    groups = Math.ceil(O / bm) * Math.ceil((C * kH * kW) / bn);
  }
  // Split the reduction so both cores (or all GPU cores) get work and no dispatch runs too long.
  const minGroups = strategy === 'register' ? 8 : 128;
  let splits = Math.max(Math.ceil(minGroups / groups), Math.ceil(flops / dispatchBudget.maxFlops));
  splits = Math.max(1, Math.min(splits, rows, 64));
  // Drop slices that would be empty once the reduction is cut into equal chunks.
  if (strategy === 'register') splits = Math.ceil(rows / Math.ceil(rows / splits));
  else splits = Math.ceil((rows * Wo) / tiledKChunk({ K: rows * Wo, kSplit: splits }));
  const partial = Tensor.empty(g.device, splits > 1 ? [splits, ...wShape] : wShape);
  if (shared) weightGradSubgroup(op, g, a, kH, kW, geo, splits, partial, padMode);
  else if (strategy === 'register') weightGradRegister(op, g, a, kH, kW, geo, splits, partial, padMode);
  else weightGradTiled(op, g, a, kH, kW, geo, splits, partial, padMode);
  if (splits === 1) return partial;
  const flat = partial.reshape([splits, total]);
  partial.dispose();
  const summed = sum(flat, [0]);
  flat.dispose();
  const dw = summed.reshape(wShape);
  summed.dispose();
  return dw;
}

/**
 * The register weight gradient's tile: weightGradTile for the plain variant;
 * the subgroup variant takes one input channel and one kernel row per lane
 * and 4 pixels per step: TM·kW sums and a row segment of 3·sW + kW named
 * values (6–10 for 3×3, 4×4 and 7×7). Fewer sums beat more reuse per load:
 * measured on lavapipe (2026-12, old and new kernel interleaved in one
 * process, medians of 12 runs, GFLOP/s), against the old tiles (16,8,3,2 for
 * 3×3, 16,4,4,1–2 for 4×4 and 7×7, rows in a private array): 7×7 3→64
 * 9.6 → 19.6, 3×3 64→64 12.7 → 15.7, 256→256 13.4 → 17.2, 3×3 s2 64→128
 * 11.1 → 17.7, 4×4 s2 3→64 4.1 → 14.1 (12 live lanes of 16 instead of 3 of
 * 8), 64→128 11.0 → 18.3, convT 3×3 s2 256→128 9.9 → 13.0; each pipeline
 * compiles in 0.2–0.45 s (the old ones 1.1–1.9 s). Bigger tiles with named
 * rows (16,8,3,1, 16,4,4,1, 16,4,2,1, 16,4,1,2, 32,4,1,1, 16,8,1,1) were no
 * faster or slower and compiled 1–3 s (the old 16,8,3,2 tile fully unrolled:
 * 8 s); 8,4,1,1 and 8,8,1,1 were slower; more splits (16 or 32 workgroups)
 * did not help.
 */
function registerWeightGradTile(shared: boolean, O: number, C: number, kH: number, kW: number, Wo: number) {
  const tile = weightGradTile(O, C, kH, kW, Wo);
  return shared ? { ...tile, r: 4, khb: 1, ci: 1 } : tile;
}

/**
 * The register weight gradient's accumulators, c{channel}_{slot}_{tap}, and
 * the WGSL that stores them into this split's [O, C, kH, kW] partial; shared
 * by the plain and subgroup variants (`z`, `o0`, `ch0`, `kh0` and `live` are
 * their main's names).
 */
function weightGradAccumulators(tm: number, slots: number, kW: number, khb: number, O: number, C: number, kH: number) {
  const declare: string[] = [];
  const keep: string[] = [];
  for (let i = 0; i < tm; i++) {
    for (let sl = 0; sl < slots; sl++) {
      for (let kw = 0; kw < kW; kw++) {
        declare.push(`var c${i}_${sl}_${kw} = 0.0;`);
        keep.push(`res[${(i * slots + sl) * kW + kw}] = c${i}_${sl}_${kw};`);
      }
    }
  }
  const n = tm * slots * kW;
  const store = /* wgsl */ `var res: array<f32, ${n}>;
  ${keep.join('\n  ')}
  for (var e = 0u; e < ${n}u + u.zero; e++) {
    let o = o0 + e / ${slots * kW}u;
    let sl = (e / ${kW}u) % ${slots}u;
    let cc = ch0 + sl / ${khb}u;
    let kh = kh0 + sl % ${khb}u;
    let kw = e % ${kW}u;
    if (live && o < ${O}u && kh < ${kH}u && cc < ${C}u) {
      Out[z * ${O * C * kH * kW}u + ((o * ${C}u + cc) * ${kH}u + kh) * ${kW}u + kw] = res[e];
    }
  }`;
  return { declare: declare.join('\n  '), store };
}

/**
 * The register weight gradient's grid, shared by its plain and subgroup
 * variants: output-channel blocks along x, (channel block, kernel-row block)
 * lanes along y, output rows split `splits` ways.
 */
function weightGradLayout(
  g: Tensor,
  a: Tensor,
  kH: number,
  kW: number,
  geo: ConvGeometry,
  splits: number,
  shared: boolean,
) {
  const [N, O, Ho, Wo] = g.shape;
  const [, C, H, W] = a.shape;
  const { sH, sW, pH, pW } = geo;
  const { tm, r: R, khb, ci: CI } = registerWeightGradTile(shared, O, C, kH, kW, Wo);
  const nkb = Math.ceil(kH / khb);
  const ncb = Math.ceil(C / CI);
  const lanes = ncb * nkb;
  const wg = Math.min(32, Math.ceil(lanes / 8) * 8);
  const rows = N * Ho;
  const rowsPerSplit = Math.ceil(rows / splits);
  const gx = Math.ceil(O / tm);
  const gy = Math.ceil(lanes / wg);
  // Output elements; J: input columns one slot reads for R output pixels; slots: (channel, kernel row) pairs per lane.
  const total = O * C * kH * kW;
  const J = (R - 1) * sW + kW;
  const slots = CI * khb;
  return {
    N,
    O,
    Ho,
    Wo,
    C,
    H,
    W,
    sH,
    sW,
    pH,
    pW,
    tm,
    R,
    khb,
    CI,
    nkb,
    ncb,
    lanes,
    wg,
    rows,
    rowsPerSplit,
    gx,
    gy,
    total,
    J,
    slots,
  };
}

/**
 * Register-blocked weight gradient. An invocation owns CI input channels ×
 * KHB kernel rows and accumulates TM output channels × CI·KHB rows × kW
 * taps; its workgroup shares the TM output channels and walks the output
 * pixels in lockstep, R at a time: per step it loads TM×R gradient values
 * (vec4 when rows allow) and CI·KHB activation row segments, then runs
 * TM·R·CI·KHB·kW FMAs. Column bounds depend only on the (uniform) pixel
 * position, so interior steps skip the column mask. Loads are small loops
 * into private arrays for the compile-time reason given at gatherRegister.
 * No float atomics: the reduction is split over output rows into partial
 * sums that a second pass adds up.
 */
function weightGradRegister(
  op: string,
  g: Tensor,
  a: Tensor,
  kH: number,
  kW: number,
  geo: ConvGeometry,
  splits: number,
  out: Tensor,
  padMode: ConvPadMode,
): void {
  const {
    O,
    Ho,
    Wo,
    C,
    H,
    W,
    sH,
    sW,
    pH,
    pW,
    tm,
    R,
    khb,
    CI,
    nkb,
    lanes,
    wg,
    rows,
    rowsPerSplit,
    gx,
    gy,
    total,
    J,
    slots,
  } = weightGradLayout(g, a, kH, kW, geo, splits, false);
  const HoWo = Ho * Wo;
  // vec4 gradient loads need rows of whole vec4s: a code variant, not a size.
  const vec = Wo % R === 0 && R % 4 === 0;
  const nChunks = Math.ceil(Wo / R);
  // Chunks whose input columns all lie inside the image need no column mask.
  const interior = (k: number) => k * R * sW - pW >= 0 && (k * R + R - 1) * sW - pW + kW - 1 <= W - 1;
  let kLo = 0;
  while (kLo < nChunks && !interior(kLo)) kLo++;
  let kHi = kLo;
  while (kHi < nChunks && interior(kHi)) kHi++;
  const fma: string[] = [];
  const accs = weightGradAccumulators(tm, slots, kW, khb, O, C, kH);
  // Sub-blocks of 4 channels × kW taps of one row slot stay in registers while R pixels stream through.
  for (let i0 = 0; i0 < tm; i0 += 4) {
    for (let sl = 0; sl < slots; sl++) {
      for (let rr = 0; rr < R; rr++) {
        for (let i = i0; i < Math.min(tm, i0 + 4); i++) {
          const d = vec ? `ds[${i * (R / 4) + (rr >> 2)}][${rr & 3}]` : `ds[${i * R + rr}]`;
          for (let kw = 0; kw < kW; kw++) {
            fma.push(`c${i}_${sl}_${kw} = fma(${d}, xs[${sl * J + rr * sW + kw}], c${i}_${sl}_${kw});`);
          }
        }
      }
    }
  }
  const decl = {
    inputs: [{ name: 'G', type: vec ? 'vec4f' : 'f32' }, 'Xa'],
    outputs: ['Out'],
    uniforms: {
      zoff: 'u32',
      zero: 'u32',
      rows: 'u32',
      rowsPerSplit: 'u32',
      Ho: 'u32',
      Wo: 'u32',
      HoWo: 'u32',
      H: 'u32',
      W: 'u32',
      HW: 'u32',
      nChunks: 'u32',
      kLo: 'u32',
      kHi: 'u32',
    },
  } as const;
  const wgsl = () => /* wgsl */ `${convHelpersWgsl(padMode, 'none')}
@compute @workgroup_size(${wg})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let l = wid.y * ${wg}u + lid;
  let live = l < ${lanes}u;
  let lc = min(l, ${lanes - 1}u);
  let ch0 = (lc / ${nkb}u) * ${CI}u;
  let kh0 = (lc % ${nkb}u) * ${khb}u;
  let o0 = wid.x * ${tm}u;
  let z = wid.z + u.zoff;
  let r0 = z * u.rowsPerSplit;
  let r1 = min(r0 + u.rowsPerSplit, u.rows);
  ${accs.declare}
  var ds: array<${vec ? `vec4f, ${(tm * R) / 4}` : `f32, ${tm * R}`}>;
  var xs: array<f32, ${slots * J}>;
  for (var row = r0; row < r1; row++) {
    let n = row / u.Ho;
    let oy = row % u.Ho;
    let gRow = n * ${O}u * u.HoWo + oy * u.Wo;
    let iy0 = i32(oy * ${sH}u + kh0) - ${pH};
    for (var k = 0u; k < u.nChunks; k++) {
      let ow0 = k * ${R}u;
      for (var e = 0u; e < ${vec ? (tm * R) / 4 : tm * R}u + u.zero; e++) {
        let o = min(o0 + e / ${vec ? R / 4 : R}u, ${O - 1}u);
        ${
          vec
            ? `ds[e] = G[(gRow + o * u.HoWo + ow0) / 4u + e % ${R / 4}u];`
            : `let ow = ow0 + e % ${R}u;
        ds[e] = select(0.0, G[gRow + o * u.HoWo + min(ow, u.Wo - 1u)], ow < u.Wo);`
        }
      }
      let ix0 = i32(ow0 * ${sW}u) - ${pW};
      let inside = k >= u.kLo && k < u.kHi;
      for (var sl = 0u; sl < ${slots}u + u.zero; sl++) {
        let cc = ch0 + sl / ${khb}u;
        let h = kh0 + sl % ${khb}u;
        let iy = iy0 + i32(sl % ${khb}u);
        ${
          padMode === 'zeros'
            ? `let rowOk = u32(iy) < u.H && h < ${kH}u && cc < ${C}u;
        let rb = i32((n * ${C}u + cc) * u.HW) + iy * i32(u.W) + ix0;`
            : `// Reflect/replicate: rows and columns outside the image are folded back in, so only the slot can be void.
        let rowOk = h < ${kH}u && cc < ${C}u;
        let rb = i32((n * ${C}u + cc) * u.HW) + fold(iy, i32(u.H)) * i32(u.W);`
        }
        if (inside) {
          // Interior chunk: only the row can be outside the image (out-of-range reads are clamped by WebGPU and masked).
          for (var j = 0u; j < ${J}u + u.zero; j++) {
            xs[sl * ${J}u + j] = select(0.0, Xa[u32(rb + ${padMode === 'zeros' ? '' : 'ix0 + '}i32(j))], rowOk);
          }
        } else {
          for (var j = 0u; j < ${J}u + u.zero; j++) {
            ${
              padMode === 'zeros'
                ? `let ok = rowOk && u32(ix0 + i32(j)) < u.W;
            xs[sl * ${J}u + j] = select(0.0, Xa[u32(rb + i32(j))], ok);`
                : `xs[sl * ${J}u + j] = select(0.0, Xa[u32(rb + fold(ix0 + i32(j), i32(u.W)))], rowOk);`
            }
          }
        }
      }
      ${fma.join('\n      ')}
    }
  }
  ${accs.store}
}`;
  const key = `register|${tm},${R},${khb},${CI},${wg},${vec ? 'vec4' : 'f32'}|${O},${C},${kH},${kW},${sH},${sW},${pH},${pW},${padMode}`;
  const sizes = { rows, rowsPerSplit, Ho, Wo, HoWo, H, W, HW: H * W, nChunks, kLo, kHi };
  dispatchSplits(
    { op, key, decl, wgsl, inputs: [g, a], outputs: [out] },
    { gx, gy, total, rowsPerSplit, Wo },
    splits,
    (zoff) => ({
      zoff,
      zero: 0,
      ...sizes,
    }),
  );
}

/**
 * weightGradRegister with its gradient loads shared through subgroups: the
 * TM×R gradient values of a step are the same in every lane of the workgroup
 * (its lanes share the output channels and walk the pixels in lockstep), so
 * lane l loads elements l, l+8, … and subgroupBroadcast hands them round. The
 * activation row segments, one per lane and slot, are loaded masked at every
 * chunk into named values (registerWeightGradTile keeps them to 6–10 load
 * sites): there is no interior/border branch, so nothing depends on where
 * the chunk lies.
 */
function weightGradSubgroup(
  op: string,
  g: Tensor,
  a: Tensor,
  kH: number,
  kW: number,
  geo: ConvGeometry,
  splits: number,
  out: Tensor,
  padMode: ConvPadMode,
): void {
  const {
    O,
    Ho,
    Wo,
    C,
    H,
    W,
    sH,
    sW,
    pH,
    pW,
    tm,
    R,
    khb,
    CI,
    nkb,
    lanes,
    wg,
    rows,
    rowsPerSplit,
    gx,
    gy,
    total,
    J,
    slots,
  } = weightGradLayout(g, a, kH, kW, geo, splits, true);
  const per = Math.ceil((tm * R) / 8);
  const folded = padMode !== 'zeros';
  const accs = weightGradAccumulators(tm, slots, kW, khb, O, C, kH);
  const body: string[] = [];
  // Lane l's k-th gradient value: element e = 8k + l of the TM×R block (channel e / R, pixel e % R).
  for (let k = 0; k < per; k++) {
    body.push(`{
        let e = ${8 * k}u + lane;
        let o = min(o0 + e / ${R}u, ${O - 1}u);
        let ow = ow0 + e % ${R}u;
        v${k} = select(0.0, G[gRow + o * u.HoWo + min(ow, u.Wo - 1u)], ow < u.Wo && e < ${tm * R}u);
      }`);
  }
  // Row segments as named values, one load site each: J = 6–10 for the one slot of registerWeightGradTile
  // (the old tiles' 40–80 compiled 2–8 s; loops into a private array ran 1.3–3× slower).
  for (let sl = 0; sl < slots; sl++) {
    const dc = Math.floor(sl / khb);
    const dh = sl % khb;
    body.push(
      `let slotOk${sl} = kh0 + ${dh}u < ${kH}u && ch0 + ${dc}u < ${C}u${folded ? '' : ` && u32(iy0 + ${dh}) < u.H`};`,
    );
    body.push(
      `let rb${sl} = i32((n * ${C}u + min(ch0 + ${dc}u, ${C - 1}u)) * u.HW) + ${folded ? `fold(iy0 + ${dh}, i32(u.H))` : `(iy0 + ${dh})`} * i32(u.W);`,
    );
    for (let j = 0; j < J; j++) {
      body.push(
        folded
          ? `let x${sl}_${j} = select(0.0, Xa[u32(rb${sl} + fold(ix0 + ${j}, i32(u.W)))], slotOk${sl});`
          : `let x${sl}_${j} = select(0.0, Xa[u32(rb${sl} + ix0 + ${j})], slotOk${sl} && u32(ix0 + ${j}) < u.W);`,
      );
    }
  }
  // Sub-blocks of 4 channels × kW taps of one row slot stay in registers while R pixels stream through.
  for (let i0 = 0; i0 < tm; i0 += 4) {
    for (let sl = 0; sl < slots; sl++) {
      for (let rr = 0; rr < R; rr++) {
        for (let i = i0; i < Math.min(tm, i0 + 4); i++) {
          const e = i * R + rr;
          body.push(`d = subgroupBroadcast(v${e >> 3}, ${e & 7}u);`);
          for (let kw = 0; kw < kW; kw++) {
            body.push(`c${i}_${sl}_${kw} = fma(d, x${sl}_${rr * sW + kw}, c${i}_${sl}_${kw});`);
          }
        }
      }
    }
  }
  const vals: string[] = [];
  for (let k = 0; k < per; k++) vals.push(`var v${k} = 0.0;`);
  const decl = {
    inputs: ['G', 'Xa'],
    outputs: ['Out'],
    uniforms: {
      zoff: 'u32',
      zero: 'u32',
      rows: 'u32',
      rowsPerSplit: 'u32',
      Ho: 'u32',
      Wo: 'u32',
      HoWo: 'u32',
      H: 'u32',
      W: 'u32',
      HW: 'u32',
      nChunks: 'u32',
    },
    enables: ['subgroups'],
  } as const;
  const wgsl = () => /* wgsl */ `${convHelpersWgsl(padMode, 'none')}
@compute @workgroup_size(${wg})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32, @builtin(subgroup_invocation_id) sid: u32) {
  // Every lane runs every trip (dead lanes work on a clamped slot): subgroupBroadcast needs uniform control flow.
  let l = wid.y * ${wg}u + lid;
  let live = l < ${lanes}u;
  let lc = min(l, ${lanes - 1}u);
  let lane = sid & 7u;
  let ch0 = (lc / ${nkb}u) * ${CI}u;
  let kh0 = (lc % ${nkb}u) * ${khb}u;
  let o0 = wid.x * ${tm}u;
  let z = wid.z + u.zoff;
  let r0 = z * u.rowsPerSplit;
  let r1 = min(r0 + u.rowsPerSplit, u.rows);
  ${accs.declare}
  ${vals.join('\n  ')}
  var d = 0.0;
  for (var row = r0; row < r1; row++) {
    let n = row / u.Ho;
    let oy = row % u.Ho;
    let gRow = n * ${O}u * u.HoWo + oy * u.Wo;
    let iy0 = i32(oy * ${sH}u + kh0) - ${pH};
    for (var k = 0u; k < u.nChunks; k++) {
      let ow0 = k * ${R}u;
      let ix0 = i32(ow0 * ${sW}u) - ${pW};
      ${body.join('\n      ')}
    }
  }
  ${accs.store}
}`;
  const key = `subgroup|${tm},${R},${khb},${CI},${wg}|${O},${C},${kH},${kW},${sH},${sW},${pH},${pW},${padMode}`;
  const sizes = { rows, rowsPerSplit, Ho, Wo, HoWo: Ho * Wo, H, W, HW: H * W, nChunks: Math.ceil(Wo / R) };
  dispatchSplits(
    { op, key, decl, wgsl, inputs: [g, a], outputs: [out] },
    { gx, gy, total, rowsPerSplit, Wo },
    splits,
    (zoff) => ({
      zoff,
      zero: 0,
      ...sizes,
    }),
  );
}

/**
 * Runs a register weight-gradient kernel (either variant) over its `splits`
 * partial sums, as many splits per dispatch as dispatchBudget allows; `zoff`,
 * a uniform, is the first split of each dispatch.
 */
function dispatchSplits<const U extends UniformDecl>(
  call: Omit<KernelCall<U>, 'uniforms' | 'workgroups'>,
  grid: { gx: number; gy: number; total: number; rowsPerSplit: number; Wo: number },
  splits: number,
  uniforms: (zoff: number) => UniformValues<U>,
): void {
  const flopsPerSplit = 2 * grid.total * grid.rowsPerSplit * grid.Wo;
  const perDispatch = Math.max(1, Math.min(MAX_GROUPS_PER_DIM, Math.floor(dispatchBudget.maxFlops / flopsPerSplit)));
  for (let zoff = 0; zoff < splits; zoff += perDispatch) {
    runKernel<U>({
      ...call,
      uniforms: uniforms(zoff),
      workgroups: [grid.gx, grid.gy, Math.min(perDispatch, splits - zoff)],
    });
  }
}

function weightGradTiled(
  op: string,
  g: Tensor,
  a: Tensor,
  kH: number,
  kW: number,
  geo: ConvGeometry,
  splits: number,
  out: Tensor,
  padMode: ConvPadMode,
): void {
  const [N, O, Ho, Wo] = g.shape;
  const [, C, H, W] = a.shape;
  const { sH, sW, pH, pW } = geo;
  const HoWo = Ho * Wo;
  const K = N * HoWo;
  const NN = C * kH * kW;
  const gemm: TiledGemm = {
    op,
    M: O,
    N: NN,
    K,
    kSplit: splits,
    inputs: ['G', 'Xa'],
    outputs: ['Out'],
    uniforms: { HoWo: 'u32', Wo: 'u32', H: 'u32', W: 'u32', HW: 'u32' },
    prelude: /* wgsl */ `${convHelpersWgsl(padMode, 'none')}
fn loadA(m: u32, k: u32) -> f32 {
  let n = k / u.HoWo;
  return select(0.0, G[(n * ${O}u + min(m, ${O - 1}u)) * u.HoWo + k - n * u.HoWo], m < ${O}u);
}
fn loadB(k: u32, j: u32) -> f32 {
  // Two divisions by uniforms, the remainders by multiply-subtract.
  let n = k / u.HoWo;
  let pix = k - n * u.HoWo;
  let oy = pix / u.Wo;
  let ox = pix - oy * u.Wo;
  let c = j / ${kH * kW}u;
  let kh = (j / ${kW}u) % ${kH}u;
  let kw = j % ${kW}u;
  ${
    padMode === 'zeros'
      ? `let iy = i32(oy * ${sH}u + kh) - ${pH};
  let ix = i32(ox * ${sW}u + kw) - ${pW};
  let ok = j < ${NN}u && u32(iy) < u.H && u32(ix) < u.W;`
      : `let iy = fold(i32(oy * ${sH}u + kh) - ${pH}, i32(u.H));
  let ix = fold(i32(ox * ${sW}u + kw) - ${pW}, i32(u.W));
  let ok = j < ${NN}u;`
  }
  let idx = select(0u, (n * ${C}u + c) * u.HW + u32(iy) * u.W + u32(ix), ok);
  return select(0.0, Xa[idx], ok);
}
fn storeC(m: u32, j: u32, z: u32, v: f32) {
  if (m < ${O}u && j < ${NN}u) { Out[z * ${O * NN}u + m * ${NN}u + j] = v; }
}`,
  };
  runTiledGemm(gemm, `wgrad|${O},${C},${kH},${kW},${sH},${sW},${pH},${pW},${padMode}`, [g, a], [out], {
    HoWo,
    Wo,
    H,
    W,
    HW: H * W,
  });
}

// ---- public ops ----------------------------------------------------------------

/**
 * y = act(conv2d(pad(x), w) + bias) for x: [N, Cin, H, W], w: [Cout, Cin, kH, kW], bias: [Cout] → [N, Cout, Ho, Wo].
 * `padMode` picks how the `padding` border is filled (zeros; reflect = ReflectionPad2d; replicate =
 * ReplicationPad2d), read through the kernel's index math with no padded copy; `epilogue` (none, relu,
 * tanh) runs in the output write. Both are baked into the pipeline; image sizes stay uniforms.
 */
export function conv2d(x: Tensor, w: Tensor, bias: Tensor | null, opts: Conv2dOptions = {}): Tensor {
  const op = 'conv2d';
  const s = checkedConv2dShape(op, x.shape, w.shape, opts);
  checkBias(op, bias, s.Cout, shapesCtx(x.shape, w.shape));
  sameDevice(op, x, w, ...(bias ? [bias] : []));
  const y = Tensor.empty(x.device, [s.N, s.Cout, s.Ho, s.Wo]);
  const spec: GatherSpec = {
    N: s.N,
    C: s.Cin,
    O: s.Cout,
    inH: s.H,
    inW: s.W,
    outH: s.Ho,
    outW: s.Wo,
    qH: s.Ho,
    qW: s.Wo,
    outSY: 1,
    outOY: 0,
    outSX: 1,
    outOX: 0,
    SY: s.g.sH,
    OY: -s.g.pH,
    SX: s.g.sW,
    OX: -s.g.pW,
    A: s.kH,
    B: s.kW,
    wO: s.Cin * s.kH * s.kW,
    wC: s.kH * s.kW,
    wA0: 0,
    wAs: s.kW,
    wB0: 0,
    wBs: 1,
    bias: bias !== null,
    padMode: s.padMode,
    epilogue: s.epilogue,
  };
  gatherConv(op, spec, x, w, bias, y, convStrategy(x.device, opts.strategy));
  return y;
}

/**
 * dx of y = conv2d(x, w) for dy: [N, Cout, Ho, Wo] → xShape. This is the
 * transposed convolution of dy with w (the same kernel as convTranspose2d).
 * With a reflect/replicate `padMode`, xShape is the unpadded input's and the
 * mirrored copies' gradients are summed into it (the transposed convolution
 * on the padded shape, then pad2dBackward); `epilogue` is ignored (pass dy
 * through the activation's backward first).
 */
export function conv2dBackwardInput(dy: Tensor, w: Tensor, xShape: Shape, opts: Conv2dOptions = {}): Tensor {
  const op = 'conv2dBackwardInput';
  const s = checkedConv2dShape(op, xShape, w.shape, opts);
  const ctx = shapesCtx(xShape, w.shape, `, dy ${fmtShape(dy.shape)}`);
  checkShapeEq(op, 'dy', dy.shape, [s.N, s.Cout, s.Ho, s.Wo], ctx);
  sameDevice(op, dy, w);
  const folded = s.padMode !== 'zeros';
  // Folded pads: the gradient of the padded input first, then the pad's own backward sums the mirrored copies.
  const paddedShape = folded ? [s.N, s.Cin, s.H + 2 * s.g.pH, s.W + 2 * s.g.pW] : xShape;
  const dx = Tensor.empty(dy.device, paddedShape);
  transposedConv(
    op,
    dy,
    w,
    null,
    dx,
    {
      kH: s.kH,
      kW: s.kW,
      wInStride: s.Cin * s.kH * s.kW,
      wOutStride: s.kH * s.kW,
      ...s.g,
      ...(folded ? { pH: 0, pW: 0 } : {}),
    },
    convStrategy(dy.device, opts.strategy),
  );
  if (!folded) return dx;
  const dxUnpadded = pad2dBackward(dx, xShape, [s.g.pW, s.g.pW, s.g.pH, s.g.pH], s.padMode as 'reflect' | 'replicate');
  dx.dispose();
  return dxUnpadded;
}

/**
 * dw of y = conv2d(x, w) for dy: [N, Cout, Ho, Wo], x: [N, Cin, H, W] → wShape [Cout, Cin, kH, kW].
 * With a reflect/replicate `padMode`, x is the unpadded input, read through the same index folding as the forward.
 */
export function conv2dBackwardWeight(dy: Tensor, x: Tensor, wShape: Shape, opts: Conv2dOptions = {}): Tensor {
  const op = 'conv2dBackwardWeight';
  const s = checkedConv2dShape(op, x.shape, wShape, opts);
  const ctx = shapesCtx(x.shape, wShape, `, dy ${fmtShape(dy.shape)}`);
  checkShapeEq(op, 'dy', dy.shape, [s.N, s.Cout, s.Ho, s.Wo], ctx);
  sameDevice(op, dy, x);
  return weightGrad(op, dy, x, s.kH, s.kW, s.g, convStrategy(x.device, opts.strategy), s.padMode);
}

/** db of y = conv2d(x, w) + bias: [Cout] = Σ over N, Ho, Wo of dy. */
export function conv2dBackwardBias(dy: Tensor): Tensor {
  if (dy.rank !== 4) {
    throw new ShapeError(`conv2dBackwardBias: dy must be [N, C, H, W] (expected rank 4, got ${fmtShape(dy.shape)})`);
  }
  return sum(dy, [0, 2, 3]);
}

// ---- float64 references (written from the definitions, not from the kernels) ----

/**
 * Where the padded input's row/column i (in input coordinates, i.e. possibly
 * negative or ≥ n) reads from: PyTorch's ReflectionPad2d mirrors about the
 * edge pixel (−1 → 1, n → n − 2), ReplicationPad2d repeats it; −1 for a zero.
 */
function sourceIndexRef(i: number, n: number, mode: ConvPadMode): number {
  if (i >= 0 && i < n) return i;
  if (mode === 'replicate') return i < 0 ? 0 : n - 1;
  if (mode === 'reflect') return i < 0 ? -i : 2 * (n - 1) - i;
  return -1;
}

const EPILOGUE_REF: Record<ConvEpilogue, (v: number) => number> = {
  none: (v) => v,
  relu: (v) => Math.max(v, 0),
  tanh: (v) => Math.tanh(v),
};

/**
 * y[n,o,i,j] = act(b[o] + Σ_{c,kh,kw} xp[n,c,i·sH−pH+kh, j·sW−pW+kw] · w[o,c,kh,kw]),
 * xp being x padded by `padMode` (zeros by default).
 */
export function conv2dRef(
  x: ArrayLike<number>,
  xShape: Shape,
  w: ArrayLike<number>,
  wShape: Shape,
  bias: ArrayLike<number> | null,
  opts: Conv2dOptions = {},
): { data: Float64Array; shape: number[] } {
  const shape = conv2dOutputShape(xShape, wShape, opts);
  const { sH, sW, pH, pW } = convGeometry('conv2dRef', opts, () => '');
  const mode = opts.padMode ?? 'zeros';
  const act = EPILOGUE_REF[opts.epilogue ?? 'none'];
  const [N, C, H, W] = xShape;
  const [, O, Ho, Wo] = shape;
  const [, , kH, kW] = wShape;
  const data = new Float64Array(sizeOf(shape));
  for (let n = 0; n < N; n++) {
    for (let o = 0; o < O; o++) {
      for (let i = 0; i < Ho; i++) {
        for (let j = 0; j < Wo; j++) {
          let acc = bias ? bias[o] : 0;
          for (let c = 0; c < C; c++) {
            for (let kh = 0; kh < kH; kh++) {
              const ih = sourceIndexRef(i * sH - pH + kh, H, mode);
              if (ih < 0) continue;
              for (let kw = 0; kw < kW; kw++) {
                const iw = sourceIndexRef(j * sW - pW + kw, W, mode);
                if (iw < 0) continue;
                acc += x[((n * C + c) * H + ih) * W + iw] * w[((o * C + c) * kH + kh) * kW + kw];
              }
            }
          }
          data[((n * O + o) * Ho + i) * Wo + j] = act(acc);
        }
      }
    }
  }
  return { data, shape };
}

/**
 * Gradients of L = Σ dy·conv2d(x, w, b) (no epilogue): each forward product x·w scatters
 * dy into dx (times w) and into dw (times x); db sums dy. With a reflect or
 * replicate padMode the product's x is the unpadded pixel it was read from, so dx sums the mirrored copies.
 */
export function conv2dBackwardRef(
  dy: ArrayLike<number>,
  x: ArrayLike<number>,
  xShape: Shape,
  w: ArrayLike<number>,
  wShape: Shape,
  opts: Conv2dOptions = {},
): { dx: Float64Array; dw: Float64Array; db: Float64Array } {
  const [, O, Ho, Wo] = conv2dOutputShape(xShape, wShape, opts);
  const { sH, sW, pH, pW } = convGeometry('conv2dBackwardRef', opts, () => '');
  const mode = opts.padMode ?? 'zeros';
  const [N, C, H, W] = xShape;
  const [, , kH, kW] = wShape;
  const dx = new Float64Array(sizeOf(xShape));
  const dw = new Float64Array(sizeOf(wShape));
  const db = new Float64Array(O);
  for (let n = 0; n < N; n++) {
    for (let o = 0; o < O; o++) {
      for (let i = 0; i < Ho; i++) {
        for (let j = 0; j < Wo; j++) {
          const g = dy[((n * O + o) * Ho + i) * Wo + j];
          db[o] += g;
          for (let c = 0; c < C; c++) {
            for (let kh = 0; kh < kH; kh++) {
              const ih = sourceIndexRef(i * sH - pH + kh, H, mode);
              if (ih < 0) continue;
              for (let kw = 0; kw < kW; kw++) {
                const iw = sourceIndexRef(j * sW - pW + kw, W, mode);
                if (iw < 0) continue;
                const xi = ((n * C + c) * H + ih) * W + iw;
                const wi = ((o * C + c) * kH + kh) * kW + kw;
                dx[xi] += g * w[wi];
                dw[wi] += g * x[xi];
              }
            }
          }
        }
      }
    }
  }
  return { dx, dw, db };
}
