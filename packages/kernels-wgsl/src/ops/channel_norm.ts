import { type Device, fmtShape, ShapeError, Tensor } from '@cg/tensor-core';
import {
  type BindingDecl,
  type KernelDecl,
  MAX_GROUPS_PER_DIM,
  runKernel,
  sameDevice,
  type UniformValues,
} from '../runtime.js';
import { workgroupReduce } from '../wgsl_reduce.js';

/**
 * The normalisation machinery of instance norm (instance_norm2d.ts) and batch
 * norm (batch_norm2d.ts): statistics, the fused normalise, the backward, the
 * shape checks and the float64 references. The two ops differ only in their
 * layout of groups.
 *
 * Both normalise "groups" of elements: instance norm one (n, c) plane per
 * group, batch norm one channel (N planes) per group. A group is `outer` rows
 * of `inner` contiguous elements starting at g·inner, rows `outerStride`
 * apart; its channel (for weight/bias) is g % C.
 *
 * Forward, per group, one workgroup (or `chunks` workgroups per group when
 * there are too few groups to keep the device busy):
 *  - every thread runs Welford's update over a strided run of the group,
 *    on values shifted by the group's first element (so |mean| ≫ std loses
 *    nothing: the shifted values are small and subtract exactly);
 *  - the workgroup merges the threads' (count, mean, M2) triples with
 *    Chan's formula, which never subtracts two large sums (a log-depth tree
 *    on a GPU, a serial fold of the WG partials on a CPU adapter: see
 *    Combine);
 *  - the same workgroup then writes y = ((x - shift) - mean') · invStd·w + b
 *    in the same dispatch (the plane is still in cache on a CPU adapter).
 * With chunks > 1 the first dispatch writes per-chunk triples and the second
 * merges them and normalises its chunk.
 *
 * Backward uses the closed form
 *   dx = invStd·w·(dy - mean(dy) - x̂·mean(dy·x̂)),  x̂ = (x - mean)·invStd
 * with the group sums combined the same way (plus Σ(x - mean), which
 * corrects the rounding of the saved f32 mean); the per-group sums also
 * give dweight = Σ dy·x̂ and dbias = Σ dy.
 */

/** @internal Shape of the reduction groups; see the file comment. */
export interface NormLayout {
  groups: number;
  outer: number;
  outerStride: number;
  inner: number;
  channels: number;
}

/** Overrides of the automatic strategy, for tests and benchmarks. */
export interface NormTuning {
  /** Workgroups per group (1 = fused single dispatch). Default: by adapter and shape. */
  chunks?: number;
  /** Threads per workgroup, a power of two in [32, 256]. Default: 64 on a CPU adapter, 256 on a GPU. */
  workgroupSize?: number;
  /** How a workgroup combines its threads' partials. Default: serial on a CPU adapter, tree on a GPU. */
  combine?: Combine;
}

/**
 * tree: log2(WG) barrier-separated halving steps, the usual GPU reduction.
 * serial: one barrier, then thread 0 folds the WG partials and a second
 * barrier publishes the result. On lavapipe every barrier switches through
 * all SIMD slices of the workgroup and a barrier inside a loop makes LLVM
 * build a coroutine per level: in a micro-benchmark the tree pipeline took
 * ~3× longer to compile (2.5 s vs 0.8 s, machine under load) and ran no
 * faster. The long part of the
 * reduction, over the plane, is parallel in both (threads stride it).
 */
export type Combine = 'tree' | 'serial';

/** @internal Running statistics updated (training) or used (eval) by batch norm. */
export interface NormRunning {
  mean: Tensor;
  var: Tensor;
  momentum: number;
  /** true: normalise with batch stats and update mean/var in place; false: normalise with them. */
  update: boolean;
}

/** Workgroups we want in flight: a CPU rasterizer runs one per core, a GPU wants many. */
const SOFTWARE_GROUPS = 2;
const HARDWARE_GROUPS = 512;
const MAX_CHUNKS = 256;

