import { CheckpointError } from '../errors.js';
import type { ShapeMap } from '../infer.js';
import type { Norm } from '../options.js';
import type { DiscriminatorSpec, ExportOnnxOptions } from './options.js';

/** The official discriminators' keys: `model.<i>.*` (NLayerDiscriminator) or `net.<i>.*` (PixelDiscriminator). */
export function looksLikeDiscriminator(sd: ShapeMap): boolean {
  const nl = sd.get('model.0.weight')?.shape;
  const px = sd.get('net.0.weight')?.shape;
  return (nl?.length === 4 && nl[2] === 4 && nl[3] === 4) || (px?.length === 4 && px[2] === 1 && px[3] === 1);
}

/** BatchNorm keeps running statistics; instance norm makes the conv before it keep its bias; 'none' has neither. */
function normFrom(sd: ShapeMap, normKey: string, convKey: string): Norm {
  if (sd.has(`${normKey}.running_mean`) && sd.has(`${normKey}.weight`)) return 'batch';
  return sd.has(`${convKey}.bias`) ? 'instance' : 'none';
}

/**
 * A discriminator's architecture from its state dict: ndf and input_nc from the first conv, n_layers
 * from the number of convs (n_layers + 2), norm from the keys; `options` override each. Keys that do
 * not fit are reported later, when the graph is built.
 */
export function inferDiscriminator(sd: ShapeMap, options: ExportOnnxOptions, source: string): DiscriminatorSpec {
  const pixel = options.netD === 'pixel' || (options.netD === undefined && sd.has('net.0.weight'));
  const firstKey = pixel ? 'net.0.weight' : 'model.0.weight';
  const first = sd.get(firstKey)?.shape;
  if (first?.length !== 4) {
    const want = pixel ? "'net.0.weight' [ndf, input_nc, 1, 1] (pixel)" : "'model.0.weight' [ndf, input_nc, 4, 4]";
    const keys = [...sd.keys()].slice(0, 6).join(', ');
    throw new CheckpointError(
      `${source}: not a CycleGAN ${pixel ? 'pixel' : 'PatchGAN'} discriminator state_dict: expected ${want}; ` +
        `found keys ${keys}${sd.size > 6 ? ', …' : ''}. Pass --netD to say which discriminator it is, or a generator file.`,
    );
  }
  const ndf = options.ndf ?? first[0];
  const input_nc = first[1];
  if (pixel) return { kind: 'pixel', input_nc, ndf, norm: options.norm ?? normFrom(sd, 'net.3', 'net.2') };
  let convs = 0;
  for (const [k, t] of sd) if (/^model\.\d+\.weight$/.test(k) && t.shape.length === 4) convs++;
  const n_layers = options.netD === 'basic' ? 3 : (options.n_layers_D ?? Math.max(1, convs - 2));
  return { kind: 'n_layers', input_nc, ndf, n_layers, norm: options.norm ?? normFrom(sd, 'model.3', 'model.2') };
}
