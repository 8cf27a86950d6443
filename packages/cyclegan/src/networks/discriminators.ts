import { nn, type Variable } from '@cg/autograd';
import type { Norm } from '../options.js';
import { type BuildContext, normLayer, useBias } from './norm_layer.js';

export interface NLayerDiscriminatorOptions {
  input_nc: number;
  ndf?: number;
  n_layers?: number;
  norm?: Norm;
}

/**
 * networks.NLayerDiscriminator: the PatchGAN. With n_layers = 3 ('basic')
 * each output judges a 70×70 patch. 4×4 convs, stride 2 except the last two.
 */
export class NLayerDiscriminator extends nn.Module {
  readonly model: nn.Sequential;

  constructor(options: NLayerDiscriminatorOptions, ctx: BuildContext) {
    super();
    const { input_nc, ndf = 64, n_layers = 3, norm = 'batch' } = options;
    const bias = useBias(norm);
    const dev = { device: ctx.device, rng: ctx.rng };
    const layers: nn.Module[] = [
      new nn.Conv2d(input_nc, ndf, 4, { stride: 2, padding: 1, ...dev }),
      new nn.LeakyReLU(0.2),
    ];
    let mult = 1;
    let prev = 1;
    for (let n = 1; n < n_layers; n++) {
      prev = mult;
      mult = Math.min(2 ** n, 8);
      layers.push(
        new nn.Conv2d(ndf * prev, ndf * mult, 4, { stride: 2, padding: 1, bias, ...dev }),
        normLayer(norm, ndf * mult, ctx),
        new nn.LeakyReLU(0.2),
      );
    }
    prev = mult;
    mult = Math.min(2 ** n_layers, 8);
    layers.push(
      new nn.Conv2d(ndf * prev, ndf * mult, 4, { stride: 1, padding: 1, bias, ...dev }),
      normLayer(norm, ndf * mult, ctx),
      new nn.LeakyReLU(0.2),
      new nn.Conv2d(ndf * mult, 1, 4, { stride: 1, padding: 1, ...dev }),
    );
    this.model = this.registerModule('model', nn.Sequential.from(layers));
  }

  forward(x: Variable): Variable {
    return this.model.forward(x);
  }
}

/** networks.PixelDiscriminator: a 1×1 PatchGAN that judges each pixel. */
export class PixelDiscriminator extends nn.Module {
  readonly net: nn.Sequential;

  constructor(options: { input_nc: number; ndf?: number; norm?: Norm }, ctx: BuildContext) {
    super();
    const { input_nc, ndf = 64, norm = 'batch' } = options;
    const bias = useBias(norm);
    const dev = { device: ctx.device, rng: ctx.rng };
    this.net = this.registerModule(
      'net',
      new nn.Sequential(
        new nn.Conv2d(input_nc, ndf, 1, { ...dev }),
        new nn.LeakyReLU(0.2),
        new nn.Conv2d(ndf, ndf * 2, 1, { bias, ...dev }),
        normLayer(norm, ndf * 2, ctx),
        new nn.LeakyReLU(0.2),
        new nn.Conv2d(ndf * 2, 1, 1, { bias, ...dev }),
      ),
    );
  }

  forward(x: Variable): Variable {
    return this.net.forward(x);
  }
}
