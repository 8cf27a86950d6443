import { assertFiniteWeights, dropStaleInstanceNormKeys, type StateDict } from '../checkpoint/index.js';
import { CheckpointError, OptionError } from '../errors.js';
import { type GeneratorSpec, inferGenerator, netGName } from '../infer.js';
import { specFromNetG } from '../networks/define.js';
import { checkGeneratorSize } from '../networks/generator_size.js';
import { discriminatorGraph } from './discriminators.js';
import { GraphBuilder } from './graph.js';
import { inferDiscriminator, looksLikeDiscriminator } from './infer_discriminator.js';
import type { Layers } from './layers.js';
import {
  type DiscriminatorSpec,
  type ExportOnnxOptions,
  isDiscriminatorSpec,
  ONNX_IR_VERSION,
  ONNX_OPSET,
  type OnnxNetwork,
} from './options.js';
import { encodeModel, TensorDataType } from './proto.js';
import { resnetGraph } from './resnet.js';
import { unetGraph, unetHasDropout } from './unet.js';

/** What the exported network is, from `options.spec`, or the keys with the options' overrides. */
export function inferOnnxNetwork(sd: StateDict, options: ExportOnnxOptions = {}): OnnxNetwork {
  const source = options.source ?? 'checkpoint';
  if (options.spec) {
    return isDiscriminatorSpec(options.spec)
      ? { role: 'discriminator', spec: options.spec }
      : { role: 'generator', spec: options.spec };
  }
  if (options.netD !== undefined || looksLikeDiscriminator(sd)) {
    return { role: 'discriminator', spec: inferDiscriminator(sd, options, source) };
  }
  let spec = inferGenerator(sd, source);
  if (options.netG && options.netG !== 'auto') {
    spec = specFromNetG({ ...spec, netG: options.netG, ngf: options.ngf ?? spec.ngf, norm: options.norm ?? spec.norm });
  } else if (options.ngf || options.norm) {
    spec = { ...spec, ngf: options.ngf ?? spec.ngf, norm: options.norm ?? spec.norm };
  }
  if (options.use_dropout !== undefined) spec = { ...spec, use_dropout: options.use_dropout };
  return { role: 'generator', spec };
}

/** `resnet_9blocks ngf=64 norm=instance` / `n_layers(3) ndf=64 norm=batch`, for messages and metadata. */
export function describeOnnxNetwork(n: OnnxNetwork): string {
  if (n.role === 'generator') {
    const s = n.spec;
    return `${netGName(s)} ngf=${s.ngf} norm=${s.norm}${s.use_dropout ? ' dropout' : ''}`;
  }
  const s = n.spec;
  const name = s.kind === 'pixel' ? 'pixel' : s.n_layers === 3 ? 'basic' : `n_layers(${s.n_layers})`;
  return `${name} discriminator ndf=${s.ndf} norm=${s.norm}`;
}

function hasDropout(n: OnnxNetwork): boolean {
  if (n.role === 'discriminator') return false;
  return n.spec.kind === 'resnet' ? n.spec.use_dropout : unetHasDropout(n.spec);
}

function checkDiscriminatorSpec(s: DiscriminatorSpec, source: string): void {
  const ok = (v: number | undefined, lo: number, hi: number) =>
    v !== undefined && Number.isInteger(v) && v >= lo && v <= hi;
  if (!ok(s.ndf, 1, 1024) || !ok(s.input_nc, 1, 64) || (s.kind === 'n_layers' && !ok(s.n_layers, 1, 16))) {
    throw new CheckpointError(
      `${source}: refusing a ${s.kind} discriminator with ndf ${s.ndf}, input_nc ${s.input_nc}` +
        `${s.kind === 'n_layers' ? `, n_layers ${s.n_layers}` : ''}: ndf must be 1 to 1024, input_nc 1 to 64, ` +
        'n_layers 1 to 16; pass --ndf/--n_layers_D if the inferred values are wrong',
    );
  }
}

