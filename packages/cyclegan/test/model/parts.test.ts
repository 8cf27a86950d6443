import { F, variable } from '@cg/autograd';
import { OptionError } from '@cg/cyclegan';
import { type Device, Rng, Tensor } from '@cg/tensor-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { testDevice } from '../../../../test/helpers/device.js';
import { ganLoss, ImagePool, learningRateAt, resolveTrainOptions, weightedL1 } from '../../src/index.js';

let device: Device;
beforeAll(async () => {
  device = await testDevice();
});

describe('learning-rate schedules (networks.get_scheduler)', () => {
  const base = { lr: 2e-4, n_epochs: 100, n_epochs_decay: 100, epoch_count: 1, lr_decay_iters: 50 };
  it('linear: constant for n_epochs, then linear to lr/(n_epochs_decay+1) in the last epoch', () => {
    const o = { ...base, lr_policy: 'linear' as const };
    // The official lambda_rule, evaluated directly.
    const official = (e: number) => 2e-4 * (1 - Math.max(0, e + 1 - 100) / 101);
    for (const e of [0, 1, 50, 98, 99, 100, 150, 199]) expect(learningRateAt(o, e)).toBeCloseTo(official(e), 15);
    expect(learningRateAt(o, 0)).toBe(2e-4);
    expect(learningRateAt(o, 99)).toBe(2e-4);
    expect(learningRateAt(o, 199)).toBeCloseTo(2e-4 / 101, 15);
  });
  it('linear with --epoch_count (continue_train) shifts the schedule', () => {
    const o = { ...base, lr_policy: 'linear' as const, epoch_count: 51 };
    expect(learningRateAt(o, 49)).toBe(2e-4);
    expect(learningRateAt(o, 50)).toBeCloseTo(2e-4 * (1 - 1 / 101), 15);
  });
  it('step: ×0.1 every lr_decay_iters epochs; cosine: half-cosine over n_epochs', () => {
    expect(learningRateAt({ ...base, lr_policy: 'step' }, 49)).toBeCloseTo(2e-4, 15);
    expect(learningRateAt({ ...base, lr_policy: 'step' }, 50)).toBeCloseTo(2e-5, 15);
    expect(learningRateAt({ ...base, lr_policy: 'cosine' }, 50)).toBeCloseTo(1e-4, 15);
    expect(learningRateAt({ ...base, lr_policy: 'cosine' }, 100)).toBeCloseTo(0, 15);
  });
});

describe('ImagePool (util.ImagePool semantics)', () => {
  const img = (v: number) => variable(Tensor.full(device, [1, 1, 2, 2], v));
  const val = async (v: { data: Tensor }) => (await v.data.toArray())[0];

  it('returns inputs unchanged while filling, then swaps about half the time for stored images', async () => {
    const pool = new ImagePool(3, new Rng(7));
    for (let i = 0; i < 3; i++) expect(await val(pool.query(img(i)))).toBe(i);
    expect(pool.size).toBe(3);
    let fromPool = 0;
    const seen = new Set<number>();
    for (let i = 3; i < 203; i++) {
      const v = await val(pool.query(img(i)));
      if (v !== i) {
        fromPool++;
        expect(v).toBeLessThan(i);
        expect(seen.has(v)).toBe(false); // a stored image comes out once, then is replaced
        seen.add(v);
      }
    }
    expect(fromPool).toBeGreaterThan(70);
    expect(fromPool).toBeLessThan(130);
    expect(pool.size).toBe(3);
    pool.dispose();
  });

  it('pool_size 0 passes batches through; batches > 1 are handled per image', async () => {
    const passthrough = new ImagePool(0, new Rng(1));
    const x = img(5);
    expect(passthrough.query(x)).toBe(x);
    const pool = new ImagePool(4, new Rng(1));
    const batch = variable(Tensor.fromArray(device, [1, 1, 2, 2, 3, 3], [3, 1, 1, 2]));
    const out = pool.query(batch);
    expect(out.shape).toEqual([3, 1, 1, 2]);
    expect([...(await out.data.toArray())]).toEqual([1, 1, 2, 2, 3, 3]);
    expect(pool.size).toBe(3);
    pool.dispose();
  });

  it('state round-trips for an exact resume', async () => {
    const a = new ImagePool(2, new Rng(3));
    a.query(img(1));
    a.query(img(2));
    const b = new ImagePool(2, new Rng(3));
    b.setState(device, await a.getState());
    expect(b.size).toBe(2);
    expect(await b.getState()).toEqual(await a.getState());
    a.dispose();
    b.dispose();
  });
});

describe('GAN and cycle losses on known inputs', () => {
  const v = (data: number[]) => variable(Tensor.fromArray(device, data, [data.length]));
  it('lsgan = MSE to 1/0, vanilla = BCE with logits, wgangp = ∓mean', async () => {
    const p = [0.5, -1, 2];
    expect(await ganLoss('lsgan', v(p), true).data.item()).toBeCloseTo((0.25 + 4 + 1) / 3, 6);
    expect(await ganLoss('lsgan', v(p), false).data.item()).toBeCloseTo((0.25 + 1 + 4) / 3, 6);
    const bce = (x: number, t: number) => Math.max(x, 0) - x * t + Math.log1p(Math.exp(-Math.abs(x)));
    expect(await ganLoss('vanilla', v(p), true).data.item()).toBeCloseTo(p.reduce((s, x) => s + bce(x, 1), 0) / 3, 6);
    expect(await ganLoss('wgangp', v(p), true).data.item()).toBeCloseTo(-0.5, 6);
    expect(await ganLoss('wgangp', v(p), false).data.item()).toBeCloseTo(0.5, 6);
  });
  it('weighted L1 is λ·mean|a−b|', async () => {
    expect(await weightedL1(v([1, 2, 3]), v([1, 0, 6]), 10).data.item()).toBeCloseTo((10 * 5) / 3, 5);
    expect(await F.l1Loss(v([1]), v([1])).data.item()).toBe(0);
  });
});

describe('option validation', () => {
  it('names every bad option at once', () => {
    expect(() =>
      resolveTrainOptions({
        dataroot: 'x',
        netG: 'nope' as never,
        crop_size: 300,
        load_size: 286,
        gan_mode: 'hinge' as never,
      }),
    ).toThrow(OptionError);
    try {
      resolveTrainOptions({ dataroot: 'x', netG: 'nope' as never, gan_mode: 'hinge' as never });
    } catch (e) {
      expect((e as Error).message).toMatch(/--netG must be one of/);
      expect((e as Error).message).toMatch(/--gan_mode must be one of/);
    }
  });
  it('rejects crop_size > load_size and sizes a U-Net cannot take', () => {
    expect(() => resolveTrainOptions({ dataroot: 'x', crop_size: 300, load_size: 286 })).toThrow(/crop/);
    expect(() => resolveTrainOptions({ dataroot: 'x', netG: 'unet_256', crop_size: 128, load_size: 143 })).toThrow(
      /multiples of 256/,
    );
  });
});
