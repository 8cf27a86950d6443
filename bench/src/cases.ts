// The CycleGAN shapes (batch 1, resnet_9blocks at 256² and its PatchGAN
// discriminator) for each kernel family, on our side and on tfjs's.
//
// Ours works in NCHW with PyTorch weight layouts; tfjs in NHWC with
// [kH, kW, in, out] filters. Inputs are generated once on the CPU and
// uploaded to each side in its own layout, so layout changes are never timed
// and the cross-check can compare the two results element by element.
import type { Variable } from '@cg/autograd';
import { type Device, Rng, type Shape, Tensor, tidy } from '@cg/tensor-core';
import { ceilingCases } from './ceiling.js';
import { type Prepared, Skip } from './harness.js';
import { freeAll, type Ours, pick } from './ours.js';
import type { TfjsPeer, TfTensor } from './peer_tfjs.js';

export type Group = 'ceiling' | 'matmul' | 'conv' | 'convT' | 'norm' | 'pad' | 'model';
export type Pass = 'forward' | 'backwardInput' | 'backwardWeight' | 'backward' | 'fwd+bwd';

export interface BenchCase {
  id: string;
  group: Group;
  pass: Pass;
  /** Shapes in words, for the JSON. */
  shapes: string;
  /** Floating-point operations of one pass (2 per multiply-add). */
  flops?: number;
  /** Bytes one pass must move at least (each input read once, each output written once). */
  bytes?: number;
  /** Skipped under --quick (whole-model cases). */
  heavy?: boolean;
  ours(o: Ours): Prepared | Promise<Prepared>;
  /** Absent when the peer has no counterpart. */
  peer?(p: TfjsPeer): Prepared;
}

// ---- data and layouts --------------------------------------------------------

const size = (s: Shape) => s.reduce((a, b) => a * b, 1);

/** Uniform in [-1, 1), the same numbers for both sides. */
function rand(shape: Shape, seed: number, scale = 1): Float32Array {
  const rng = new Rng(seed);
  const out = new Float32Array(size(shape));
  for (let i = 0; i < out.length; i++) out[i] = (rng.random() * 2 - 1) * scale;
  return out;
}

/** out[i0..] = x[j..] where out's axis k is x's axis perm[k]. */
function permute(x: Float32Array, shape: Shape, perm: readonly number[]): { data: Float32Array; shape: number[] } {
  const rank = shape.length;
  const outShape = perm.map((p) => shape[p]);
  const inStrides = new Array<number>(rank);
  inStrides[rank - 1] = 1;
  for (let k = rank - 2; k >= 0; k--) inStrides[k] = inStrides[k + 1] * shape[k + 1];
  const strides = perm.map((p) => inStrides[p]);
  const out = new Float32Array(x.length);
  const idx = new Array<number>(rank).fill(0);
  let src = 0;
  for (let i = 0; i < out.length; i++) {
    out[i] = x[src];
    for (let k = rank - 1; k >= 0; k--) {
      idx[k]++;
      src += strides[k];
      if (idx[k] < outShape[k]) break;
      src -= strides[k] * outShape[k];
      idx[k] = 0;
    }
  }
  return { data: out, shape: outShape };
}

const NCHW_TO_NHWC = [0, 2, 3, 1];
const NHWC_TO_NCHW = [0, 3, 1, 2];
/** PyTorch conv weight [O, I, kH, kW] → tfjs conv2d filter [kH, kW, I, O]; also convT [I, O, kH, kW] → tfjs [kH, kW, O, I]. */
const TORCH_W_TO_TF = [2, 3, 1, 0];
const TF_W_TO_TORCH = [3, 2, 0, 1];

/** Host data of one input (made on first use), uploaded to whichever side asks. */
class Input {
  private cached: Float32Array | null = null;
  constructor(
    private readonly make: () => Float32Array,
    readonly shape: number[],
    /** How tfjs wants it (null: as is). */
    readonly tfPerm: readonly number[] | null,
  ) {}
  get data(): Float32Array {
    this.cached ??= this.make();
    return this.cached;
  }
  ours(o: Ours): Tensor {
    return Tensor.fromArray(o.device, this.data, this.shape);
  }
  tf(p: TfjsPeer): TfTensor {
    if (!this.tfPerm) return p.tf.tensor(this.data, this.shape);
    const t = permute(this.data, this.shape, this.tfPerm);
    return p.tf.tensor(t.data, t.shape);
  }
}

