import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { nn } from '@cg/autograd';
import {
  buildGenerator,
  netGName,
  readPth,
  type StateDict,
  saveCheckpoint,
  specFromNetG,
  translateToFloat,
} from '@cg/cyclegan';
import { decodeImage, loadGeneratorFile } from '@cg/cyclegan/node';
import { type Device, Rng } from '@cg/tensor-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { randomArray } from '../helpers/compare.js';
import { testDevice } from '../helpers/device.js';

/**
 * Export: a generator of ours, saved with saveCheckpoint(net, 'pth'), is read by
 * torch.load(weights_only=True) into the official ResnetGenerator with
 * load_state_dict(strict=True) and gives our output
 * (test/fixtures/verify_generator_export.py). The committed file was written by
 * this test; the script recorded torch's output on it (`<name>.torch.f32`), which
 * we compare with here, so CI checks the export without torch.
 *
 * Regenerate: CG_WRITE_FIXTURES=1 pnpm test:unit test/parity/generator_export.test.ts,
 * then /usr/bin/python3 test/fixtures/verify_generator_export.py.
 */

const here = dirname(fileURLToPath(import.meta.url));
const PARITY = resolve(here, '../fixtures/parity');
const ARTIFACTS = resolve(here, '../../test-artifacts/export');
const WRITE = process.env.CG_WRITE_FIXTURES === '1';
const INPUT = 'input_32x24.png';

const CASES = [
  { name: 'ours_resnet6_instance', netG: 'resnet_6blocks', ngf: 1, norm: 'instance', mode: 'train' },
  { name: 'ours_resnet6_batch', netG: 'resnet_6blocks', ngf: 2, norm: 'batch', mode: 'eval' },
] as const;

let device: Device;
beforeAll(async () => {
  device = await testDevice();
  nn.setDefaultDevice(device);
});

/** Our generator with seeded (platform-independent) values in every parameter and buffer. */
function seededGenerator(c: (typeof CASES)[number]): nn.Module {
  const spec = specFromNetG({ input_nc: 3, output_nc: 3, ngf: c.ngf, netG: c.netG, norm: c.norm, use_dropout: false });
  const net = buildGenerator(spec, { device, rng: new Rng(0) });
  const sd: StateDict = new Map();
  let seed = 1;
  for (const [key, t] of net.stateDict()) {
    const isNormWeight = key.endsWith('.weight') && t.shape.length === 1;
    let data: Float32Array;
    if (key.endsWith('num_batches_tracked')) data = Float32Array.of(1234);
    else if (key.endsWith('running_var')) data = randomArray(t.size, seed++, 0.5, 2);
    else if (isNormWeight) data = randomArray(t.size, seed++, 0.8, 1.2);
    else data = randomArray(t.size, seed++, -0.05, 0.05);
    const dtype = key.endsWith('num_batches_tracked') ? 'int64' : 'float32';
    sd.set(key, { dtype, shape: [...t.shape], data });
  }
  net.loadStateDict(sd);
  return net;
}

const f32 = (name: string) => {
  const b = readFileSync(resolve(PARITY, name));
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
};

describe.each(CASES)('$name: our .pth export loads in torch', (c) => {
  const file = resolve(PARITY, `${c.name}.pth`);

  it('saveCheckpoint reproduces the committed file byte for byte', async () => {
    const net = seededGenerator(c);
    const bytes = await saveCheckpoint(net, 'pth');
    net.dispose();
    if (WRITE) writeFileSync(file, bytes);
    expect(new Uint8Array(readFileSync(file))).toEqual(bytes);
    const back = readPth(bytes, file);
    expect(back.get('model.1.weight')?.shape).toEqual([c.ngf, 3, 7, 7]);
    if (c.norm === 'batch')
      expect(back.get('model.2.num_batches_tracked')).toMatchObject({ dtype: 'int64', shape: [] });
  });

  it(`our output on the exported weights equals torch's within 1e-4 (${c.mode} mode)`, async () => {
    const { net, spec } = await loadGeneratorFile(device, file);
    expect(netGName(spec)).toBe(c.netG);
    const img = decodeImage(readFileSync(resolve(PARITY, INPUT)), INPUT);
    const { data } = await translateToFloat(net, img, { multiple: 4, input_nc: 3, eval: c.mode === 'eval' });
    net.dispose();
    if (WRITE) {
      // For the Python check only; not committed.
      mkdirSync(ARTIFACTS, { recursive: true });
      writeFileSync(resolve(ARTIFACTS, `${c.name}.ours.f32`), data);
    }
    if (WRITE && !existsSync(resolve(PARITY, `${c.name}.torch.f32`))) return; // run verify_generator_export.py next
    const torch = f32(`${c.name}.torch.f32`);
    let maxAbs = 0;
    for (let i = 0; i < data.length; i++) maxAbs = Math.max(maxAbs, Math.abs(data[i] - torch[i]));
    expect(torch.length).toBe(data.length);
    expect(maxAbs).toBeLessThanOrEqual(1e-4);
  });
});
