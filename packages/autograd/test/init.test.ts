import { type Device, Rng, Tensor } from '@cg/tensor-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { testDevice } from '../../../test/helpers/device.js';
import * as init from '../src/nn/init.js';

let device: Device;
beforeAll(async () => {
  device = await testDevice();
});

function stats(x: Float32Array): { mean: number; std: number } {
  let s = 0;
  for (const v of x) s += v;
  const mean = s / x.length;
  let q = 0;
  for (const v of x) q += (v - mean) ** 2;
  return { mean, std: Math.sqrt(q / x.length) };
}

async function sample(shape: number[], fill: (t: Tensor) => void): Promise<Float32Array> {
  const t = Tensor.empty(device, shape);
  fill(t);
  const data = await t.toArray();
  t.dispose();
  return data;
}

describe('nn.init', () => {
  const shape = [128, 64, 3, 3]; // fan_in 576, fan_out 1152, 73 728 values
  const rel = (got: number, want: number) => Math.abs(got / want - 1);

  it('normal_ has the requested mean and std', async () => {
    const s = stats(await sample(shape, (t) => init.normal_(t, 0.5, 0.02, new Rng(1))));
    expect(Math.abs(s.mean - 0.5)).toBeLessThan(0.001);
    expect(rel(s.std, 0.02)).toBeLessThan(0.02);
  });

  it('xavierNormal_ std = gain·√(2/(fan_in+fan_out))', async () => {
    const s = stats(await sample(shape, (t) => init.xavierNormal_(t, 0.02, new Rng(2))));
    expect(rel(s.std, 0.02 * Math.sqrt(2 / (576 + 1152)))).toBeLessThan(0.02);
  });

  it('kaimingNormal_ std = √2/√fan (a = 0), both modes', async () => {
    const a = stats(await sample(shape, (t) => init.kaimingNormal_(t, { a: 0, mode: 'fan_in' }, new Rng(3))));
    expect(rel(a.std, Math.sqrt(2 / 576))).toBeLessThan(0.02);
    const b = stats(await sample(shape, (t) => init.kaimingNormal_(t, { mode: 'fan_out' }, new Rng(4))));
    expect(rel(b.std, Math.sqrt(2 / 1152))).toBeLessThan(0.02);
  });

  it('xavierUniform_ and kaimingUniform_ stay within their bounds', async () => {
    const bound = Math.sqrt(6 / (576 + 1152));
    const x = await sample(shape, (t) => init.xavierUniform_(t, 1, new Rng(5)));
    expect(Math.max(...x.map(Math.abs))).toBeLessThanOrEqual(bound * (1 + 1e-6));
    expect(rel(stats(x).std, bound / Math.sqrt(3))).toBeLessThan(0.02);
    const k = await sample(shape, (t) => init.kaimingUniform_(t, { a: Math.sqrt(5) }, new Rng(6)));
    expect(Math.max(...k.map(Math.abs))).toBeLessThanOrEqual((1 / Math.sqrt(576)) * (1 + 1e-6));
  });

  it('constant_, zeros_, ones_', async () => {
    expect(Array.from(await sample([3], (t) => init.constant_(t, 0.25)))).toEqual([0.25, 0.25, 0.25]);
    expect(Array.from(await sample([2], (t) => init.zeros_(t)))).toEqual([0, 0]);
    expect(Array.from(await sample([2], (t) => init.ones_(t)))).toEqual([1, 1]);
  });

  for (const [label, s, gain] of [
    ['wide conv weight [32,16,3,3] → W·Wᵀ = I', [32, 16, 3, 3], 1],
    ['tall matrix [96,20] → Wᵀ·W = I', [96, 20], 1],
    ['square with gain 0.5', [24, 24], 0.5],
  ] as const) {
    it(`orthogonal_: ${label}`, async () => {
      const w = await sample([...s], (t) => init.orthogonal_(t, gain, new Rng(9)));
      const rows = s[0];
      const cols = w.length / rows;
      // Gram matrix of the shorter side.
      const n = Math.min(rows, cols);
      const at = (i: number, j: number) => (rows <= cols ? w[i * cols + j] : w[j * cols + i]);
      const len = Math.max(rows, cols);
      let worst = 0;
      for (let i = 0; i < n; i++) {
        for (let j = 0; j < n; j++) {
          let dot = 0;
          for (let k = 0; k < len; k++) dot += at(i, k) * at(j, k);
          worst = Math.max(worst, Math.abs(dot - (i === j ? gain * gain : 0)));
        }
      }
      expect(worst).toBeLessThan(1e-5);
    });
  }

  it('fans follow PyTorch (dim 1 in, dim 0 out, times the receptive field) and reject 1-D', () => {
    expect(init.fans([8, 4, 3, 3])).toEqual({ fanIn: 36, fanOut: 72 });
    expect(() => init.fans([5])).toThrow(/at least 2 dimensions/);
  });
});
