import { nn } from '@cg/autograd';
import type { Device, Rng } from '@cg/tensor-core';
import type { Norm } from '../options.js';

export interface BuildContext {
  device: Device;
  /** Draws layer init and dropout seeds; init_weights re-initialises afterwards as the official code does. */
  rng: Rng;
}

/** networks.get_norm_layer: BatchNorm2d(affine, tracked) | InstanceNorm2d(no affine, untracked) | Identity. */
export function normLayer(norm: Norm, channels: number, ctx: BuildContext): nn.Module {
  switch (norm) {
    case 'batch':
      return new nn.BatchNorm2d(channels, { affine: true, trackRunningStats: true, device: ctx.device });
    case 'instance':
      return new nn.InstanceNorm2d(channels, { affine: false, trackRunningStats: false, device: ctx.device });
    case 'none':
      return new nn.Identity();
  }
}

/**
 * The official `use_bias` rule: convolutions before a norm have a bias only
 * with instance norm (BatchNorm has its own shift; with norm 'none' the
 * official check `norm_layer == nn.InstanceNorm2d` is also false).
 */
export function useBias(norm: Norm): boolean {
  return norm === 'instance';
}
