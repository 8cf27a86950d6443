import { F, type Variable } from '@cg/autograd';
import type { GanMode } from './options.js';

/**
 * networks.GANLoss. lsgan: MSE to 1 (real) / 0 (fake); vanilla: BCE with
 * logits, the log-loss of the original GAN; wgangp: −mean(D) for real,
 * mean(D) for fake (CycleGAN applies no gradient penalty in this mode, as
 * the official cycle_gan_model does not call cal_gradient_penalty).
 */
export function ganLoss(mode: GanMode, prediction: Variable, targetIsReal: boolean): Variable {
  switch (mode) {
    case 'lsgan':
      return F.mseLoss(prediction, targetIsReal ? 1 : 0);
    case 'vanilla':
      return F.bceWithLogitsLoss(prediction, targetIsReal ? 1 : 0);
    case 'wgangp': {
      const m = F.mean(prediction);
      return targetIsReal ? F.neg(m) : m;
    }
  }
}

/** λ·‖a − b‖₁ (mean), the cycle and identity losses. */
export function weightedL1(a: Variable, b: Variable, weight: number): Variable {
  return F.scale(F.l1Loss(a, b), weight);
}