interface Plan {
  vec: 1 | 4;
  wg: number;
  combine: Combine;
  chunks: number;
  innerV: number;
  chunkLenV: number;
  strideV: number;
}

function plan(device: Device, layout: NormLayout, tuning: NormTuning | undefined): Plan {
  const soft = device.adapter.isSoftware;
  // vec4 loads when every row starts on a 16-byte boundary.
  const vec = layout.inner % 4 === 0 ? 4 : 1;
  const wg = tuning?.workgroupSize ?? (soft ? 64 : 256);
  if (!Number.isInteger(Math.log2(wg)) || wg < 32 || wg > 256) {
    throw new RangeError(`norm: workgroupSize must be a power of two in [32, 256], got ${wg}`);
  }
  const innerV = layout.inner / vec;
  const maxChunks = Math.max(1, Math.min(MAX_CHUNKS, Math.floor(innerV / wg)));
  const want = tuning?.chunks ?? Math.ceil((soft ? SOFTWARE_GROUPS : HARDWARE_GROUPS) / layout.groups);
  const chunks = Math.max(1, Math.min(want, maxChunks));
  return {
    vec,
    wg,
    combine: tuning?.combine ?? (soft ? 'serial' : 'tree'),
    chunks,
    innerV,
    chunkLenV: Math.ceil(innerV / chunks),
    strideV: layout.outerStride / vec,
  };
}

/** Workgroup grid: x = chunk, (y, z) = group, folded past the 65535 limit. */
function grid(chunks: number, groups: number): [number, number, number] {
  const z = Math.ceil(groups / MAX_GROUPS_PER_DIM);
  return [chunks, Math.ceil(groups / z), z];
}

/** Every norm kernel's uniforms (one struct for all, so a plan's values serve each of its dispatches). */
const NORM_UNIFORMS = {
  groups: 'u32',
  C: 'u32',
  outer: 'u32',
  strideV: 'u32',
  innerV: 'u32',
  chunkLenV: 'u32',
  chunks: 'u32',
  flags: 'u32',
  count: 'f32',
  eps: 'f32',
  momentum: 'f32',
  unbias: 'f32',
  /** leakyRelu's negative slope in a fused epilogue and in its masked backward. */
  slope: 'f32',
} as const;

type NormUniforms = UniformValues<typeof NORM_UNIFORMS>;

/** Inputs and outputs of one norm kernel, in binding order (plane arrays are vec4f under a vec4 plan). */
interface NormBindings {
  inputs: BindingDecl[];
  outputs: BindingDecl[];
}

function normDecl(b: NormBindings): KernelDecl<typeof NORM_UNIFORMS> {
  return { inputs: b.inputs, outputs: b.outputs, uniforms: NORM_UNIFORMS };
}

const HAS_W = 1;
const HAS_B = 2;

function params(layout: NormLayout, p: Plan, flags: number, eps = 0, momentum = 0, slope = 0): NormUniforms {
  const count = layout.outer * layout.inner;
  return {
    groups: layout.groups,
    C: layout.channels,
    outer: layout.outer,
    strideV: p.strideV,
    innerV: p.innerV,
    chunkLenV: p.chunkLenV,
    chunks: p.chunks,
    flags,
    count,
    eps,
    momentum,
    unbias: count > 1 ? count / (count - 1) : 1,
    slope,
  };
}

/**
 * Absent weight/bias are bound to x's buffer (read-only aliasing is legal)
 * and masked by a flag, so affine and plain norms share one pipeline: each
 * pipeline costs ~0.5–1 s of LLVM time on lavapipe.
 */
function commonWgsl(vec: 1 | 4, affine: '' | 'w' | 'wb'): string {
  const T = vec === 4 ? 'vec4f' : 'f32';
  return /* wgsl */ `
alias T = ${T};
fn hsum(v: T) -> f32 { ${vec === 4 ? 'return v.x + v.y + v.z + v.w;' : 'return v;'} }
fn first(v: T) -> f32 { ${vec === 4 ? 'return v.x;' : 'return v;'} }${
    affine.includes('w')
      ? `
fn weightOf(ch: u32) -> f32 { return select(1.0, ws[ch], (u.flags & ${HAS_W}u) != 0u); }`
      : ''
  }${
    affine.includes('b')
      ? `
fn biasOf(ch: u32) -> f32 { return select(0.0, bs[ch], (u.flags & ${HAS_B}u) != 0u); }`
      : ''
  }`;
}

