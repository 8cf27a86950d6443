import type { nn } from '@cg/autograd';
import { OptionError } from '../errors.js';
import type { GeneratorSpec } from '../infer.js';
import type { InitType, NetD, NetG, Norm } from '../options.js';
import { NLayerDiscriminator, PixelDiscriminator } from './discriminators.js';
import { initWeights } from './init_weights.js';
import type { BuildContext } from './norm_layer.js';
import { ResnetGenerator } from './resnet_generator.js';
import { UnetGenerator } from './unet_generator.js';

export interface DefineGOptions {
  input_nc: number;
  output_nc: number;
  ngf: number;
  netG: NetG | string;
  norm: Norm;
  use_dropout: boolean;
  init_type: InitType;
  init_gain: number;
}

/** Generator from an official --netG name; `resnet_<n>blocks` and `unet_<n>downs` are accepted too. */
export function specFromNetG(
  o: Pick<DefineGOptions, 'input_nc' | 'output_nc' | 'ngf' | 'netG' | 'norm' | 'use_dropout'>,
): GeneratorSpec {
  const base = { input_nc: o.input_nc, output_nc: o.output_nc, ngf: o.ngf, norm: o.norm, use_dropout: o.use_dropout };
  const resnet = /^resnet_(\d+)blocks$/.exec(o.netG);
  if (resnet) return { ...base, kind: 'resnet', n_blocks: Number(resnet[1]) };
  if (o.netG === 'unet_256') return { ...base, kind: 'unet', num_downs: 8 };
  if (o.netG === 'unet_128') return { ...base, kind: 'unet', num_downs: 7 };
  const unet = /^unet_(\d+)downs$/.exec(o.netG);
  if (unet && Number(unet[1]) >= 5) return { ...base, kind: 'unet', num_downs: Number(unet[1]) };
  throw new OptionError(
    `--netG ${o.netG} is not a generator: use resnet_9blocks, resnet_6blocks, unet_256 or unet_128`,
  );
}

/** Builds a generator for a spec (no re-init: callers loading weights skip it). */
export function buildGenerator(spec: GeneratorSpec, ctx: BuildContext): ResnetGenerator | UnetGenerator {
  if (spec.kind === 'resnet') {
    return new ResnetGenerator(
      {
        input_nc: spec.input_nc,
        output_nc: spec.output_nc,
        ngf: spec.ngf,
        norm: spec.norm,
        use_dropout: spec.use_dropout,
        n_blocks: spec.n_blocks,
      },
      ctx,
    );
  }
  return new UnetGenerator(
    {
      input_nc: spec.input_nc,
      output_nc: spec.output_nc,
      ngf: spec.ngf,
      norm: spec.norm,
      use_dropout: spec.use_dropout,
      num_downs: spec.num_downs!,
    },
    ctx,
  );
}

/** networks.define_G: build, then init_weights. */
export function defineG(o: DefineGOptions, ctx: BuildContext): ResnetGenerator | UnetGenerator {
  const net = buildGenerator(specFromNetG(o), ctx);
  initWeights(net, o.init_type, o.init_gain, ctx.rng);
  return net;
}

export interface DefineDOptions {
  input_nc: number;
  ndf: number;
  netD: NetD;
  n_layers_D: number;
  norm: Norm;
  init_type: InitType;
  init_gain: number;
}

/** networks.define_D: basic = n_layers 3, n_layers, pixel; then init_weights. */
export function defineD(o: DefineDOptions, ctx: BuildContext): nn.Module {
  let net: nn.Module;
  switch (o.netD) {
    case 'basic':
      net = new NLayerDiscriminator({ input_nc: o.input_nc, ndf: o.ndf, n_layers: 3, norm: o.norm }, ctx);
      break;
    case 'n_layers':
      net = new NLayerDiscriminator({ input_nc: o.input_nc, ndf: o.ndf, n_layers: o.n_layers_D, norm: o.norm }, ctx);
      break;
    case 'pixel':
      net = new PixelDiscriminator({ input_nc: o.input_nc, ndf: o.ndf, norm: o.norm }, ctx);
      break;
    default:
      throw new OptionError(`--netD ${o.netD} is not a discriminator: use basic, n_layers or pixel`);
  }
  initWeights(net, o.init_type, o.init_gain, ctx.rng);
  return net;
}
