import type { Device } from '@cg/tensor-core';
import { ShapeError, Tensor, tidy } from '@cg/tensor-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { expectClose, randomArray } from '../../../test/helpers/compare.js';
import { testDevice } from '../../../test/helpers/device.js';
import { CONV_STRATEGIES } from '../src/ops/conv_strategy.js';
import { matmul, matmulRef } from '../src/ops/matmul.js';

let device: Device;
beforeAll(async () => {
  device = await testDevice();
});

/**
 * [M, K, N]: one element; sizes that are not multiples of 4 (the register
 * kernel reads vec4s and falls back to the tiled one); partial row blocks
 * and column lanes; several workgroups along both axes; long K.
 * Tolerance: sums of K products of values in [-1, 1], rtol = 3e-6·√K.
 */
const SHAPES: [number, number, number][] = [
  [1, 1, 1],
  [3, 5, 7],
  [4, 4, 4],
  [5, 12, 8],
  [33, 20, 36],
  [70, 16, 132],
  [20, 300, 20],
  [2, 1000, 4],
];

describe('matmul vs float64 reference', () => {
  for (const strategy of CONV_STRATEGIES) {
    for (const [M, K, N] of SHAPES) {
      it(`[${M},${K}]·[${K},${N}] [${strategy}]`, async () => {
        const a = randomArray(M * K, M * 7 + K);
        const b = randomArray(K * N, N * 13 + K);
        const c = tidy(() =>
          matmul(Tensor.fromArray(device, a, [M, K]), Tensor.fromArray(device, b, [K, N]), { strategy }),
        );
        expect(c.shape).toEqual([M, N]);
        expectClose(await c.toArray(), matmulRef(a, b, M, K, N).data, {
          rtol: 3e-6 * Math.sqrt(K),
          atol: 1e-6,
          label: `matmul ${M}x${K}x${N}`,
        });
        c.dispose();
      });
    }
  }

  it('K = 0 gives zeros', async () => {
    const c = tidy(() => matmul(Tensor.zeros(device, [3, 0]), Tensor.zeros(device, [0, 4])));
    expect(Array.from(await c.toArray())).toEqual(new Array(12).fill(0));
    c.dispose();
  });

  it('rejects mismatched inner dimensions and wrong ranks', () => {
    tidy(() => {
      const a = Tensor.zeros(device, [2, 3]);
      expect(() => matmul(a, Tensor.zeros(device, [4, 5]))).toThrow(ShapeError);
      expect(() => matmul(a, Tensor.zeros(device, [4, 5]))).toThrow(
        /^matmul: inner dimensions differ \(expected b \[3, N\], got a \[2,3\], b \[4,5\]\)$/,
      );
      expect(() => matmul(a, Tensor.zeros(device, [3]))).toThrow(/matmul: b must have rank 2/);
    });
  });
});