/** WGSL `combine(lid, v)`: every thread gets the merge of all the workgroup's v. */
function combineWgsl(type: string, merge: (a: string, b: string) => string, wg: number, how: Combine): string {
  return workgroupReduce({ name: 'combine', type, merge, wg, how });
}

const STAT_WGSL = (vec: 1 | 4, wg: number, how: Combine) => /* wgsl */ `
${combineWgsl('Stat', (a, b) => `merge(${a}, ${b})`, wg, how)}
// Welford over this thread's strided share of rows [lo, hi) of the group, on x - sh.
fn accumulate(base: u32, lo: u32, hi: u32, lid: u32, sh: f32) -> Stat {
  var cnt = 0.0;
  var mu = T(0.0);
  var m2 = T(0.0);
  for (var o = 0u; o < u.outer; o++) {
    let row = base + o * u.strideV;
    for (var i = lo + lid; i < hi; i += ${wg}u) {
      let v = xs[row + i] - sh;
      cnt += 1.0;
      let d = v - mu;
      mu += d / cnt;
      m2 += d * (v - mu);
    }
  }
  ${
    vec === 4
      ? `// The four lanes saw equal counts: merge them with the same formula.
  let m = 0.25 * hsum(mu);
  let dm = mu - m;
  return Stat(4.0 * cnt, m, hsum(m2) + cnt * dot(dm, dm));`
      : 'return Stat(cnt, mu, m2);'
  }
}`;

const MERGE_WGSL = /* wgsl */ `
struct Stat { n: f32, mu: f32, m2: f32 }
// Chan et al.: merging two (count, mean, M2) triples never subtracts large sums.
fn merge(a: Stat, b: Stat) -> Stat {
  let n = a.n + b.n;
  if (n == 0.0) { return a; }
  let d = b.mu - a.mu;
  let fb = b.n / n;
  return Stat(n, a.mu + d * fb, a.m2 + b.m2 + d * d * (a.n * fb));
}`;

/**
 * The entry point's head: workgroup (x = chunk kc, (y, z) = group g; see grid()), and the chunk's share
 * [lo, hi) of each row of the group, which starts at `base`.
 */
const groupMain = (wg: number) => /* wgsl */ `@compute @workgroup_size(${wg})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let g = wid.y + wid.z * nwg.y;
  let kc = wid.x;
  if (g >= u.groups) { return; }
  let base = g * u.innerV;
  let lo = kc * u.chunkLenV;
  let hi = min(lo + u.chunkLenV, u.innerV);`;

/** A stats pass stores its chunk's three partial sums (merged by the apply pass that follows). */
const writePartial = (a: string, b: string, c: string) => `if (lid == 0u) {
    let q = (g * u.chunks + kc) * 3u;
    parts[q] = ${a};
    parts[q + 1u] = ${b};
    parts[q + 2u] = ${c};
  }`;

interface FwdKernel {
  vec: 1 | 4;
  wg: number;
  combine: Combine;
  /** stats: write per-chunk triples; apply: normalise. */
  stage: 'stats' | 'apply';
  /** Where apply gets its statistics: this workgroup's reduction, per-chunk partials, or running stats. */
  src: 'reduce' | 'partials' | 'given';
  update: boolean;
  /** What the apply pass does with the normalised value z before writing it (stats passes: 'none'). */
  epilogue: NormEpilogue['kind'];
}

/**
 * An epilogue fused into the normalise pass, for the chains the networks
 * always build: z = norm(x), then y = relu(z), leakyRelu(z) (slope ≥ 0), or
 * skip + z (the ResnetBlock's residual add). The expressions are those of
 * the unfused ops (elementwise_records.ts, binary add), so fusing changes no
 * value.
 */
