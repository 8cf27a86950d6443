import { CheckpointError } from './errors.js';
import type { Norm } from './options.js';

/** What a generator state_dict says about the network that wrote it. */
export interface GeneratorSpec {
  kind: 'resnet' | 'unet';
  input_nc: number;
  output_nc: number;
  ngf: number;
  norm: Norm;
  use_dropout: boolean;
  /** Resnet: number of residual blocks (9 → resnet_9blocks). */
  n_blocks?: number;
  /** U-Net: number of downsamplings (8 → unet_256, 7 → unet_128). */
  num_downs?: number;
}

export type ShapeMap = ReadonlyMap<string, { shape: readonly number[] }>;

/** The official --netG name for a spec, when there is one. */
export function netGName(spec: GeneratorSpec): string {
  if (spec.kind === 'resnet') return `resnet_${spec.n_blocks}blocks`;
  return spec.num_downs === 8 ? 'unet_256' : spec.num_downs === 7 ? 'unet_128' : `unet_${spec.num_downs}downs`;
}

/**
 * Keys a generator state_dict may have: the largest accepted generator
 * (resnet_64blocks with batch norm and dropout) has about 800. Checked first,
 * so a crafted list of 150,000 keys costs nothing.
 */
export const MAX_GENERATOR_KEYS = 4096;

/**
 * Infers a generator's architecture from its state_dict keys and shapes, as
 * the official networks.py names them (`model.1.weight`, `model.10.conv_block.5.weight`,
 * `model.model.1.model.1...`). Throws a CheckpointError saying what is missing
 * when the keys fit neither generator. Loops only, no spreads into calls or
 * recursion: the key count and nesting come from the file.
 */
export function inferGenerator(sd: ShapeMap, source = 'checkpoint'): GeneratorSpec {
  if (sd.size > MAX_GENERATOR_KEYS) {
    throw new CheckpointError(
      `${source}: ${sd.size} keys are far more than a CycleGAN generator has (at most ${MAX_GENERATOR_KEYS}); ` +
        'pass a generator checkpoint such as latest_net_G_A.pth',
    );
  }
  const keys = [...sd.keys()];
  const shape = (k: string) => sd.get(k)?.shape;
  if (keys.some((k) => k.startsWith('model.model.'))) return inferUnet(sd, keys, source);
  const first = shape('model.1.weight');
  if (first?.length !== 4 || first[2] !== 7) {
    const sample = keys.slice(0, 6).join(', ');
    throw new CheckpointError(
      `${source}: not a CycleGAN generator state_dict: expected 'model.1.weight' of shape [ngf, input_nc, 7, 7] ` +
        `(resnet) or 'model.model.*' keys (U-Net); found keys ${sample}${keys.length > 6 ? ', …' : ''}. ` +
        'If this is a discriminator or a full training checkpoint, pass a generator file (e.g. latest_net_G_A.pth).',
    );
  }
  const blocks = new Set<number>();
  let firstBlock = Number.POSITIVE_INFINITY;
  let lastConv = 1;
  for (const k of keys) {
    const block = /^model\.(\d+)\.conv_block\./.exec(k);
    if (block) {
      const b = Number(block[1]);
      blocks.add(b);
      if (b < firstBlock) firstBlock = b;
    }
    const conv = /^model\.(\d+)\.weight$/.exec(k);
    if (conv && Number(conv[1]) > lastConv) lastConv = Number(conv[1]);
  }
  const dropout = shape(`model.${firstBlock}.conv_block.6.weight`)?.length === 4;
  const out = shape(`model.${lastConv}.weight`);
  if (out?.length !== 4) {
    throw new CheckpointError(
      `${source}: the last conv weight 'model.${lastConv}.weight' has shape [${out?.join(',')}], expected [output_nc, ngf, 7, 7]; the file is not a complete resnet generator`,
    );
  }
  const norm: Norm =
    sd.has('model.2.running_mean') && sd.has('model.2.weight') ? 'batch' : sd.has('model.1.bias') ? 'instance' : 'none';
  return {
    kind: 'resnet',
    input_nc: first[1],
    output_nc: out[0],
    ngf: first[0],
    norm,
    use_dropout: dropout,
    n_blocks: blocks.size,
  };
}

function inferUnet(sd: ShapeMap, keys: readonly string[], source: string): GeneratorSpec {
  // Each skip block nests one `model.` deeper; the outermost adds one more.
  let deepest = 0;
  for (const k of keys) {
    let n = 0;
    for (const part of k.split('.')) if (part === 'model') n++;
    if (n > deepest) deepest = n;
  }
  const first = sd.get('model.model.0.weight')?.shape;
  const last = sd.get('model.model.3.weight')?.shape;
  if (!first || !last || first.length !== 4 || last.length !== 4) {
    throw new CheckpointError(
      `${source}: looks like a U-Net generator but lacks model.model.0.weight / model.model.3.weight with 4-D shapes`,
    );
  }
  const inner = 'model.model.1.model.1';
  const norm: Norm =
    sd.has('model.model.1.model.2.running_mean') && sd.has('model.model.1.model.2.weight')
      ? 'batch'
      : sd.has(`${inner}.bias`)
        ? 'instance'
        : 'none';
  return {
    kind: 'unet',
    input_nc: first[1],
    output_nc: last[1],
    ngf: first[0],
    norm,
    use_dropout: false,
    num_downs: deepest - 1,
  };
}
