import { useBias } from '../networks/norm_layer.js';
import { conv2d, type Layers, leakyRelu, norm2d } from './layers.js';
import type { DiscriminatorSpec } from './options.js';

/** networks.NLayerDiscriminator (PatchGAN) or networks.PixelDiscriminator as ONNX, as discriminators.ts builds them. */
export function discriminatorGraph(l: Layers, x: string, spec: DiscriminatorSpec): string {
  const { input_nc, ndf, norm } = spec;
  const bias = useBias(norm);
  if (spec.kind === 'pixel') {
    let h = leakyRelu(l, conv2d(l, x, 'net.0', { inC: input_nc, outC: ndf, k: 1, bias: true }), 'net.1');
    h = conv2d(l, h, 'net.2', { inC: ndf, outC: ndf * 2, k: 1, bias });
    h = leakyRelu(l, norm2d(l, h, norm, 'net.3', ndf * 2), 'net.4');
    return conv2d(l, h, 'net.5', { inC: ndf * 2, outC: 1, k: 1, bias });
  }
  let i = 0;
  const at = () => `model.${i++}`;
  let h = conv2d(l, x, at(), { inC: input_nc, outC: ndf, k: 4, stride: 2, padding: 1, bias: true });
  h = leakyRelu(l, h, at());
  const n_layers = spec.n_layers ?? 3;
  let mult = 1;
  let prev = 1;
  for (let n = 1; n < n_layers; n++) {
    prev = mult;
    mult = Math.min(2 ** n, 8);
    h = conv2d(l, h, at(), { inC: ndf * prev, outC: ndf * mult, k: 4, stride: 2, padding: 1, bias });
    h = leakyRelu(l, norm2d(l, h, norm, at(), ndf * mult), at());
  }
  prev = mult;
  mult = Math.min(2 ** n_layers, 8);
  h = conv2d(l, h, at(), { inC: ndf * prev, outC: ndf * mult, k: 4, stride: 1, padding: 1, bias });
  h = leakyRelu(l, norm2d(l, h, norm, at(), ndf * mult), at());
  return conv2d(l, h, at(), { inC: ndf * mult, outC: 1, k: 4, stride: 1, padding: 1, bias: true });
}
