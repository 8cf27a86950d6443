import { nn, type Variable } from '@cg/autograd';
import type { Norm } from '../options.js';
import { type BuildContext, normLayer, useBias } from './norm_layer.js';

export interface ResnetGeneratorOptions {
  input_nc: number;
  output_nc: number;
  ngf?: number;
  norm?: Norm;
  use_dropout?: boolean;
  n_blocks?: number;
}

/**
 * networks.ResnetBlock: x + conv_block(x), conv_block = [pad, conv, norm,
 * ReLU, (Dropout 0.5), pad, conv, norm]. The dropout layer shifts the second
 * conv's key from conv_block.5 to conv_block.6, exactly as in PyTorch.
 */
export class ResnetBlock extends nn.Module {
  readonly conv_block: nn.Sequential;

  constructor(dim: number, norm: Norm, useDropout: boolean, ctx: BuildContext) {
    super();
    const bias = useBias(norm);
    const layers: nn.Module[] = [
      new nn.ReflectionPad2d(1),
      new nn.Conv2d(dim, dim, 3, { padding: 0, bias, device: ctx.device, rng: ctx.rng }),
      normLayer(norm, dim, ctx),
      new nn.ReLU(),
    ];
    if (useDropout) layers.push(new nn.Dropout(0.5, { rng: ctx.rng }));
    layers.push(
      new nn.ReflectionPad2d(1),
      new nn.Conv2d(dim, dim, 3, { padding: 0, bias, device: ctx.device, rng: ctx.rng }),
      normLayer(norm, dim, ctx),
    );
    this.conv_block = this.registerModule('conv_block', nn.Sequential.from(layers));
  }

  forward(x: Variable): Variable {
    // x + conv_block(x); with fusion on (nn/fusion.ts) the closing norm adds x in its own output write.
    return this.conv_block.forwardAdd(x, x);
  }
}

/**
 * networks.ResnetGenerator (Johnson et al.): reflect-pad 7×7 conv, two
 * stride-2 downsamplings, n_blocks residual blocks, two transposed-conv
 * upsamplings, reflect-pad 7×7 conv, tanh. Keys: model.1.weight …
 * model.10.conv_block.1.weight … model.26.bias for 9 blocks.
 */
export class ResnetGenerator extends nn.Module {
  readonly model: nn.Sequential;
  readonly options: Required<ResnetGeneratorOptions>;

  constructor(options: ResnetGeneratorOptions, ctx: BuildContext) {
    super();
    const o = { ngf: 64, norm: 'batch' as Norm, use_dropout: false, n_blocks: 6, ...options };
    this.options = o;
    const { input_nc, output_nc, ngf, norm } = o;
    const bias = useBias(norm);
    const dev = { device: ctx.device, rng: ctx.rng };
    const layers: nn.Module[] = [
      new nn.ReflectionPad2d(3),
      new nn.Conv2d(input_nc, ngf, 7, { padding: 0, bias, ...dev }),
      normLayer(norm, ngf, ctx),
      new nn.ReLU(),
    ];
    const nDown = 2;
    for (let i = 0; i < nDown; i++) {
      const mult = 2 ** i;
      layers.push(
        new nn.Conv2d(ngf * mult, ngf * mult * 2, 3, { stride: 2, padding: 1, bias, ...dev }),
        normLayer(norm, ngf * mult * 2, ctx),
        new nn.ReLU(),
      );
    }
    const mult = 2 ** nDown;
    for (let i = 0; i < o.n_blocks; i++) layers.push(new ResnetBlock(ngf * mult, norm, o.use_dropout, ctx));
    for (let i = 0; i < nDown; i++) {
      const m = 2 ** (nDown - i);
      layers.push(
        new nn.ConvTranspose2d(ngf * m, Math.floor((ngf * m) / 2), 3, {
          stride: 2,
          padding: 1,
          outputPadding: 1,
          bias,
          ...dev,
        }),
        normLayer(norm, Math.floor((ngf * m) / 2), ctx),
        new nn.ReLU(),
      );
    }
    layers.push(new nn.ReflectionPad2d(3), new nn.Conv2d(ngf, output_nc, 7, { padding: 0, ...dev }), new nn.Tanh());
    this.model = this.registerModule('model', nn.Sequential.from(layers));
  }

  forward(x: Variable): Variable {
    return this.model.forward(x);
  }
}
