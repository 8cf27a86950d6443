import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { nn } from '@cg/autograd';
import {
  CheckpointError,
  defineD,
  dropStaleInstanceNormKeys,
  type GeneratorSpec,
  loadGenerator,
  netGName,
  readCheckpoint,
  type StateDict,
  saveCheckpoint,
  sizeMultiple,
  tensorToImages,
  translateToFloat,
} from '@cg/cyclegan';
import { decodeImage, loadGeneratorFile, readCheckpointFile } from '@cg/cyclegan/node';
import { Rng } from '@cg/tensor-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useNnDevice, writeArtifactAfterAll } from '../helpers/suite.js';

/**
 * Official-generator parity: test/fixtures/make_generator_parity.py builds the
 * official networks.py generators with seeded weights, saves them with torch
 * (zip and legacy format, 2018-style stale InstanceNorm keys in one case) and
 * records PyTorch's float output and tensor2im PNG on a seeded image. We load
 * each .pth with nothing but the file (the architecture is inferred from the
 * keys), translate the same image and compare: floats within 1e-4 max abs, PNG
 * within ±1 level. Measured errors go to test-artifacts/generator-parity.json.
 */

interface Run {
  name: string;
  mode: 'train' | 'eval';
  input: string;
  pad: [number, number, number, number] | null;
  f32: string;
  png: string;
  shape: [number, number, number, number];
}

interface Case {
  name: string;
  netG: string;
  ngf: number;
  norm: 'instance' | 'batch' | 'none';
  use_dropout: boolean;
  files: Partial<Record<'zip' | 'legacy', string>>;
  runs: Run[];
  stale_instance_norm_keys: number;
  n_keys: number;
}

const here = dirname(fileURLToPath(import.meta.url));
const PARITY = resolve(here, '../fixtures/parity');
const ARTIFACT = resolve(here, '../../test-artifacts/generator-parity.json');
const manifest = JSON.parse(readFileSync(resolve(PARITY, 'manifest.json'), 'utf8')) as { torch: string; cases: Case[] };
const fixturePath = (name: string) => resolve(PARITY, name);
const image = (name: string) => decodeImage(readFileSync(fixturePath(name)), name);
const f32 = (name: string) => {
  const b = readFileSync(fixturePath(name));
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
};

const FLOAT_TOL = 1e-4;
const measured: Record<string, { maxAbs: number; pngMaxDiff: number; pngValuesDiffering: number; values: number }> = {};

const getDevice = useNnDevice();
writeArtifactAfterAll(ARTIFACT, () => ({ torch: manifest.torch, tolerance: FLOAT_TOL, measured }));

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe.each(manifest.cases)('$name (official networks.py, torch-written)', (c) => {
  const outputs = new Map<string, Float32Array>();

  describe.each(Object.entries(c.files))('%s format', (format, file) => {
    let net: nn.Module;
    let spec: GeneratorSpec;
    let weights: StateDict;
    const notes: string[] = [];

    beforeAll(async () => {
      ({ net, spec } = await loadGeneratorFile(getDevice(), fixturePath(file!), { log: (m) => notes.push(m) }));
      weights = dropStaleInstanceNormKeys(await readCheckpointFile(fixturePath(file!)));
    });
    afterAll(() => net?.dispose());

    it(`infers ${c.netG}, ngf ${c.ngf}, norm ${c.norm}${c.use_dropout ? ', dropout' : ''} from the keys`, () => {
      expect(netGName(spec)).toBe(c.netG);
      expect(spec).toMatchObject({ input_nc: 3, output_nc: 3, ngf: c.ngf, norm: c.norm, use_dropout: c.use_dropout });
      if (c.stale_instance_norm_keys > 0) {
        expect(notes.join('\n')).toMatch(
          new RegExp(`dropped ${c.stale_instance_norm_keys} stale InstanceNorm running-stat keys`),
        );
      } else {
        expect(notes.join('\n')).not.toMatch(/stale InstanceNorm/);
      }
    });

    it.each(c.runs)('$name ($mode mode, $input) matches PyTorch: floats within 1e-4, PNG within ±1', async (run) => {
      // A train-mode forward updates the BatchNorm running statistics (as in PyTorch), and the
      // script ran every case from the saved weights.
      net.loadStateDict(weights);
      const input = image(run.input);
      const { data, shape } = await translateToFloat(net, input, {
        multiple: sizeMultiple(spec),
        input_nc: spec.input_nc,
        eval: run.mode === 'eval',
      });
      expect(shape).toEqual(run.shape);
      const want = f32(run.f32);
      const maxAbs = maxAbsDiff(data, want);

      const ours = tensorToImages(data, shape)[0];
      const theirs = image(run.png);
      expect([ours.width, ours.height]).toEqual([theirs.width, theirs.height]);
      let pngMaxDiff = 0;
      let differing = 0;
      for (let i = 0; i < ours.data.length; i++) {
        const d = Math.abs(ours.data[i] - theirs.data[i]);
        pngMaxDiff = Math.max(pngMaxDiff, d);
        if (d > 0) differing++;
      }
      measured[`${c.name}/${format}/${run.name}`] = {
        maxAbs,
        pngMaxDiff,
        pngValuesDiffering: differing,
        values: ours.data.length,
      };
      expect(maxAbs, `${c.name} ${format} ${run.name}: max abs error`).toBeLessThanOrEqual(FLOAT_TOL);
      expect(pngMaxDiff, `${c.name} ${format} ${run.name}: PNG levels`).toBeLessThanOrEqual(1);

      // Both formats hold the same tensors, so they must give the very same output.
      const key = run.name;
      const first = outputs.get(key);
      if (first) expect(maxAbsDiff(data, first)).toBe(0);
      else outputs.set(key, data);
    });
  });
});

