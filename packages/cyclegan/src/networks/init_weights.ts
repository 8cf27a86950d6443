import { nn } from '@cg/autograd';
import type { Rng } from '@cg/tensor-core';
import type { InitType } from '../options.js';

/**
 * networks.init_weights: conv and transposed-conv weights from the chosen
 * scheme (scaled by init_gain), their biases 0; BatchNorm weights N(1, gain),
 * biases 0. Other layers keep their defaults.
 */
export function initWeights(net: nn.Module, initType: InitType, gain: number, rng: Rng): void {
  net.apply((m) => {
    if (m instanceof nn.Conv2d || m instanceof nn.ConvTranspose2d) {
      switch (initType) {
        case 'normal':
          nn.init.normal_(m.weight, 0, gain, rng);
          break;
        case 'xavier':
          nn.init.xavierNormal_(m.weight, gain, rng);
          break;
        case 'kaiming':
          nn.init.kaimingNormal_(m.weight, { a: 0, mode: 'fan_in' }, rng);
          break;
        case 'orthogonal':
          nn.init.orthogonal_(m.weight, gain, rng);
          break;
      }
      if (m.bias) nn.init.constant_(m.bias, 0);
    } else if (m instanceof nn.BatchNorm2d && m.weight && m.bias) {
      nn.init.normal_(m.weight, 1, gain, rng);
      nn.init.constant_(m.bias, 0);
    }
  });
}