export type NormEpilogue =
  | { kind: 'none' }
  | { kind: 'relu' }
  | { kind: 'leakyRelu'; slope: number }
  | { kind: 'add'; skip: Tensor };

function epilogueWgsl(kind: NormEpilogue['kind'], z: string, i: string): string {
  switch (kind) {
    case 'none':
      return z;
    case 'relu':
      return `max(${z}, T(0.0))`;
    case 'leakyRelu':
      return `select(u.slope * ${z}, ${z}, ${z} > T(0.0))`;
    case 'add':
      return `skip[${i}] + ${z}`;
  }
}

const planeArray = (name: string, vec: 1 | 4): BindingDecl => ({ name, type: vec === 4 ? 'vec4f' : 'f32' });

function forwardBindings(k: FwdKernel): NormBindings {
  const xs = planeArray('xs', k.vec);
  if (k.stage === 'stats') return { inputs: [xs], outputs: ['parts'] };
  return {
    inputs: [
      xs,
      'ws',
      'bs',
      ...(k.src === 'partials' ? ['parts'] : []),
      ...(k.src === 'given' ? ['rmIn', 'rvIn'] : []),
      ...(k.epilogue === 'add' ? [planeArray('skip', k.vec)] : []),
    ],
    // rm and rv are read and updated in place (read_write, like every output).
    outputs: [planeArray('ys', k.vec), 'meanOut', 'invOut', ...(k.update ? ['rm', 'rv'] : [])],
  };
}

function forwardWgsl(k: FwdKernel): string {
  const reduce = `let sh = first(xs[base]);
  let st = combine(lid, accumulate(base, lo, hi, lid, sh));`;
  let stats: string;
  if (k.src === 'given') {
    stats = `let sh = rmIn[ch];
  let st = Stat(u.count, 0.0, rvIn[ch] * u.count);`;
  } else if (k.src === 'partials') {
    stats = `let sh = first(xs[base]);
  var st = Stat(0.0, 0.0, 0.0);
  for (var j = 0u; j < u.chunks; j++) {
    let q = (g * u.chunks + j) * 3u;
    st = merge(st, Stat(parts[q], parts[q + 1u], parts[q + 2u]));
  }`;
  } else {
    stats = reduce;
  }
  const body =
    k.stage === 'stats'
      ? `${reduce}
  ${writePartial('st.n', 'st.mu', 'st.m2')}`
      : `let ch = g % u.C;
  ${stats}
  let variance = max(st.m2 / st.n, 0.0);
  let inv = 1.0 / sqrt(variance + u.eps);
  let scale = inv * weightOf(ch);
  let beta = biasOf(ch);
  // (x - sh) - mean' keeps the digits a big common offset would cancel.
  for (var o = 0u; o < u.outer; o++) {
    let row = base + o * u.strideV;
    for (var i = lo + lid; i < hi; i += ${k.wg}u) {
      let z = ((xs[row + i] - sh) - st.mu) * scale + beta;
      ys[row + i] = ${epilogueWgsl(k.epilogue, 'z', 'row + i')};
    }
  }
  if (kc == 0u && lid == 0u) {
    meanOut[g] = sh + st.mu;
    invOut[g] = inv;${
      k.update
        ? `
    rm[ch] = (1.0 - u.momentum) * rm[ch] + u.momentum * (sh + st.mu);
    rv[ch] = (1.0 - u.momentum) * rv[ch] + u.momentum * variance * u.unbias;`
        : ''
    }
  }`;
  const needsReduce = k.stage === 'stats' || k.src === 'reduce';
  return /* wgsl */ `${commonWgsl(k.vec, k.stage === 'apply' ? 'wb' : '')}
${MERGE_WGSL}
${needsReduce ? STAT_WGSL(k.vec, k.wg, k.combine) : ''}
${groupMain(k.wg)}
  ${body}
}`;
}

