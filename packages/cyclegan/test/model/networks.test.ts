import { type Device, Rng } from '@cg/tensor-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { testDevice } from '../../../../test/helpers/device.js';
import {
  defineG,
  inferGenerator,
  NLayerDiscriminator,
  netGName,
  PixelDiscriminator,
  ResnetGenerator,
  UnetGenerator,
} from '../../src/index.js';

let device: Device;
beforeAll(async () => {
  device = await testDevice();
});
const ctx = () => ({ device, rng: new Rng(0) });

/** The official resnet_9blocks keys (instance norm: affine-free norms, convs with bias). */
function officialResnet9Keys(): string[] {
  const keys = ['model.1.weight', 'model.1.bias', 'model.4.weight', 'model.4.bias', 'model.7.weight', 'model.7.bias'];
  for (let b = 10; b <= 18; b++) {
    for (const i of [1, 5]) keys.push(`model.${b}.conv_block.${i}.weight`, `model.${b}.conv_block.${i}.bias`);
  }
  keys.push('model.19.weight', 'model.19.bias', 'model.22.weight', 'model.22.bias', 'model.26.weight', 'model.26.bias');
  return keys;
}

describe('official network structure', () => {
  it('resnet_9blocks, ngf 64: 11,378,179 parameters and the exact key list', () => {
    const g = new ResnetGenerator({ input_nc: 3, output_nc: 3, ngf: 64, norm: 'instance', n_blocks: 9 }, ctx());
    expect(g.numParameters()).toBe(11_378_179);
    expect([...g.stateDict().keys()]).toEqual(officialResnet9Keys());
    expect(g.stateDict().get('model.10.conv_block.1.weight')!.shape).toEqual([256, 256, 3, 3]);
    expect(g.stateDict().get('model.19.weight')!.shape).toEqual([256, 128, 3, 3]); // ConvTranspose2d [in, out, k, k]
    g.dispose();
  });

  it('basic PatchGAN, ndf 64: 2,764,737 parameters', () => {
    const d = new NLayerDiscriminator({ input_nc: 3, ndf: 64, n_layers: 3, norm: 'instance' }, ctx());
    expect(d.numParameters()).toBe(2_764_737);
    expect([...d.stateDict().keys()]).toEqual([
      'model.0.weight',
      'model.0.bias',
      'model.2.weight',
      'model.2.bias',
      'model.5.weight',
      'model.5.bias',
      'model.8.weight',
      'model.8.bias',
      'model.11.weight',
      'model.11.bias',
    ]);
    d.dispose();
  });

  it('dropout shifts the second block conv to conv_block.6; batch norm drops conv biases', () => {
    const g = new ResnetGenerator(
      { input_nc: 3, output_nc: 3, ngf: 4, norm: 'batch', n_blocks: 2, use_dropout: true },
      ctx(),
    );
    const keys = [...g.stateDict().keys()];
    expect(keys).toContain('model.10.conv_block.6.weight');
    expect(keys).toContain('model.10.conv_block.7.running_mean');
    expect(keys).not.toContain('model.1.bias');
    expect(keys).toContain('model.19.bias'); // the final conv always has a bias
    const spec = inferGenerator(g.stateDict());
    expect(spec).toMatchObject({ kind: 'resnet', n_blocks: 2, ngf: 4, norm: 'batch', use_dropout: true });
    g.dispose();
  });

  it('unet_128 keys nest as the official skip blocks and infer back', () => {
    const u = new UnetGenerator({ input_nc: 3, output_nc: 1, ngf: 2, norm: 'instance', num_downs: 7 }, ctx());
    const sd = u.stateDict();
    expect(sd.has('model.model.0.weight')).toBe(true);
    expect(sd.has('model.model.3.weight')).toBe(true);
    const spec = inferGenerator(sd);
    expect(netGName(spec)).toBe('unet_128');
    expect(spec).toMatchObject({ input_nc: 3, output_nc: 1, ngf: 2, norm: 'instance' });
    u.dispose();
  });

  it('pixel discriminator keys are net.*', () => {
    const d = new PixelDiscriminator({ input_nc: 3, ndf: 8, norm: 'instance' }, ctx());
    expect([...d.stateDict().keys()]).toEqual([
      'net.0.weight',
      'net.0.bias',
      'net.2.weight',
      'net.2.bias',
      'net.5.weight',
      'net.5.bias',
    ]);
    d.dispose();
  });

  it('rejects an unknown netG with the valid names', () => {
    expect(() =>
      defineG(
        {
          input_nc: 3,
          output_nc: 3,
          ngf: 4,
          netG: 'resnet_x',
          norm: 'instance',
          use_dropout: false,
          init_type: 'normal',
          init_gain: 0.02,
        },
        ctx(),
      ),
    ).toThrow(/resnet_9blocks, resnet_6blocks, unet_256 or unet_128/);
  });
});