const act = (shape: number[], seed: number) =>
  new Input(() => rand(shape, seed), shape, shape.length === 4 ? NCHW_TO_NHWC : null);
const weight = (shape: number[], seed: number) => {
  const fanIn = size(shape) / shape[0];
  return new Input(() => rand(shape, seed, 1 / Math.sqrt(fanIn)), shape, TORCH_W_TO_TF);
};

/** Our side of a case: `run` records one pass and returns its outputs; `out` picks the one to cross-check. */
function oursCase(inputs: Tensor[], run: () => unknown, out: (r: unknown) => Tensor = (r) => pick(r)): Prepared {
  return {
    step() {
      const r = run();
      return { free: () => freeAll(r), read: () => out(r).toArray() };
    },
    dispose: () => {
      for (const t of inputs) t.dispose();
    },
  };
}

/**
 * tfjs's side: `run` is wrapped in tf.tidy so intermediates are freed; `back`
 * maps its result to our layout; `compare: false` when tfjs computes
 * something else than ours (so the cross-check would only report that).
 */
function peerCase(
  p: TfjsPeer,
  inputs: TfTensor[],
  run: () => TfTensor,
  back: readonly number[] | null,
  note?: string,
  compare = true,
): Prepared {
  return {
    ...(note ? { note } : {}),
    step() {
      const r = p.tf.tidy(run);
      const read = async () => {
        const data = await p.read(r);
        return back ? permute(data, r.shape, back).data : data;
      };
      return { free: () => r.dispose(), ...(compare ? { read } : {}) };
    },
    dispose: () => {
      for (const t of inputs) t.dispose();
    },
  };
}

// ---- kernel contracts (see packages/kernels-wgsl/src/ops/*) --------------------

interface ConvOpts {
  stride: number;
  padding: number;
}
interface ConvTOpts extends ConvOpts {
  outputPadding: number;
}
type Conv2d = (x: Tensor, w: Tensor, bias: Tensor | null, o: ConvOpts) => Tensor;
type ConvBackwardInput = (dy: Tensor, w: Tensor, xShape: Shape, o: ConvOpts) => Tensor;
type ConvBackwardWeight = (dy: Tensor, x: Tensor, wShape: Shape, o: ConvOpts) => Tensor;
type ConvTranspose2d = (x: Tensor, w: Tensor, bias: Tensor | null, o: ConvTOpts) => Tensor;
type ConvTBackwardInput = (dy: Tensor, w: Tensor, xShape: Shape, o: ConvTOpts) => Tensor;
type ConvTBackwardWeight = (dy: Tensor, x: Tensor, wShape: Shape, o: ConvTOpts) => Tensor;
type InstanceNorm2d = (
  x: Tensor,
  w: Tensor | null,
  b: Tensor | null,
  eps: number,
) => { y: Tensor; mean: Tensor; invStd: Tensor };
type InstanceNorm2dBackward = (dy: Tensor, x: Tensor, mean: Tensor, invStd: Tensor, w: Tensor | null) => unknown;
type Pads = [number, number, number, number];
type ReflectionPad2d = (x: Tensor, pads: Pads) => Tensor;
type ReflectionPad2dBackward = (dy: Tensor, xShape: Shape, pads: Pads) => Tensor;
type Matmul = (a: Tensor, b: Tensor) => Tensor;

// ---- convolutions ---------------------------------------------------------------

interface ConvSpec {
  name: string;
  cin: number;
  cout: number;
  k: number;
  stride: number;
  pad: number;
  /** Input height = width (after any reflection pad the network applies first). */
  h: number;
}

const outSize = (c: ConvSpec) => Math.floor((c.h + 2 * c.pad - c.k) / c.stride) + 1;

