import { F, nn, type Variable } from '@cg/autograd';
import type { Norm } from '../options.js';
import { type BuildContext, normLayer, useBias } from './norm_layer.js';

interface BlockOptions {
  input_nc?: number;
  submodule?: UnetSkipConnectionBlock;
  outermost?: boolean;
  innermost?: boolean;
  norm: Norm;
  use_dropout?: boolean;
}

/**
 * networks.UnetSkipConnectionBlock: down (LeakyReLU, conv 4×4 s2, norm),
 * the submodule, up (ReLU, transposed conv 4×4 s2, norm), and the skip
 * concatenation along channels.
 *
 * Faithful quirk: the official down path starts with an in-place
 * LeakyReLU(0.2), which overwrites `x` before `torch.cat([x, model(x)], 1)`
 * reads it, so the skip carries leaky_relu(x), not x. Official checkpoints
 * were trained with that, so we reproduce it.
 */
export class UnetSkipConnectionBlock extends nn.Module {
  readonly model: nn.Sequential;
  private readonly outermost: boolean;
  private readonly innermost: boolean;

  constructor(outer_nc: number, inner_nc: number, o: BlockOptions, ctx: BuildContext) {
    super();
    this.outermost = o.outermost ?? false;
    this.innermost = o.innermost ?? false;
    const bias = useBias(o.norm);
    const dev = { device: ctx.device, rng: ctx.rng };
    const input_nc = o.input_nc ?? outer_nc;
    const downconv = new nn.Conv2d(input_nc, inner_nc, 4, { stride: 2, padding: 1, bias, ...dev });
    const up = (inC: number, withBias: boolean) =>
      new nn.ConvTranspose2d(inC, outer_nc, 4, { stride: 2, padding: 1, bias: withBias, ...dev });
    let layers: nn.Module[];
    if (this.outermost) {
      layers = [downconv, o.submodule!, new nn.ReLU(), up(inner_nc * 2, true), new nn.Tanh()];
    } else if (this.innermost) {
      layers = [new nn.LeakyReLU(0.2), downconv, new nn.ReLU(), up(inner_nc, bias), normLayer(o.norm, outer_nc, ctx)];
    } else {
      layers = [
        new nn.LeakyReLU(0.2),
        downconv,
        normLayer(o.norm, inner_nc, ctx),
        o.submodule!,
        new nn.ReLU(),
        up(inner_nc * 2, bias),
        normLayer(o.norm, outer_nc, ctx),
      ];
      if (o.use_dropout) layers.push(new nn.Dropout(0.5, { rng: ctx.rng }));
    }
    this.model = this.registerModule('model', nn.Sequential.from(layers));
  }

  forward(x: Variable): Variable {
    if (this.outermost) return this.model.forward(x);
    // model[0] is the LeakyReLU; applying it once and reusing it is the in-place semantics.
    const skip = this.model.at(0).forward(x);
    return F.concat([skip, this.model.forwardRange(skip, 1)], 1);
  }
}

export interface UnetGeneratorOptions {
  input_nc: number;
  output_nc: number;
  num_downs: number;
  ngf?: number;
  norm?: Norm;
  use_dropout?: boolean;
}

/**
 * networks.UnetGenerator: built from the innermost block outwards. With
 * num_downs = 8 (unet_256) a 256×256 input reaches 1×1 at the bottleneck, so
 * image sides must be multiples of 2^num_downs.
 */
export class UnetGenerator extends nn.Module {
  readonly model: UnetSkipConnectionBlock;
  readonly options: Required<UnetGeneratorOptions>;

  constructor(options: UnetGeneratorOptions, ctx: BuildContext) {
    super();
    const o = { ngf: 64, norm: 'batch' as Norm, use_dropout: false, ...options };
    this.options = o;
    const { ngf, norm } = o;
    let block = new UnetSkipConnectionBlock(ngf * 8, ngf * 8, { innermost: true, norm }, ctx);
    for (let i = 0; i < o.num_downs - 5; i++) {
      block = new UnetSkipConnectionBlock(
        ngf * 8,
        ngf * 8,
        { submodule: block, norm, use_dropout: o.use_dropout },
        ctx,
      );
    }
    block = new UnetSkipConnectionBlock(ngf * 4, ngf * 8, { submodule: block, norm }, ctx);
    block = new UnetSkipConnectionBlock(ngf * 2, ngf * 4, { submodule: block, norm }, ctx);
    block = new UnetSkipConnectionBlock(ngf, ngf * 2, { submodule: block, norm }, ctx);
    this.model = this.registerModule(
      'model',
      new UnetSkipConnectionBlock(
        o.output_nc,
        ngf,
        { input_nc: o.input_nc, submodule: block, outermost: true, norm },
        ctx,
      ),
    );
  }

  forward(x: Variable): Variable {
    return this.model.forward(x);
  }
}
