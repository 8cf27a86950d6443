import { Tensor } from '@cg/tensor-core';
import { F } from '../F.js';
import { parameter, type Variable } from '../variable.js';
import { getDefaultDevice, getDefaultRng, type LayerOptions } from './defaults.js';
import { fusionEnabled } from './fusion.js';
import { fans, kaimingUniform_, uniform_ } from './init.js';
import { Module } from './module.js';

type Pair = number | [number, number];
const pair = (v: Pair): [number, number] => (typeof v === 'number' ? [v, v] : [v[0], v[1]]);

export interface Conv2dOptions extends LayerOptions {
  stride?: Pair;
  padding?: Pair;
  bias?: boolean;
  /** How the padding is filled; 'reflect' and 'replicate' pad explicitly, then convolve unpadded (as PyTorch). */
  paddingMode?: 'zeros' | 'reflect' | 'replicate';
}

/**
 * PyTorch's default init (reset_parameters): kaiming_uniform(a=√5) weights,
 * which is U(±1/√fan_in), and U(±1/√fan_in) bias, fan_in from the weight.
 */
function defaultInit(weight: Variable, bias: Variable | null, options: LayerOptions): void {
  const rng = options.rng ?? getDefaultRng();
  kaimingUniform_(weight, { a: Math.sqrt(5) }, rng);
  if (bias) {
    const { fanIn } = fans(weight.shape);
    const bound = fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0;
    uniform_(bias, -bound, bound, rng);
  }
}

/** 2-D convolution, weight [out, in, kH, kW] (PyTorch's nn.Conv2d, groups 1, dilation 1). */
export class Conv2d extends Module {
  readonly weight: Variable;
  readonly bias: Variable | null;
  readonly stride: [number, number];
  readonly padding: [number, number];
  readonly paddingMode: 'zeros' | 'reflect' | 'replicate';

  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    kernelSize: Pair,
    options: Conv2dOptions = {},
  ) {
    super();
    const device = options.device ?? getDefaultDevice();
    const [kH, kW] = pair(kernelSize);
    this.stride = pair(options.stride ?? 1);
    this.padding = pair(options.padding ?? 0);
    this.paddingMode = options.paddingMode ?? 'zeros';
    this.weight = this.registerParameter('weight', parameter(Tensor.empty(device, [outChannels, inChannels, kH, kW])));
    this.bias = this.registerParameter(
      'bias',
      options.bias === false ? null : parameter(Tensor.empty(device, [outChannels])),
    );
    defaultInit(this.weight, this.bias, options);
  }

  forward(x: Variable): Variable {
    const [pH, pW] = this.padding;
    if (this.paddingMode === 'zeros' || (pH === 0 && pW === 0)) {
      return F.conv2d(x, this.weight, this.bias, { stride: this.stride, padding: this.padding });
    }
    // Fused: the pad folded into the conv's index math (nn/fusion.ts); a too-small input is left to the pad's check.
    if (fusionEnabled() && (this.paddingMode === 'replicate' || (pH < x.shape[2] && pW < x.shape[3]))) {
      const args = { stride: this.stride, padding: this.padding, padMode: this.paddingMode };
      return F.conv2d(x, this.weight, this.bias, args);
    }
    const pad = this.paddingMode === 'reflect' ? F.reflectionPad2d : F.replicationPad2d;
    return F.conv2d(pad(x, [pW, pW, pH, pH]), this.weight, this.bias, { stride: this.stride, padding: 0 });
  }
}

export interface ConvTranspose2dOptions extends LayerOptions {
  stride?: Pair;
  padding?: Pair;
  outputPadding?: Pair;
  bias?: boolean;
}

/** Transposed 2-D convolution, weight [in, out, kH, kW] (PyTorch's nn.ConvTranspose2d, groups 1). */
export class ConvTranspose2d extends Module {
  readonly weight: Variable;
  readonly bias: Variable | null;
  readonly stride: [number, number];
  readonly padding: [number, number];
  readonly outputPadding: [number, number];

  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    kernelSize: Pair,
    options: ConvTranspose2dOptions = {},
  ) {
    super();
    const device = options.device ?? getDefaultDevice();
    const [kH, kW] = pair(kernelSize);
    this.stride = pair(options.stride ?? 1);
    this.padding = pair(options.padding ?? 0);
    this.outputPadding = pair(options.outputPadding ?? 0);
    this.weight = this.registerParameter('weight', parameter(Tensor.empty(device, [inChannels, outChannels, kH, kW])));
    this.bias = this.registerParameter(
      'bias',
      options.bias === false ? null : parameter(Tensor.empty(device, [outChannels])),
    );
    // PyTorch computes fan_in from dim 1 of the weight, here the output channels.
    defaultInit(this.weight, this.bias, options);
  }

  forward(x: Variable): Variable {
    return F.convTranspose2d(x, this.weight, this.bias, {
      stride: this.stride,
      padding: this.padding,
      outputPadding: this.outputPadding,
    });
  }
}
