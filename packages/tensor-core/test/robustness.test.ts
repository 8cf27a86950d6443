import { ArgumentError, Tensor } from '@cg/tensor-core';
import { requestDevice } from '@cg/tensor-core/node';
import { afterEach, describe, expect, it } from 'vitest';

// The opt-out of Dawn's robustness transform (platform/node.ts). CI also runs the whole kernel
// suite with CG_ROBUSTNESS=off (scripts/run.sh), which is what the opt-out's safety rests on.
describe('robustness opt-out', () => {
  const saved = process.env.CG_ROBUSTNESS;
  afterEach(() => {
    if (saved === undefined) delete process.env.CG_ROBUSTNESS;
    else process.env.CG_ROBUSTNESS = saved;
  });

  it('robustness: false gives a working device', async () => {
    const device = await requestDevice({ robustness: false });
    const t = Tensor.fromArray(device, new Float32Array([1, 2, 3]), [3]);
    expect(Array.from(await t.toArray())).toEqual([1, 2, 3]);
    t.dispose();
    device.release();
  });

  it('a CG_ROBUSTNESS other than on/off is refused by name before any adapter is tried', async () => {
    process.env.CG_ROBUSTNESS = 'fast';
    const err = await requestDevice().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ArgumentError);
    expect((err as Error).message).toBe('CG_ROBUSTNESS must be on or off (got "fast")');
  });
});
