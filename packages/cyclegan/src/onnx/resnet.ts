import type { GeneratorSpec } from '../infer.js';
import { useBias } from '../networks/norm_layer.js';
import { conv2d, convTranspose2d, type Layers, norm2d, reflectionPad2d, relu, tanh } from './layers.js';

/**
 * networks.ResnetGenerator as ONNX, layer for layer as resnet_generator.ts builds it. `index()` hands
 * out the nn.Sequential positions, so identity norms and dropout shift the keys exactly as in torch.
 */
export function resnetGraph(l: Layers, x: string, spec: GeneratorSpec): string {
  const { input_nc, output_nc, ngf, norm } = spec;
  const bias = useBias(norm);
  let i = 0;
  const at = () => `model.${i++}`;
  let h = reflectionPad2d(l, x, 3, at());
  h = conv2d(l, h, at(), { inC: input_nc, outC: ngf, k: 7, bias });
  h = relu(l, norm2d(l, h, norm, at(), ngf), at());
  for (const mult of [1, 2]) {
    h = conv2d(l, h, at(), { inC: ngf * mult, outC: ngf * mult * 2, k: 3, stride: 2, padding: 1, bias });
    h = relu(l, norm2d(l, h, norm, at(), ngf * mult * 2), at());
  }
  const dim = ngf * 4;
  for (let b = 0; b < (spec.n_blocks ?? 6); b++) {
    const block = at();
    let j = 0;
    const cb = () => `${block}.conv_block.${j++}`;
    let r = reflectionPad2d(l, h, 1, cb());
    r = conv2d(l, r, cb(), { inC: dim, outC: dim, k: 3, bias });
    r = relu(l, norm2d(l, r, norm, cb(), dim), cb());
    if (spec.use_dropout) cb(); // Dropout(0.5): the identity in eval mode (train mode is refused before)
    r = reflectionPad2d(l, r, 1, cb());
    r = conv2d(l, r, cb(), { inC: dim, outC: dim, k: 3, bias });
    r = norm2d(l, r, norm, cb(), dim);
    h = l.g.node('Add', [h, r], {}, block);
  }
  for (const mult of [4, 2]) {
    const out = Math.floor((ngf * mult) / 2);
    const o = { inC: ngf * mult, outC: out, k: 3, stride: 2, padding: 1, outputPadding: 1, bias };
    h = convTranspose2d(l, h, at(), o);
    h = relu(l, norm2d(l, h, norm, at(), out), at());
  }
  h = reflectionPad2d(l, h, 3, at());
  h = conv2d(l, h, at(), { inC: ngf, outC: output_nc, k: 7, bias: true });
  return tanh(l, h, at());
}
