import { type DataOptions, DEFAULT_DATA_OPTIONS, validateDataOptions } from './data/options.js';
import { OptionError } from './errors.js';

export const GENERATORS = ['resnet_9blocks', 'resnet_6blocks', 'unet_256', 'unet_128'] as const;
export const DISCRIMINATORS = ['basic', 'n_layers', 'pixel'] as const;
export const NORMS = ['instance', 'batch', 'none'] as const;
export const INIT_TYPES = ['normal', 'xavier', 'kaiming', 'orthogonal'] as const;
export const GAN_MODES = ['lsgan', 'vanilla', 'wgangp'] as const;
export const LR_POLICIES = ['linear', 'step', 'cosine'] as const;

export type NetG = (typeof GENERATORS)[number];
export type NetD = (typeof DISCRIMINATORS)[number];
export type Norm = (typeof NORMS)[number];
export type InitType = (typeof INIT_TYPES)[number];
export type GanMode = (typeof GAN_MODES)[number];
export type LrPolicy = (typeof LR_POLICIES)[number];

/** Network options, named and defaulted as the official base options with CycleGAN's overrides. */
export interface ModelOptions {
  input_nc: 1 | 3;
  output_nc: 1 | 3;
  ngf: number;
  ndf: number;
  netG: NetG;
  netD: NetD;
  n_layers_D: number;
  norm: Norm;
  init_type: InitType;
  init_gain: number;
  /** CycleGAN sets no_dropout=True by default (cycle_gan_model.py). */
  no_dropout: boolean;
}

/** Everything `train` takes: data + model + the official train options. */
export interface TrainOptions extends DataOptions, ModelOptions {
  name: string;
  checkpoints_dir: string;
  gan_mode: GanMode;
  lambda_A: number;
  lambda_B: number;
  lambda_identity: number;
  pool_size: number;
  lr: number;
  beta1: number;
  lr_policy: LrPolicy;
  lr_decay_iters: number;
  n_epochs: number;
  n_epochs_decay: number;
  epoch_count: number;
  continue_train: boolean;
  epoch: string;
  display_freq: number;
  print_freq: number;
  save_latest_freq: number;
  save_epoch_freq: number;
  save_by_iter: boolean;
  /** Checkpoint format for networks: ours (safetensors) or PyTorch (.pth, zip format). */
  checkpoint_format: 'safetensors' | 'pth';
}

export const DEFAULT_MODEL_OPTIONS: ModelOptions = {
  input_nc: 3,
  output_nc: 3,
  ngf: 64,
  ndf: 64,
  netG: 'resnet_9blocks',
  netD: 'basic',
  n_layers_D: 3,
  norm: 'instance',
  init_type: 'normal',
  init_gain: 0.02,
  no_dropout: true,
};

export const DEFAULT_TRAIN_OPTIONS: Omit<TrainOptions, 'dataroot'> = {
  ...DEFAULT_DATA_OPTIONS,
  ...DEFAULT_MODEL_OPTIONS,
  name: 'experiment_name',
  checkpoints_dir: './checkpoints',
  gan_mode: 'lsgan',
  lambda_A: 10,
  lambda_B: 10,
  lambda_identity: 0.5,
  pool_size: 50,
  lr: 0.0002,
  beta1: 0.5,
  lr_policy: 'linear',
  lr_decay_iters: 50,
  n_epochs: 100,
  n_epochs_decay: 100,
  epoch_count: 1,
  continue_train: false,
  epoch: 'latest',
  display_freq: 400,
  print_freq: 100,
  save_latest_freq: 5000,
  save_epoch_freq: 5,
  save_by_iter: false,
  checkpoint_format: 'safetensors',
};

function oneOf<T extends string>(bad: string[], name: string, v: string, allowed: readonly T[]): void {
  if (!allowed.includes(v as T)) bad.push(`--${name} must be one of ${allowed.join(', ')} (got ${v})`);
}

/** Throws one OptionError naming every bad network option. */
export function validateModelOptions(o: ModelOptions, bad: string[] = []): void {
  // Besides the official names, resnet_<n>blocks and unet_<n>downs build the same families at other depths.
  if (!/^resnet_\d+blocks$|^unet_\d+downs$/.test(o.netG)) oneOf(bad, 'netG', o.netG, GENERATORS);
  oneOf(bad, 'netD', o.netD, DISCRIMINATORS);
  oneOf(bad, 'norm', o.norm, NORMS);
  oneOf(bad, 'init_type', o.init_type, INIT_TYPES);
  for (const k of ['ngf', 'ndf', 'n_layers_D'] as const) {
    if (!Number.isInteger(o[k]) || o[k] < 1) bad.push(`--${k} must be a positive integer (got ${o[k]})`);
  }
  if (!(o.init_gain > 0)) bad.push(`--init_gain must be positive (got ${o.init_gain})`);
  if (bad.length) throw new OptionError(`invalid options:\n  ${bad.join('\n  ')}`);
}

/** Smallest image side a generator takes, and the multiple its sides must be. */
export function generatorSizeRule(netG: NetG): { multiple: number; min: number } {
  switch (netG) {
    case 'unet_256':
      return { multiple: 256, min: 256 };
    case 'unet_128':
      return { multiple: 128, min: 128 };
    default:
      // Two stride-2 downsamplings and two ×2 transposed convolutions.
      return { multiple: 4, min: 4 };
  }
}

export function resolveTrainOptions(opts: Partial<TrainOptions> & { dataroot: string }): TrainOptions {
  const o: TrainOptions = {
    ...DEFAULT_TRAIN_OPTIONS,
    ...(Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)) as Partial<TrainOptions>),
    dataroot: opts.dataroot,
  };
  const bad: string[] = [];
  validateDataOptions(o, bad);
  oneOf(bad, 'gan_mode', o.gan_mode, GAN_MODES);
  oneOf(bad, 'lr_policy', o.lr_policy, LR_POLICIES);
  for (const k of ['lambda_A', 'lambda_B', 'lambda_identity', 'pool_size'] as const) {
    if (!(o[k] >= 0)) bad.push(`--${k} must be ≥ 0 (got ${o[k]})`);
  }
  for (const k of ['n_epochs', 'n_epochs_decay'] as const) {
    if (!Number.isInteger(o[k]) || o[k] < 0) bad.push(`--${k} must be an integer ≥ 0 (got ${o[k]})`);
  }
  if (!Number.isInteger(o.epoch_count) || o.epoch_count < 1)
    bad.push(`--epoch_count must be an integer ≥ 1 (got ${o.epoch_count})`);
  if (!(o.lr > 0)) bad.push(`--lr must be positive (got ${o.lr})`);
  if (!(o.beta1 >= 0 && o.beta1 < 1)) bad.push(`--beta1 must be in [0, 1) (got ${o.beta1})`);
  if (o.lambda_identity > 0 && o.input_nc !== o.output_nc) {
    bad.push(
      `--lambda_identity > 0 needs input_nc == output_nc (got ${o.input_nc} and ${o.output_nc}); set --lambda_identity 0`,
    );
  }
  const rule = generatorSizeRule(o.netG);
  if (o.preprocess !== 'none' && o.preprocess !== 'scale_width' && o.crop_size % rule.multiple !== 0) {
    bad.push(
      `--netG ${o.netG} needs images whose sides are multiples of ${rule.multiple}; --crop_size ${o.crop_size} is not`,
    );
  }
  validateModelOptions(o, bad);
  return o;
}