/**
 * A CycleGAN network as an ONNX model (opset 17, see ONNX_OPSET): a generator (resnet_<n>blocks,
 * unet_128/256/<n>downs) or a discriminator (basic, n_layers, pixel) with norm instance, batch or
 * none, from a state dict with the official key names (.pth or .safetensors, read with
 * readCheckpoint). The input is `input: [N, input_nc, H, W]` with symbolic N, H, W, the output
 * `output`; a generator's H and W must be multiples of 4 (resnet) or 2^num_downs (U-Net), as for
 * translate, which pads to them. Weights keep their torch names. `options.mode` chooses eval or
 * train semantics (OnnxMode). Every key problem is one CheckpointError, thrown before any bytes
 * exist. Platform-neutral: no file or device access.
 */
export function exportOnnx(weights: StateDict, options: ExportOnnxOptions = {}): Uint8Array {
  const source = options.source ?? 'checkpoint';
  const mode = options.mode ?? 'eval';
  if (mode !== 'eval' && mode !== 'train') {
    throw new OptionError(`exportOnnx: mode must be 'eval' or 'train' (got ${String(mode)})`);
  }
  const sd = dropStaleInstanceNormKeys(weights, options.log);
  const net = inferOnnxNetwork(sd, options);
  const what = describeOnnxNetwork(net);
  if (mode === 'train' && hasDropout(net)) {
    throw new OptionError(
      `${source}: cannot export ${what} in train mode: its dropout draws random masks (ours are seeded) and ` +
        'ONNX cannot reproduce them; export with --mode eval (dropout becomes the identity, as in torch eval mode)',
    );
  }
  let stored = 0;
  for (const t of sd.values()) stored += t.data.length;
  if (net.role === 'generator') checkGeneratorSize(net.spec, stored, source);
  else checkDiscriminatorSpec(net.spec, source);
  assertFiniteWeights(sd, source);

  const g = new GraphBuilder(sd, source);
  const l: Layers = { g, mode };
  const inC = net.spec.input_nc;
  const out =
    net.role === 'discriminator'
      ? discriminatorGraph(l, 'input', net.spec)
      : net.spec.kind === 'resnet'
        ? resnetGraph(l, 'input', net.spec)
        : unetGraph(l, 'input', net.spec);
  g.finish(
    `exported ${what} from the keys; pass ${net.role === 'generator' ? '--netG/--ngf/--norm' : '--netD/--n_layers_D/--ndf/--norm'} if that is wrong`,
  );
  // The last node writes `output` directly, so the graph output needs no Identity.
  g.nodes[g.nodes.length - 1].outputs = ['output'];
  if (g.nodes[g.nodes.length - 1].name !== out) throw new Error('exportOnnx: the last node is not the output');
  const outC = net.role === 'generator' ? (net.spec as GeneratorSpec).output_nc : 1;
  const doc =
    `${what}, ${mode} mode, exported by @cg/cyclegan from ${source}. ` +
    `input: [N, ${inC}, H, W] float32 in [-1, 1] (ToTensor + Normalize(0.5, 0.5)).`;
  return encodeModel({
    irVersion: ONNX_IR_VERSION,
    producerName: '@cg/cyclegan',
    producerVersion: '0.1.0',
    docString: doc,
    opsetImports: [{ domain: '', version: ONNX_OPSET }],
    metadata: [
      { key: 'network', value: what },
      { key: 'mode', value: mode },
      { key: 'source', value: source },
    ],
    graph: {
      name:
        net.role === 'generator'
          ? netGName(net.spec as GeneratorSpec)
          : `${(net.spec as DiscriminatorSpec).kind}_discriminator`,
      docString: doc,
      nodes: g.nodes,
      initializers: g.initializers,
      inputs: [{ name: 'input', elemType: TensorDataType.FLOAT, dims: ['N', inC, 'H', 'W'] }],
      outputs: [{ name: 'output', elemType: TensorDataType.FLOAT, dims: ['N', outC, 'H_out', 'W_out'] }],
    },
  });
}