/** One norm dispatch, labelled `${op}Stats` for a stats pass; every field of the kernel spec is in the key. */
function dispatch(
  op: string,
  k: FwdKernel | BwdKernel,
  bindings: NormBindings,
  wgsl: () => string,
  inputs: Tensor[],
  outputs: Tensor[],
  uniforms: NormUniforms,
  workgroups: [number, number, number],
): void {
  const key = Object.entries(k)
    .map(([name, v]) => `${name}=${v}`)
    .join(',');
  const decl = normDecl(bindings);
  runKernel({ op: k.stage === 'stats' ? `${op}Stats` : op, key, decl, wgsl, inputs, outputs, uniforms, workgroups });
}

/** @internal Normalises x by group; shared by instance and batch norm. */
export function normForward(
  op: string,
  layout: NormLayout,
  x: Tensor,
  weight: Tensor | null,
  bias: Tensor | null,
  eps: number,
  running: NormRunning | null,
  tuning?: NormTuning,
  epilogue: NormEpilogue = { kind: 'none' },
  /** Label of a split forward's stats pass: the fused ops share the plain norm's (same code). */
  statsOp = op,
): { y: Tensor; mean: Tensor; invStd: Tensor } {
  const p = plan(x.device, layout, tuning);
  const y = Tensor.empty(x.device, x.shape);
  const mean = Tensor.empty(x.device, [layout.groups]);
  const invStd = Tensor.empty(x.device, [layout.groups]);
  const affine = [weight ?? x, bias ?? x];
  const skip = epilogue.kind === 'add' ? [epilogue.skip] : [];
  const flags = (weight ? HAS_W : 0) | (bias ? HAS_B : 0);
  const common = { vec: p.vec, wg: p.wg, combine: p.combine };
  const update = running?.update ?? false;
  const out = [y, mean, invStd, ...(update && running ? [running.mean, running.var] : [])];
  const slope = epilogue.kind === 'leakyRelu' ? epilogue.slope : 0;
  const u = params(layout, p, flags, eps, running?.momentum ?? 0, slope);
  const call = (k: FwdKernel, inputs: Tensor[], outputs: Tensor[], chunks: number) =>
    dispatch(
      k.stage === 'stats' ? statsOp : op,
      k,
      forwardBindings(k),
      () => forwardWgsl(k),
      inputs,
      outputs,
      u,
      grid(chunks, layout.groups),
    );
  const apply = { ...common, stage: 'apply', epilogue: epilogue.kind } as const;

  if (running && !running.update) {
    call({ ...apply, src: 'given', update: false }, [x, ...affine, running.mean, running.var, ...skip], out, p.chunks);
  } else if (p.chunks === 1) {
    call({ ...apply, src: 'reduce', update }, [x, ...affine, ...skip], out, 1);
  } else {
    const parts = Tensor.empty(x.device, [layout.groups * p.chunks * 3]);
    call({ ...common, stage: 'stats', src: 'reduce', update: false, epilogue: 'none' }, [x], [parts], p.chunks);
    call({ ...apply, src: 'partials', update }, [x, ...affine, parts, ...skip], out, p.chunks);
    parts.dispose();
  }
  return { y, mean, invStd };
}

interface BwdKernel {
  vec: 1 | 4;
  wg: number;
  combine: Combine;
  stage: 'stats' | 'apply';
  src: 'reduce' | 'partials';
  /**
   * The gradient reaching the norm is dy masked by a fused activation's
   * derivative, read from its saved output y (`ys`): dy·select(slope, 1, y > 0),
   * the unfused relu/leakyRelu backward's expression. With slope ≥ 0,
   * y > 0 exactly where the norm's output z > 0, so the mask is the one the
   * unfused backward computes from z.
   */
  masked: boolean;
}

function backwardBindings(k: BwdKernel): NormBindings {
  const head = [
    planeArray('dys', k.vec),
    planeArray('xs', k.vec),
    'means',
    'invs',
    ...(k.masked ? [planeArray('ys', k.vec)] : []),
  ];
  if (k.stage === 'stats') return { inputs: head, outputs: ['parts'] };
  return {
    inputs: [...head, 'ws', ...(k.src === 'partials' ? ['parts'] : [])],
    outputs: [planeArray('dxs', k.vec), 'sums'],
  };
}

