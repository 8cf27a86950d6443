import { nn } from '@cg/autograd';
import { buildGenerator, DataError, sizeMultiple, specFromNetG, translateImage } from '@cg/cyclegan';
import { type Device, Rng } from '@cg/tensor-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { testDevice } from '../helpers/device.js';

/**
 * The smallest image a generator takes. Measured before the check existed: a resnet generator fails on any
 * side ≤ 4 with `ShapeError: reflectionPad2d: left pad must be smaller than the input's W (… x [1,16,1,1])`
 * (a side padded to 4, halved twice, meets the residual blocks' reflection pad of 1) and works from 5 up
 * (padded to 8). A U-Net pads to 128 and takes even a 1×1 image (measured; not repeated here, ~15 s on the
 * software adapter), which the check allows since it looks at the padded size.
 */

let device: Device;
beforeAll(async () => {
  device = await testDevice();
  nn.setDefaultDevice(device);
});

const image = (width: number, height: number) => ({
  width,
  height,
  channels: 3 as const,
  data: new Uint8Array(width * height * 3).fill(90),
});

function generator(netG: string) {
  const spec = specFromNetG({ input_nc: 3, output_nc: 3, ngf: 1, netG, norm: 'instance', use_dropout: false });
  return { net: buildGenerator(spec, { device, rng: new Rng(0) }), multiple: sizeMultiple(spec) };
}

describe('translateImage on tiny images', () => {
  it('resnet: a side ≤ 4 is a DataError naming the image, its size and the minimum of 5; 5 works', async () => {
    const { net, multiple } = generator('resnet_6blocks');
    const o = { multiple, input_nc: 3, name: 'tiny.png' };
    for (const [w, h] of [
      [4, 4],
      [1, 1],
      [4, 9],
      [9, 4],
    ]) {
      const e = await translateImage(net, image(w, h), o).then(
        () => null,
        (err: unknown) => err,
      );
      expect(e, `${w}×${h}`).toBeInstanceOf(DataError);
      expect((e as DataError).message).toMatch(
        new RegExp(`^tiny\\.png: ${w}×${h} is too small for this generator: both sides must be at least 5 pixels`),
      );
    }
    for (const [w, h] of [
      [5, 5],
      [5, 8],
    ]) {
      expect(await translateImage(net, image(w, h), o)).toMatchObject({ width: w, height: h });
    }
    await expect(translateImage(net, image(32, 32), { ...o, load_size: 4 })).rejects.toThrow(
      /tiny\.png: --load_size 4 is too small for this generator; use at least 5/,
    );
    net.dispose();
  });
});