describe('generator loading errors', () => {
  const resnetZip = fixturePath('resnet9_instance_zip.pth');

  it('a wrong --ngf override lists the mis-shaped keys', async () => {
    const err = await loadGeneratorFile(getDevice(), resnetZip, { ngf: 8 }).catch((e) => e);
    expect(err).toBeInstanceOf(CheckpointError);
    expect(err.message).toMatch(/mis-shaped keys/);
    expect(err.message).toContain('model.1.weight: expected [8,3,7,7], got [4,3,7,7]');
    expect(err.message).toMatch(/pass --netG\/--ngf\/--norm/);
  });

  it('a wrong --netG override lists the mis-shaped and unexpected keys', async () => {
    const err = await loadGeneratorFile(getDevice(), resnetZip, { netG: 'resnet_6blocks' }).catch((e) => e);
    expect(err).toBeInstanceOf(CheckpointError);
    expect(err.message).toContain('model.19.weight: expected [8,4,3,3], got [16,8,3,3]');
    expect(err.message).toMatch(/unexpected keys \(16\):[\s\S]*model\.26\.weight/);
  });

  it('a discriminator file is refused with a clear message', async () => {
    const D = defineD(
      { input_nc: 3, ndf: 4, netD: 'basic', n_layers_D: 3, norm: 'instance', init_type: 'normal', init_gain: 0.02 },
      { device: getDevice(), rng: new Rng(1) },
    );
    const bytes = await saveCheckpoint(D, 'pth');
    D.dispose();
    const sd = readCheckpoint(bytes, 'latest_net_D_A.pth');
    expect(() => loadGenerator(getDevice(), sd, { source: 'latest_net_D_A.pth' })).toThrow(
      /latest_net_D_A\.pth: not a CycleGAN generator state_dict.*discriminator/s,
    );
  });

  it('an extra key is listed as unexpected, a removed one as missing', async () => {
    const sd = await readCheckpointFile(resnetZip);
    const extra: StateDict = new Map(sd);
    extra.set('extra_head.weight', { dtype: 'float32', shape: [2], data: new Float32Array(2) });
    const e1 = (() => {
      try {
        loadGenerator(getDevice(), extra, { source: 'extra.pth' });
      } catch (e) {
        return e as Error;
      }
    })();
    expect(e1).toBeInstanceOf(CheckpointError);
    expect(e1!.message).toMatch(/^extra\.pth: /);
    expect(e1!.message).toMatch(/unexpected keys \(1\):\n\s+extra_head\.weight/);

    const missing: StateDict = new Map(sd);
    missing.delete('model.13.conv_block.5.bias');
    expect(() => loadGenerator(getDevice(), missing, { source: 'missing.pth' })).toThrow(
      /missing keys \(1\):\n\s+model\.13\.conv_block\.5\.bias/,
    );
  });

  it('the stale InstanceNorm keys are dropped with one log note; BatchNorm statistics are kept', async () => {
    const notes: string[] = [];
    const sd = await readCheckpointFile(fixturePath('resnet9_instance_legacy.pth'));
    expect(sd.has('model.2.running_mean')).toBe(true);
    expect(sd.has('model.10.conv_block.2.num_batches_tracked')).toBe(true);
    const { net } = loadGenerator(getDevice(), sd, { log: (m) => notes.push(m) });
    net.dispose();
    expect(notes).toHaveLength(1);
    expect(notes[0]).toMatch(/dropped 69 stale InstanceNorm .* patch_instance_norm_state_dict/);

    const bn = await readCheckpointFile(fixturePath('resnet6_batch_zip.pth'));
    const quiet: string[] = [];
    const loaded = loadGenerator(getDevice(), bn, { log: (m) => quiet.push(m) });
    const own = loaded.net.stateDict();
    expect(own.has('model.2.running_mean')).toBe(true);
    expect(await own.get('model.2.running_var')!.toArray()).toEqual(bn.get('model.2.running_var')!.data);
    loaded.net.dispose();
    expect(quiet).toEqual([]);
  });
});