function backwardWgsl(k: BwdKernel): string {
  const reduce = `let s = combine(lid, accumulate(base, lo, hi, lid, m));`;
  const body =
    k.stage === 'stats'
      ? `${reduce}
  ${writePartial('s.x', 's.y', 's.z')}`
      : `${
          k.src === 'reduce'
            ? reduce
            : `var s = vec3f(0.0);
  for (var j = 0u; j < u.chunks; j++) {
    let q = (g * u.chunks + j) * 3u;
    s += vec3f(parts[q], parts[q + 1u], parts[q + 2u]);
  }`
        }
  // r = mean(x) - m: the saved f32 mean is off by up to half an ulp, which
  // is a systematic error in every x̂ when |mean| ≫ std; x - m is exact
  // there, so the residual puts the lost digits back.
  let r = s.z / u.count;
  let sumDy = s.x;
  let sumDyXh = inv * (s.y - r * s.x);
  let ch = g % u.C;
  let ga = inv * weightOf(ch);
  let ca = sumDy / u.count;
  let cb = sumDyXh / u.count;
  for (var o = 0u; o < u.outer; o++) {
    let row = base + o * u.strideV;
    for (var i = lo + lid; i < hi; i += ${k.wg}u) {
      let xh = ((xs[row + i] - m) - r) * inv;
      dxs[row + i] = ga * ((dyAt(row + i) - ca) - xh * cb);
    }
  }
  if (kc == 0u && lid == 0u) {
    sums[2u * g] = sumDy;
    sums[2u * g + 1u] = sumDyXh;
  }`;
  const needsReduce = k.stage === 'stats' || k.src === 'reduce';
  const dyAt = k.masked ? 'dys[i] * select(T(u.slope), T(1.0), ys[i] > T(0.0))' : 'dys[i]';
  return /* wgsl */ `${commonWgsl(k.vec, k.stage === 'apply' ? 'w' : '')}
fn dyAt(i: u32) -> T { return ${dyAt}; }
${
  needsReduce
    ? `${combineWgsl('vec3f', (a, c) => `${a} + ${c}`, k.wg, k.combine)}
// (Σ dy, Σ dy·(x - m), Σ (x - m)) over this thread's share of the group.
fn accumulate(base: u32, lo: u32, hi: u32, lid: u32, m: f32) -> vec3f {
  var a = T(0.0);
  var b = T(0.0);
  var c = T(0.0);
  for (var o = 0u; o < u.outer; o++) {
    let row = base + o * u.strideV;
    for (var i = lo + lid; i < hi; i += ${k.wg}u) {
      let d = dyAt(row + i);
      let xc = xs[row + i] - m;
      a += d;
      b += d * xc;
      c += xc;
    }
  }
  return vec3f(hsum(a), hsum(b), hsum(c));
}`
    : ''
}
${groupMain(k.wg)}
  let m = means[g];
  let inv = invs[g];
  ${body}
}`;
}

/** @internal Closed-form backward shared by instance and batch norm (batch statistics). */
export function normBackward(
  op: string,
  layout: NormLayout,
  dy: Tensor,
  x: Tensor,
  mean: Tensor,
  invStd: Tensor,
  weight: Tensor | null,
  tuning?: NormTuning,
  /** A fused activation's saved output and slope (relu: 0): the rule's dy is masked by its derivative. */
  mask: { y: Tensor; slope: number } | null = null,
): { dx: Tensor; dweight: Tensor | null; dbias: Tensor | null } {
  const p = plan(x.device, layout, tuning);
  const dx = Tensor.empty(x.device, x.shape);
  // Per-group (Σ dy, Σ dy·x̂); written even without weight so both cases share a pipeline.
  const sums = Tensor.empty(x.device, [layout.groups * 2]);
  const u = params(layout, p, weight ? HAS_W : 0, 0, 0, mask?.slope ?? 0);
  const common = { vec: p.vec, wg: p.wg, combine: p.combine, masked: mask !== null };
  const inputs = [dy, x, mean, invStd, ...(mask ? [mask.y] : [])];
  const affine = [weight ?? x];
  const call = (k: BwdKernel, inputs: Tensor[], outputs: Tensor[], chunks: number) =>
    dispatch(op, k, backwardBindings(k), () => backwardWgsl(k), inputs, outputs, u, grid(chunks, layout.groups));
  if (p.chunks === 1) {
    call({ ...common, stage: 'apply', src: 'reduce' }, [...inputs, ...affine], [dx, sums], 1);
  } else {
    const parts = Tensor.empty(x.device, [layout.groups * p.chunks * 3]);
    call({ ...common, stage: 'stats', src: 'reduce' }, inputs, [parts], p.chunks);
    call({ ...common, stage: 'apply', src: 'partials' }, [...inputs, ...affine, parts], [dx, sums], p.chunks);
    parts.dispose();
  }
  if (!weight) {
    sums.dispose();
    return { dx, dweight: null, dbias: null };
  }
  const { dweight, dbias } = affineGrads(op, sums, layout);
  sums.dispose();
  return { dx, dweight, dbias };
}