/**
 * resnet_9blocks reflection-pads before its 7×7 and resblock 3×3 convs and
 * runs them with padding 0, so those cases take the padded input (134², 66²)
 * and produce 128² / 64²; downsampling and discriminator convs zero-pad.
 */
const CONVS: ConvSpec[] = [
  { name: 'conv7x7 3→64 @128 c7s1 (in 134)', cin: 3, cout: 64, k: 7, stride: 1, pad: 0, h: 134 },
  { name: 'conv3x3 64→64 @64 (in 66)', cin: 64, cout: 64, k: 3, stride: 1, pad: 0, h: 66 },
  { name: 'conv3x3 256→256 @64 res (in 66)', cin: 256, cout: 256, k: 3, stride: 1, pad: 0, h: 66 },
  { name: 'conv3x3 s2 64→128 @128 down', cin: 64, cout: 128, k: 3, stride: 2, pad: 1, h: 128 },
  { name: 'conv4x4 s2 3→64 @256 D', cin: 3, cout: 64, k: 4, stride: 2, pad: 1, h: 256 },
  { name: 'conv4x4 s2 64→128 @128 D', cin: 64, cout: 128, k: 4, stride: 2, pad: 1, h: 128 },
];

function convCases(c: ConvSpec, seed: number): BenchCase[] {
  const ho = outSize(c);
  const xShape = [1, c.cin, c.h, c.h];
  const wShape = [c.cout, c.cin, c.k, c.k];
  const yShape = [1, c.cout, ho, ho];
  const flops = 2 * c.cout * ho * ho * c.cin * c.k * c.k;
  const opts: ConvOpts = { stride: c.stride, padding: c.pad };
  const tfPad = c.pad === 0 ? ('valid' as const) : c.pad;
  const x = act(xShape, seed);
  const w = weight(wShape, seed + 1);
  const b = new Input(() => rand([c.cout], seed + 2, 0.1), [c.cout], null);
  const dy = act(yShape, seed + 3);
  const shapes = `x ${fmt(xShape)} w ${fmt(wShape)} → y ${fmt(yShape)}, stride ${c.stride}, padding ${c.pad}`;
  const base = { group: 'conv' as const, shapes, flops };
  return [
    {
      ...base,
      id: `${c.name} fwd`,
      pass: 'forward',
      ours(o) {
        const conv2d = o.op<Conv2d>('conv2d');
        const [xt, wt, bt] = [x.ours(o), w.ours(o), b.ours(o)];
        return oursCase([xt, wt, bt], () => conv2d(xt, wt, bt, opts));
      },
      peer(p) {
        const [xt, wt, bt] = [x.tf(p), w.tf(p), b.tf(p)];
        const tf = p.tf;
        return peerCase(
          p,
          [xt, wt, bt],
          () => tf.fused.conv2d({ x: xt as never, filter: wt as never, strides: c.stride, pad: tfPad, bias: bt }),
          NHWC_TO_NCHW,
          'tf.fused.conv2d (bias fused)',
        );
      },
    },
    {
      ...base,
      id: `${c.name} bwd-input`,
      pass: 'backwardInput',
      ours(o) {
        const f = o.op<ConvBackwardInput>('conv2dBackwardInput');
        const [dyt, wt] = [dy.ours(o), w.ours(o)];
        return oursCase([dyt, wt], () => f(dyt, wt, xShape, opts));
      },
      peer(p) {
        const [dyt, wt] = [dy.tf(p), w.tf(p)];
        const inputShape = permute(new Float32Array(0), xShape, NCHW_TO_NHWC).shape;
        return peerCase(
          p,
          [dyt, wt],
          () =>
            p.tf.engine().runKernel('Conv2DBackpropInput', { dy: dyt, filter: wt }, {
              strides: c.stride,
              pad: tfPad,
              dataFormat: 'NHWC',
              inputShape,
            } as never) as TfTensor,
          NHWC_TO_NCHW,
          'Conv2DBackpropInput kernel',
        );
      },
    },
    {
      ...base,
      id: `${c.name} bwd-weight`,
      pass: 'backwardWeight',
      ours(o) {
        const f = o.op<ConvBackwardWeight>('conv2dBackwardWeight');
        const [dyt, xt] = [dy.ours(o), x.ours(o)];
        return oursCase([dyt, xt], () => f(dyt, xt, wShape, opts));
      },
      peer(p) {
        const [dyt, xt] = [dy.tf(p), x.tf(p)];
        const filterShape = permute(new Float32Array(0), wShape, TORCH_W_TO_TF).shape;
        return peerCase(
          p,
          [dyt, xt],
          () =>
            p.tf.engine().runKernel('Conv2DBackpropFilter', { x: xt, dy: dyt }, {
              strides: c.stride,
              pad: tfPad,
              dataFormat: 'NHWC',
              filterShape,
            } as never) as TfTensor,
          TF_W_TO_TORCH,
          'Conv2DBackpropFilter kernel',
        );
      },
    },
  ];
}

