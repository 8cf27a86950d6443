// Shared by the ONNX export tests: run an exported model in onnxruntime-node (CPU EP), and the same
// weights in our own WebGPU networks, on a float input [N, C, H, W].
import { type nn, noGrad, variable } from '@cg/autograd';
import {
  type DiscriminatorSpec,
  defineD,
  dropStaleInstanceNormKeys,
  inferOnnxNetwork,
  loadGenerator,
  type OnnxMode,
  type StateDict,
} from '@cg/cyclegan';
import { type Device, Rng, Tensor, tidy } from '@cg/tensor-core';
import ort from 'onnxruntime-node';

export interface Output {
  data: Float32Array;
  dims: number[];
}

/** One CPU session per model; one thread so results do not depend on the machine's core count. */
export async function ortSession(bytes: Uint8Array): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(bytes, { executionProviders: ['cpu'], intraOpNumThreads: 1 });
}

export async function runOrt(session: ort.InferenceSession, x: Float32Array, dims: number[]): Promise<Output> {
  const r = await session.run({ input: new ort.Tensor('float32', x, dims) });
  const out = r.output;
  return { data: out.data as Float32Array, dims: [...out.dims] };
}

/** Our network for a state dict, as the CLI builds it (generators through loadGenerator). */
export function buildOurs(
  device: Device,
  sd: StateDict,
  options: Parameters<typeof inferOnnxNetwork>[1] = {},
): nn.Module {
  const clean = dropStaleInstanceNormKeys(sd);
  const net = inferOnnxNetwork(clean, options);
  if (net.role === 'generator') return loadGenerator(device, clean, options).net;
  const s: DiscriminatorSpec = net.spec;
  const D = defineD(
    {
      input_nc: s.input_nc,
      ndf: s.ndf,
      netD: s.kind === 'pixel' ? 'pixel' : 'n_layers',
      n_layers_D: s.n_layers ?? 3,
      norm: s.norm,
      init_type: 'normal',
      init_gain: 0.02,
    },
    { device, rng: new Rng(0) },
  );
  D.loadStateDict(clean);
  return D;
}

/** A forward pass of ours; a train-mode pass also updates BatchNorm's running stats, so reload weights between runs. */
export async function runOurs(net: nn.Module, mode: OnnxMode, x: Float32Array, dims: number[]): Promise<Output> {
  if (mode === 'eval') net.eval();
  else net.train();
  const device = net.parameters()[0].device;
  const out = tidy(() => noGrad(() => net.forward(variable(Tensor.fromArray(device, x, dims))).data));
  const data = await out.toArray();
  const shape = [...out.shape];
  out.dispose();
  return { data, dims: shape };
}

export function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Largest |value|, to show a comparison is not between two near-zero outputs. */
export function maxAbs(a: Float32Array): number {
  let m = 0;
  for (const v of a) m = Math.max(m, Math.abs(v));
  return m;
}

/** Seeded values in [-1, 1], like a normalised image. */
export function randomInput(dims: number[], seed: number): Float32Array {
  const rng = new Rng(seed);
  const n = dims.reduce((a, b) => a * b, 1);
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = rng.random() * 2 - 1;
  return x;
}

export { hostStateDict } from '@cg/cyclegan';