/** dweight[c] = Σ over groups of channel c of Σ dy·x̂; dbias likewise of Σ dy. */
function affineGrads(op: string, sums: Tensor, layout: NormLayout): { dweight: Tensor; dbias: Tensor } {
  const C = layout.channels;
  const dweight = Tensor.empty(sums.device, [C]);
  const dbias = Tensor.empty(sums.device, [C]);
  const wg = 64;
  runKernel({
    op: `${op}Affine`,
    key: '',
    decl: { inputs: ['sums'], outputs: ['dw', 'db'], uniforms: { C: 'u32', reps: 'u32' } },
    wgsl: () => /* wgsl */ `
@compute @workgroup_size(${wg})
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let c = gid.x;
  if (c >= u.C) { return; }
  var a = 0.0;
  var b = 0.0;
  for (var r = 0u; r < u.reps; r++) {
    let g = r * u.C + c;
    a += sums[2u * g];
    b += sums[2u * g + 1u];
  }
  dw[c] = b;
  db[c] = a;
}`,
    inputs: [sums],
    outputs: [dweight, dbias],
    uniforms: { C, reps: layout.groups / C },
    workgroups: [Math.ceil(C / wg)],
  });
  return { dweight, dbias };
}

// ---- validation ------------------------------------------------------------

/** @internal Checks x [N,C,H,W] and optional [C] vectors; returns the dims. */
export function checkNormInput(
  op: string,
  x: Tensor,
  vectors: Record<string, Tensor | null>,
): [number, number, number, number] {
  if (x.rank !== 4 || x.shape.some((d) => d < 1)) {
    throw new ShapeError(`${op}: x must be [N,C,H,W] with every dimension ≥ 1 (got x ${fmtShape(x.shape)})`);
  }
  const C = x.shape[1];
  for (const [name, t] of Object.entries(vectors)) {
    if (!t) continue;
    sameDevice(op, x, t);
    if (t.rank !== 1 || t.shape[0] !== C) {
      throw new ShapeError(
        `${op}: ${name} must have one value per channel (expected [${C}], got ${fmtShape(t.shape)}; x ${fmtShape(x.shape)})`,
      );
    }
  }
  return x.shape as [number, number, number, number];
}

/** @internal Checks the tensors handed to a norm backward. */
export function checkNormBackward(
  op: string,
  dy: Tensor,
  x: Tensor,
  mean: Tensor,
  invStd: Tensor,
  weight: Tensor | null,
  groups: (shape: readonly number[]) => number,
): void {
  checkNormInput(op, x, { weight });
  sameDevice(op, dy, x, mean, invStd);
  if (dy.rank !== x.rank || dy.shape.some((d, i) => d !== x.shape[i])) {
    throw new ShapeError(
      `${op}: dy must have the shape of x (expected ${fmtShape(x.shape)}, got ${fmtShape(dy.shape)}; x ${fmtShape(x.shape)})`,
    );
  }
  const G = groups(x.shape);
  for (const [name, t] of [
    ['mean', mean],
    ['invStd', invStd],
  ] as const) {
    if (t.size !== G) {
      throw new ShapeError(
        `${op}: ${name} must hold one value per group (expected ${G} values, got ${fmtShape(t.shape)}; x ${fmtShape(x.shape)})`,
      );
    }
  }
}