/**
 * ConvTranspose2d 3×3 s2 p1 op1 256→128 at 64² → 128² (resnet upsampling).
 * tfjs has it as Conv2DBackpropInput of a stride-2 conv on the 128² output;
 * PyTorch's p1/op1 puts one pad row at the top and none at the bottom of that
 * conv, which tfjs takes as explicit padding. Its backward-input is that
 * forward conv, its backward-weight Conv2DBackpropFilter (as tfjs's own
 * conv2dTranspose gradient does). Neither side adds a bias here.
 */
function convTransposeCases(seed: number): BenchCase[] {
  const [cin, cout, k, stride, pad, outPad, h] = [256, 128, 3, 2, 1, 1, 64];
  const ho = (h - 1) * stride - 2 * pad + k + outPad;
  const xShape = [1, cin, h, h];
  const wShape = [cin, cout, k, k];
  const yShape = [1, cout, ho, ho];
  const flops = 2 * cin * h * h * cout * k * k;
  const opts: ConvTOpts = { stride, padding: pad, outputPadding: outPad };
  const x = act(xShape, seed);
  const w = weight(wShape, seed + 1);
  const dy = act(yShape, seed + 3);
  const tfPad = [
    [0, 0],
    [pad, pad - outPad],
    [pad, pad - outPad],
    [0, 0],
  ];
  const yShapeTf = [1, ho, ho, cout];
  const filterShape = [k, k, cout, cin];
  const name = 'convT3x3 s2 256→128 @64 up';
  const shapes = `x ${fmt(xShape)} w ${fmt(wShape)} → y ${fmt(yShape)}, stride 2, padding 1, output_padding 1`;
  const base = { group: 'convT' as const, shapes, flops };
  return [
    {
      ...base,
      id: `${name} fwd`,
      pass: 'forward',
      ours(o) {
        const f = o.op<ConvTranspose2d>('convTranspose2d');
        const [xt, wt] = [x.ours(o), w.ours(o)];
        return oursCase([xt, wt], () => f(xt, wt, null, opts));
      },
      peer(p) {
        const [xt, wt] = [x.tf(p), w.tf(p)];
        return peerCase(
          p,
          [xt, wt],
          () =>
            p.tf.engine().runKernel('Conv2DBackpropInput', { dy: xt, filter: wt }, {
              strides: stride,
              pad: tfPad,
              dataFormat: 'NHWC',
              inputShape: yShapeTf,
            } as never) as TfTensor,
          NHWC_TO_NCHW,
          'Conv2DBackpropInput kernel (= tf.conv2dTranspose)',
        );
      },
    },
    {
      ...base,
      id: `${name} bwd-input`,
      pass: 'backwardInput',
      ours(o) {
        const f = o.op<ConvTBackwardInput>('convTranspose2dBackwardInput');
        const [dyt, wt] = [dy.ours(o), w.ours(o)];
        return oursCase([dyt, wt], () => f(dyt, wt, xShape, opts));
      },
      peer(p) {
        const [dyt, wt] = [dy.tf(p), w.tf(p)];
        return peerCase(
          p,
          [dyt, wt],
          () =>
            p.tf.engine().runKernel('Conv2D', { x: dyt, filter: wt }, {
              strides: stride,
              pad: tfPad,
              dataFormat: 'NHWC',
              dilations: [1, 1],
            } as never) as TfTensor,
          NHWC_TO_NCHW,
          'Conv2D kernel',
        );
      },
    },
    {
      ...base,
      id: `${name} bwd-weight`,
      pass: 'backwardWeight',
      ours(o) {
        const f = o.op<ConvTBackwardWeight>('convTranspose2dBackwardWeight');
        const [dyt, xt] = [dy.ours(o), x.ours(o)];
        return oursCase([dyt, xt], () => f(dyt, xt, wShape, opts));
      },
      peer(p) {
        const [dyt, xt] = [dy.tf(p), x.tf(p)];
        return peerCase(
          p,
          [dyt, xt],
          () =>
            p.tf.engine().runKernel('Conv2DBackpropFilter', { x: dyt, dy: xt }, {
              strides: stride,
              pad: tfPad,
              dataFormat: 'NHWC',
              filterShape,
            } as never) as TfTensor,
          TF_W_TO_TORCH,
          'Conv2DBackpropFilter kernel',
        );
      },
    },
  ];
}

