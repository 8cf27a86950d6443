// The tiny but complete CycleGAN the training tests share: official structure, small widths, synthetic
// 16×16 domains in memory.
import { Rng } from '@cg/tensor-core';
import { MemoryImageSource, makeSyntheticDomains, type TrainOptions } from '../../src/index.js';

export function syntheticSource(n = 6, size = 16, seed = 3): MemoryImageSource {
  const d = makeSyntheticDomains(n, size, new Rng(seed));
  const s = new MemoryImageSource();
  s.addAll('data/trainA', d.A);
  s.addAll('data/trainB', d.B);
  return s;
}

export type TinyOptions = Partial<TrainOptions> & { dataroot: string };

/** Two epochs plus one of decay, resnet_2blocks ngf 4 and a two-layer D, lr 0.002 so losses move fast. */
export function tinyOptions(checkpoints_dir: string, name: string, extra: Partial<TrainOptions> = {}): TinyOptions {
  return {
    dataroot: 'data',
    name,
    checkpoints_dir,
    netG: 'resnet_2blocks' as TrainOptions['netG'],
    ngf: 4,
    ndf: 4,
    // 16×16 images are too small for the 70×70 'basic' PatchGAN (as in PyTorch); two layers fit.
    netD: 'n_layers',
    n_layers_D: 2,
    load_size: 18,
    crop_size: 16,
    n_epochs: 2,
    n_epochs_decay: 1,
    lr: 0.002,
    pool_size: 4,
    display_freq: 6,
    print_freq: 3,
    seed: 11,
    ...extra,
  };
}
