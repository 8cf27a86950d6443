import { bucketSize, type Device, keep, LifetimeError, ShapeError, Tensor, tidy } from '@cg/tensor-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { testDevice } from '../../../test/helpers/device.js';

let device: Device;
beforeAll(async () => {
  device = await testDevice();
});

describe('Tensor', () => {
  it('round-trips data through the GPU', async () => {
    const data = Float32Array.from({ length: 1001 }, (_, i) => i * 0.5 - 7);
    const t = Tensor.fromArray(device, data, [7, 11, 13]);
    expect(t.shape).toEqual([7, 11, 13]);
    expect(t.size).toBe(1001);
    expect(await t.toArray()).toEqual(data);
    t.dispose();
  });

  it('zeros, full, clone and scalars', async () => {
    const z = Tensor.zeros(device, [3, 5]);
    const f = Tensor.full(device, [2], 2.5);
    const c = f.clone();
    const s = Tensor.fromArray(device, [4], []);
    expect([...(await z.toArray())]).toEqual(new Array(15).fill(0));
    expect([...(await c.toArray())]).toEqual([2.5, 2.5]);
    expect(await s.item()).toBe(4);
    for (const t of [z, f, c, s]) t.dispose();
  });

  it('refuses a Promise-returning tidy', () => {
    expect(() => tidy(() => Promise.resolve(1))).toThrow(/synchronous/);
  });

  it('reshape shares storage; the buffer returns to the pool when the last view is disposed', async () => {
    const before = device.memory();
    const t = Tensor.fromArray(device, [1, 2, 3, 4, 5, 6], [2, 3]);
    const v = t.reshape([3, -1]);
    expect(v.shape).toEqual([3, 2]);
    t.dispose();
    expect(await v.toArray()).toEqual(Float32Array.from([1, 2, 3, 4, 5, 6]));
    expect(device.memory().liveBuffers).toBe(before.liveBuffers + 1);
    v.dispose();
    expect(device.memory().liveBuffers).toBe(before.liveBuffers);
    expect(device.memory().liveTensors).toBe(before.liveTensors);
  });

  it('reuses pooled buffers of the same bucket', () => {
    const a = Tensor.empty(device, [1000]);
    const buf = a.buffer;
    a.dispose();
    const b = Tensor.empty(device, [990]);
    expect(b.buffer).toBe(buf);
    b.dispose();
  });

  it('trimPool submits recorded work before destroying a pooled buffer that work still reads', async () => {
    const src = Tensor.fromArray(
      device,
      Float32Array.from({ length: 4096 }, (_, i) => i),
      [4096],
    );
    const dst = Tensor.empty(device, [4096]);
    device.copy(src.buffer, dst.buffer, 4096 * 4); // recorded, not yet submitted
    src.dispose(); // its buffer waits in the pool while the copy that reads it sits in the encoder
    device.trimPool();
    expect((await dst.toArray())[1234]).toBe(1234);
    await device.sync(); // throws the first WebGPU error: a submit that used a destroyed buffer
    dst.dispose();
  });

  it('counts the live high-water mark apart from the pool', () => {
    const before = device.memory().peakLiveBytes;
    const t = Tensor.empty(device, [1 << 22]);
    expect(device.memory().peakLiveBytes).toBeGreaterThanOrEqual(Math.max(before, device.memory().liveBytes));
    t.dispose();
  });

  it('bucket sizes waste at most 25 % above 4 KiB', () => {
    for (const n of [1, 255, 257, 4096, 4097, 10_000, 1 << 20, (1 << 20) + 1, 123_456_789]) {
      const b = bucketSize(n);
      expect(b).toBeGreaterThanOrEqual(n);
      if (n > 4096) expect(b / n).toBeLessThanOrEqual(1.25);
    }
  });

  it('gives ShapeError with the shape and sizes for bad input', () => {
    expect(() => Tensor.fromArray(device, [1, 2, 3], [2, 2])).toThrow(ShapeError);
    expect(() => Tensor.fromArray(device, [1, 2, 3], [2, 2])).toThrow(/3 elements but shape \[2,2\] needs 4/);
    expect(() => Tensor.empty(device, [2, 1.5])).toThrow(/not a non-negative integer/);
    const t = Tensor.zeros(device, [2, 3]);
    expect(() => t.reshape([4, 2])).toThrow(/cannot view \[2,3\] \(6 elements\) as \[4,2\]/);
    t.dispose();
  });

  it('refuses use after dispose with a LifetimeError', async () => {
    const t = Tensor.zeros(device, [4]);
    t.dispose();
    t.dispose(); // idempotent
    expect(() => t.buffer).toThrow(LifetimeError);
    await expect(t.toArray()).rejects.toThrow(/used after dispose/);
  });
});

describe('tidy', () => {
  it('disposes everything created inside except the result and kept tensors; live counts return', () => {
    const before = device.memory();
    let kept: Tensor | null = null;
    const result = tidy(() => {
      Tensor.zeros(device, [10]);
      Tensor.zeros(device, [20]).reshape([4, 5]);
      kept = keep(Tensor.zeros(device, [3]));
      return { out: [Tensor.zeros(device, [7])] };
    });
    expect(device.memory().liveTensors).toBe(before.liveTensors + 2);
    result.out[0].dispose();
    kept!.dispose();
    expect(device.memory().liveTensors).toBe(before.liveTensors);
    expect(device.memory().liveBytes).toBe(before.liveBytes);
  });

  it('nested scopes hand survivors to the outer scope', () => {
    const before = device.memory().liveTensors;
    tidy(() => {
      const inner = tidy(() => Tensor.zeros(device, [2]));
      expect(inner.isDisposed).toBe(false);
      return undefined;
    });
    expect(device.memory().liveTensors).toBe(before);
  });

  it('disposes on throw', () => {
    const before = device.memory().liveTensors;
    expect(() =>
      tidy(() => {
        Tensor.zeros(device, [2]);
        throw new Error('boom');
      }),
    ).toThrow('boom');
    expect(device.memory().liveTensors).toBe(before);
  });
});