// ---- instance norm, reflection pad --------------------------------------------

const EPS = 1e-5;

/** Instance norm as tfjs CycleGAN ports write it (affine=False, as the official networks). */
function tfInstanceNorm(p: TfjsPeer, x: TfTensor): TfTensor {
  const { mean, variance } = p.tf.moments(x, [1, 2], true);
  return p.tf.mul(p.tf.sub(x, mean), p.tf.rsqrt(p.tf.add(variance, EPS)));
}

function normCases(c: number, h: number, seed: number): BenchCase[] {
  const xShape = [1, c, h, h];
  const n = size(xShape);
  const x = act(xShape, seed);
  const dy = act(xShape, seed + 1);
  const name = `instanceNorm ${c}ch @${h}`;
  const shapes = `x ${fmt(xShape)}, affine=False, eps 1e-5`;
  return [
    {
      id: `${name} fwd`,
      group: 'norm',
      pass: 'forward',
      shapes,
      bytes: 2 * n * 4,
      ours(o) {
        const f = o.op<InstanceNorm2d>('instanceNorm2d');
        const xt = x.ours(o);
        return oursCase(
          [xt],
          () => f(xt, null, null, EPS),
          (r) => pick(r, 'y'),
        );
      },
      peer(p) {
        const xt = x.tf(p);
        return peerCase(p, [xt], () => tfInstanceNorm(p, xt), NHWC_TO_NCHW, 'tf.moments + normalize');
      },
    },
    {
      id: `${name} fwd+bwd`,
      group: 'norm',
      pass: 'fwd+bwd',
      shapes: `${shapes}; dx for upstream dy`,
      bytes: 5 * n * 4,
      ours(o) {
        const fwd = o.op<InstanceNorm2d>('instanceNorm2d');
        const bwd = o.op<InstanceNorm2dBackward>('instanceNorm2dBackward');
        const [xt, dyt] = [x.ours(o), dy.ours(o)];
        return oursCase(
          [xt, dyt],
          () => {
            const f = fwd(xt, null, null, EPS);
            return { f, g: bwd(dyt, xt, f.mean, f.invStd, null) };
          },
          (r) => pick((r as { g: unknown }).g, 'dx'),
        );
      },
      peer(p) {
        const [xt, dyt] = [x.tf(p), dy.tf(p)];
        const grad = p.tf.grad((v: TfTensor) => tfInstanceNorm(p, v));
        return peerCase(p, [xt, dyt], () => grad(xt, dyt), NHWC_TO_NCHW, 'tf.grad (its forward included)');
      },
    },
  ];
}

