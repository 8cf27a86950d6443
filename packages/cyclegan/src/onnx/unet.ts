import type { GeneratorSpec } from '../infer.js';
import { useBias } from '../networks/norm_layer.js';
import { conv2d, convTranspose2d, type Layers, leakyRelu, norm2d, relu, tanh } from './layers.js';

interface Block {
  outer: number;
  inner: number;
  input: number;
}

/**
 * networks.UnetGenerator as ONNX, as unet_generator.ts runs it. Blocks are listed outermost first;
 * block d's layers live under `model.` + `model.1.`/`model.3.` repeated (the submodule's index in its
 * parent's Sequential), and every non-outermost block returns Concat(leaky_relu(x), up(…)): the skip
 * carries the LeakyReLU'd input, the official in-place quirk our forward reproduces.
 */
export function unetGraph(l: Layers, x: string, spec: GeneratorSpec): string {
  const { ngf, norm } = spec;
  const downs = spec.num_downs ?? 8;
  const blocks: Block[] = [
    { outer: spec.output_nc, inner: ngf, input: spec.input_nc },
    { outer: ngf, inner: ngf * 2, input: ngf },
    { outer: ngf * 2, inner: ngf * 4, input: ngf * 2 },
    { outer: ngf * 4, inner: ngf * 8, input: ngf * 4 },
  ];
  for (let i = 0; i < downs - 5; i++) blocks.push({ outer: ngf * 8, inner: ngf * 8, input: ngf * 8 });
  blocks.push({ outer: ngf * 8, inner: ngf * 8, input: ngf * 8 });
  const bias = useBias(norm);

  const block = (d: number, x: string, prefix: string): string => {
    const b = blocks[d];
    const at = (i: number) => `${prefix}.model.${i}`;
    const down = { inC: b.input, outC: b.inner, k: 4, stride: 2, padding: 1, bias };
    const up = (inC: number, withBias: boolean) =>
      ({ inC, outC: b.outer, k: 4, stride: 2, padding: 1, outputPadding: 0, bias: withBias }) as const;
    if (d === 0) {
      // [downconv, submodule, ReLU, upconv, Tanh], no skip.
      let h = conv2d(l, x, at(0), down);
      h = block(1, h, at(1));
      h = convTranspose2d(l, relu(l, h, at(2)), at(3), up(b.inner * 2, true));
      return tanh(l, h, at(4));
    }
    const skip = leakyRelu(l, x, at(0));
    let h = conv2d(l, skip, at(1), down);
    if (d === blocks.length - 1) {
      // innermost: [LeakyReLU, downconv, ReLU, upconv, norm]
      h = convTranspose2d(l, relu(l, h, at(2)), at(3), up(b.inner, bias));
      h = norm2d(l, h, norm, at(4), b.outer);
    } else {
      // [LeakyReLU, downconv, norm, submodule, ReLU, upconv, norm, (Dropout: identity in eval)]
      h = norm2d(l, h, norm, at(2), b.inner);
      h = block(d + 1, h, at(3));
      h = convTranspose2d(l, relu(l, h, at(4)), at(5), up(b.inner * 2, bias));
      h = norm2d(l, h, norm, at(6), b.outer);
    }
    return l.g.node('Concat', [skip, h], { axis: 1 }, `${prefix}/cat`);
  };
  return block(0, x, 'model');
}

/** Whether the spec's U-Net has Dropout layers (the middle 8·ngf blocks when use_dropout). */
export function unetHasDropout(spec: GeneratorSpec): boolean {
  return spec.use_dropout && (spec.num_downs ?? 8) > 5;
}