/** @internal */
export function checkNormEps(op: string, eps: number): void {
  if (!(eps >= 0) || !Number.isFinite(eps)) throw new RangeError(`${op}: eps must be a finite number ≥ 0, got ${eps}`);
}

// ---- float64 references --------------------------------------------------------

/** @internal Float64 reference: normalise each group with its own batch statistics. */
export function normRef(
  layout: NormLayout,
  x: ArrayLike<number>,
  weight: ArrayLike<number> | null,
  bias: ArrayLike<number> | null,
  eps: number,
): { data: Float64Array; mean: Float64Array; invStd: Float64Array; variance: Float64Array } {
  const { groups, outer, outerStride, inner, channels } = layout;
  const data = new Float64Array(x.length);
  const mean = new Float64Array(groups);
  const invStd = new Float64Array(groups);
  const variance = new Float64Array(groups);
  const M = outer * inner;
  for (let g = 0; g < groups; g++) {
    const at = (o: number, i: number) => g * inner + o * outerStride + i;
    let s = 0;
    for (let o = 0; o < outer; o++) for (let i = 0; i < inner; i++) s += x[at(o, i)];
    const m = s / M;
    let q = 0;
    for (let o = 0; o < outer; o++) for (let i = 0; i < inner; i++) q += (x[at(o, i)] - m) ** 2;
    const v = q / M;
    const inv = 1 / Math.sqrt(v + eps);
    const c = g % channels;
    const w = weight ? weight[c] : 1;
    const b = bias ? bias[c] : 0;
    for (let o = 0; o < outer; o++) {
      for (let i = 0; i < inner; i++) data[at(o, i)] = (x[at(o, i)] - m) * inv * w + b;
    }
    mean[g] = m;
    invStd[g] = inv;
    variance[g] = v;
  }
  return { data, mean, invStd, variance };
}

/** @internal Float64 reference of the closed-form backward. */
export function normBackwardRef(
  layout: NormLayout,
  dy: ArrayLike<number>,
  x: ArrayLike<number>,
  mean: ArrayLike<number>,
  invStd: ArrayLike<number>,
  weight: ArrayLike<number> | null,
): { dx: Float64Array; dweight: Float64Array | null; dbias: Float64Array | null } {
  const { groups, outer, outerStride, inner, channels } = layout;
  const dx = new Float64Array(x.length);
  const dweight = new Float64Array(channels);
  const dbias = new Float64Array(channels);
  const M = outer * inner;
  for (let g = 0; g < groups; g++) {
    const at = (o: number, i: number) => g * inner + o * outerStride + i;
    const c = g % channels;
    const w = weight ? weight[c] : 1;
    // With ĝ = w·dy the normalisation's Jacobian gives
    // dx = invStd·(ĝ - mean(ĝ) - x̂·mean(ĝ·x̂)).
    let sg = 0;
    let sgx = 0;
    let sdy = 0;
    let sdyx = 0;
    for (let o = 0; o < outer; o++) {
      for (let i = 0; i < inner; i++) {
        const xh = (x[at(o, i)] - mean[g]) * invStd[g];
        const d = dy[at(o, i)];
        sg += w * d;
        sgx += w * d * xh;
        sdy += d;
        sdyx += d * xh;
      }
    }
    for (let o = 0; o < outer; o++) {
      for (let i = 0; i < inner; i++) {
        const xh = (x[at(o, i)] - mean[g]) * invStd[g];
        dx[at(o, i)] = invStd[g] * (w * dy[at(o, i)] - sg / M - (xh * sgx) / M);
      }
    }
    dweight[c] += sdyx;
    dbias[c] += sdy;
  }
  return weight ? { dx, dweight, dbias } : { dx, dweight: null, dbias: null };
}