function padCases(pad: number, c: number, h: number, seed: number): BenchCase[] {
  const xShape = [1, c, h, h];
  const yShape = [1, c, h + 2 * pad, h + 2 * pad];
  const pads: Pads = [pad, pad, pad, pad];
  const x = act(xShape, seed);
  const dy = act(yShape, seed + 1);
  const bytes = (size(xShape) + size(yShape)) * 4;
  const name = `reflectionPad ${pad} ${c}ch @${h}`;
  const tfPads: [number, number][] = [
    [0, 0],
    [pad, pad],
    [pad, pad],
    [0, 0],
  ];
  return [
    {
      id: `${name} fwd`,
      group: 'pad',
      pass: 'forward',
      shapes: `x ${fmt(xShape)} → ${fmt(yShape)}`,
      bytes,
      ours(o) {
        const f = o.op<ReflectionPad2d>('reflectionPad2d');
        const xt = x.ours(o);
        return oursCase([xt], () => f(xt, pads));
      },
      peer(p) {
        const xt = x.tf(p);
        return peerCase(p, [xt], () => p.tf.mirrorPad(xt, tfPads, 'reflect'), NHWC_TO_NCHW, 'tf.mirrorPad reflect');
      },
    },
    {
      id: `${name} bwd`,
      group: 'pad',
      pass: 'backward',
      shapes: `dy ${fmt(yShape)} → dx ${fmt(xShape)}`,
      bytes,
      ours(o) {
        const f = o.op<ReflectionPad2dBackward>('reflectionPad2dBackward');
        const dyt = dy.ours(o);
        return oursCase([dyt], () => f(dyt, xShape, pads));
      },
      peer(p) {
        // tfjs's MirrorPad gradient is this slice: it drops the mirrored
        // contributions, so it is cheaper than (and differs from) the real gradient.
        const dyt = dy.tf(p);
        return peerCase(
          p,
          [dyt],
          () => p.tf.slice(dyt, [0, pad, pad, 0], [1, h, h, c]),
          NHWC_TO_NCHW,
          'tf.slice = tfjs MirrorPad grad (wrong for reflect; lower bound)',
          false,
        );
      },
    },
  ];
}

// ---- matmul ceiling ----------------------------------------------------------

function matmulCase(n: number, seed: number): BenchCase {
  const a = new Input(() => rand([n, n], seed), [n, n], null);
  const b = new Input(() => rand([n, n], seed + 1), [n, n], null);
  return {
    id: `matmul ${n}³`,
    group: 'matmul',
    pass: 'forward',
    shapes: `[${n}, ${n}] × [${n}, ${n}]`,
    flops: 2 * n * n * n,
    ours(o) {
      const f = o.op<Matmul>('matmul');
      const [at, bt] = [a.ours(o), b.ours(o)];
      return oursCase([at, bt], () => f(at, bt));
    },
    peer(p) {
      const [at, bt] = [a.tf(p), b.tf(p)];
      return peerCase(p, [at, bt], () => p.tf.matMul(at, bt), null, 'tf.matMul');
    },
  };
}

// ---- whole generator (ours only) ------------------------------------------------

interface GeneratorLike {
  forward(x: Variable): Variable;
  zeroGrad(): void;
  dispose(): void;
}
type ResnetGeneratorCtor = new (
  o: { input_nc: number; output_nc: number; ngf: number; norm: string; use_dropout: boolean; n_blocks: number },
  ctx: { device: Device; rng: Rng },
) => GeneratorLike;

/** Conv FLOPs of one resnet generator forward at h×h (norm, pad, activations not counted). */
export function resnetFlops(
  h: number,
  ngf: number,
  blocks: number,
  inNc = 3,
  outNc = 3,
): { fwd: number; firstConv: number } {
  const conv = (cin: number, cout: number, k: number, pixels: number) => 2 * cin * cout * k * k * pixels;
  const first = conv(inNc, ngf, 7, h * h);
  const fwd =
    first +
    conv(ngf, 2 * ngf, 3, (h / 2) ** 2) +
    conv(2 * ngf, 4 * ngf, 3, (h / 4) ** 2) +
    2 * blocks * conv(4 * ngf, 4 * ngf, 3, (h / 4) ** 2) +
    conv(4 * ngf, 2 * ngf, 3, (h / 4) ** 2) + // transposed: counted per input pixel
    conv(2 * ngf, ngf, 3, (h / 2) ** 2) +
    conv(ngf, outNc, 7, h * h);
  return { fwd, firstConv: first };
}

/**
 * resnet_9blocks (ngf 64, instance norm, no dropout) built by @cg/cyclegan,
 * run through @cg/autograd: inference forward under noGrad, and a training
 * forward + backward (input and weight gradients of every layer except the
 * first conv's input gradient). No tfjs peer: tfjs has no such network.
 */
function generatorCases(h: number): BenchCase[] {
  const blocks = 9;
  const { fwd, firstConv } = resnetFlops(h, 64, blocks);
  const xShape = [1, 3, h, h];
  const x = act(xShape, 500);
  const dy = act(xShape, 501);
  // Loaded on use: a half-finished upstream package then skips these cases instead of stopping the bench.
  const load = async (o: Ours) => {
    let ag: typeof import('@cg/autograd');
    let cg: Record<string, unknown>;
    try {
      ag = await import('@cg/autograd');
      cg = (await import('@cg/cyclegan')) as unknown as Record<string, unknown>;
    } catch (e) {
      throw new Skip(`@cg/autograd or @cg/cyclegan does not load: ${(e as Error).message.split('\n')[0]}`);
    }
    const Ctor = cg.ResnetGenerator;
    if (typeof Ctor !== 'function') throw new Skip('not implemented (@cg/cyclegan ResnetGenerator)');
    const net = new (Ctor as ResnetGeneratorCtor)(
      { input_nc: 3, output_nc: 3, ngf: 64, norm: 'instance', use_dropout: false, n_blocks: blocks },
      { device: o.device, rng: new Rng(7) },
    );
    return { ag, net, xv: ag.variable(x.ours(o)) };
  };
  const shapes = `resnet_${blocks}blocks ngf 64, instance norm, x ${fmt(xShape)}`;
  return [
    {
      id: `resnet_9blocks G @${h} fwd (no grad)`,
      group: 'model',
      pass: 'forward',
      shapes,
      flops: fwd,
      heavy: true,
      async ours(o) {
        const { ag, net, xv } = await load(o);
        return {
          step() {
            // tidy frees the layers' intermediate outputs, as an inference loop would.
            const y = tidy(() => ag.noGrad(() => net.forward(xv)));
            return { free: () => y.dispose() };
          },
          dispose() {
            xv.dispose();
            net.dispose();
          },
        };
      },
    },
    {
      id: `resnet_9blocks G @${h} fwd+bwd`,
      group: 'model',
      pass: 'fwd+bwd',
      shapes: `${shapes}; backward from dy of y's shape`,
      flops: 3 * fwd - firstConv,
      heavy: true,
      async ours(o) {
        const { net, xv } = await load(o);
        const dyt = dy.ours(o);
        return {
          step() {
            // As a training step would: inside tidy, which also frees what backward() does not own
            // (e.g. the padded input of the first conv, a constant outside the graph).
            tidy(() => {
              const y = net.forward(xv);
              y.backward(dyt);
              y.dispose();
            });
            return { free: () => net.zeroGrad() };
          },
          dispose() {
            xv.dispose();
            dyt.dispose();
            net.dispose();
          },
        };
      },
    },
  ];
}

function fmt(s: Shape): string {
  return `[${s.join(',')}]`;
}

// ---- the list ------------------------------------------------------------------

/** Every case, in the order they run (the FMA ceiling and the matmuls first: later rows refer to them). */
export function allCases(modelSize = 64): BenchCase[] {
  const cases: BenchCase[] = [...ceilingCases(), matmulCase(512, 1), matmulCase(1024, 3)];
  for (const [i, c] of CONVS.entries()) cases.push(...convCases(c, 100 + 10 * i));
  cases.push(...convTransposeCases(200));
  cases.push(...normCases(64, 64, 300), ...normCases(256, 64, 310));
  cases.push(...padCases(3, 256, 64, 400), ...padCases(1, 256, 64, 410));
  cases.push(...generatorCases(modelSize));
  return cases;
}
