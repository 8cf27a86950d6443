import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  buildGenerator,
  CheckpointError,
  exportOnnx,
  OptionError,
  readCheckpoint,
  type StateDict,
  specFromNetG,
  writePth,
} from '@cg/cyclegan';
import { Rng } from '@cg/tensor-core';
import { afterAll, describe, expect, it } from 'vitest';
import { runExport } from '../../packages/cyclegan/src/cli-export.js';
import { testDevice } from '../helpers/device.js';
import { ortSession, randomInput, runOrt } from './helpers.js';

/** `pnpm cyclegan export`, its refusals (nothing written), and the size of a full resnet_9blocks. */

const here = fileURLToPath(new URL('.', import.meta.url));
const fixture = (p: string) => resolve(here, '../fixtures', p);
const dir = mkdtempSync(join(tmpdir(), 'cg-onnx-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const quiet = (argv: string[]) => runExport([...argv]);

describe('cyclegan export', () => {
  it('writes a generator that onnxruntime loads, with dynamic N, H, W, and leaves no temp file', async () => {
    const out = join(dir, 'g.onnx');
    const r = await quiet([
      '--weights',
      fixture('parity/resnet9_instance_zip.pth'),
      '--format',
      'onnx',
      '--output',
      out,
    ]);
    expect(r.bytes).toBe(readFileSync(out).length);
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    const s = await ortSession(readFileSync(out));
    expect(s.inputNames).toEqual(['input']);
    expect(s.outputNames).toEqual(['output']);
    for (const dims of [
      [1, 3, 24, 32],
      [2, 3, 36, 20],
    ]) {
      expect((await runOrt(s, randomInput(dims, 1), dims)).dims).toEqual(dims);
    }
    await s.release();
  });

  it('exports a discriminator checkpoint, inferring n_layers, ndf and norm, or with --netD', async () => {
    const weights = fixture('onnx/basic_batch.pth');
    const out = join(dir, 'd.onnx');
    await quiet(['--weights', weights, '--output', out, '--mode', 'train']);
    const s = await ortSession(readFileSync(out));
    expect((await runOrt(s, randomInput([1, 3, 64, 48], 2), [1, 3, 64, 48])).dims).toEqual([1, 1, 6, 4]);
    await s.release();
    await quiet(['--weights', weights, '--output', out, '--netD', 'basic', '--n_layers_D', '3']);
  });

  it('refuses a checkpoint that is not a network we know, naming what is missing, and writes nothing', async () => {
    const out = join(dir, 'never.onnx');
    const sd: StateDict = new Map([
      ['encoder.weight', { dtype: 'float32', shape: [4, 3], data: new Float32Array(12) }],
    ]);
    const bad = join(dir, 'bad.pth');
    writeFileSync(bad, writePth(sd));
    const e = await quiet(['--weights', bad, '--output', out]).catch((x) => x);
    expect(e).toBeInstanceOf(CheckpointError);
    expect(e.message).toMatch(/not a CycleGAN generator state_dict: expected 'model\.1\.weight'/);
    expect(existsSync(out)).toBe(false);

    // A PatchGAN checkpoint forced to be a pixel discriminator: the missing keys are listed.
    const e2 = await quiet(['--weights', fixture('onnx/basic_batch.pth'), '--output', out, '--netD', 'pixel']).catch(
      (x) => x,
    );
    expect(e2).toBeInstanceOf(CheckpointError);
    expect(e2.message).toMatch(/not a CycleGAN pixel discriminator state_dict: expected 'net\.0\.weight'/);
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(dir).filter((f) => f.startsWith('never'))).toEqual([]);
  });

  it('lists missing, mis-shaped and unexpected keys in one CheckpointError', () => {
    const sd = readCheckpoint(readFileSync(fixture('parity/resnet9_instance_zip.pth')), 'g.pth');
    sd.delete('model.13.conv_block.5.bias');
    sd.set('extra_head.weight', { dtype: 'float32', shape: [2], data: new Float32Array(2) });
    const e = (() => {
      try {
        exportOnnx(sd, { source: 'g.pth' });
      } catch (x) {
        return x as Error;
      }
    })();
    expect(e).toBeInstanceOf(CheckpointError);
    expect(e!.message).toMatch(/^g\.pth: the checkpoint does not fit/);
    expect(e!.message).toMatch(/missing keys \(1\):\n\s+model\.13\.conv_block\.5\.bias \[16\]/);
    expect(e!.message).toMatch(/unexpected keys \(1\):\n\s+extra_head\.weight/);
    expect(e!.message).toMatch(/resnet_9blocks ngf=4 norm=instance.*--netG\/--ngf\/--norm/s);
    const e2 = (() => {
      try {
        exportOnnx(readCheckpoint(readFileSync(fixture('parity/resnet9_instance_zip.pth')), 'g.pth'), { ngf: 8 });
      } catch (x) {
        return x as Error;
      }
    })();
    expect(e2!.message).toContain('model.1.weight: expected [8,3,7,7], got [4,3,7,7]');
  });

  it('refuses bad options before reading anything', async () => {
    const w = fixture('parity/resnet9_instance_zip.pth');
    await expect(quiet(['--weights', w, '--output', join(dir, 'x.onnx'), '--format', 'tflite'])).rejects.toThrow(
      OptionError,
    );
    await expect(quiet(['--weights', w, '--output', join(dir, 'x.onnx'), '--mode', 'test'])).rejects.toThrow(
      /--mode must be eval or train/,
    );
    await expect(quiet(['--weights', w])).rejects.toThrow(/--weights and --output are required/);
  });
});

describe('size', () => {
  it('a full resnet_9blocks ngf 64 (45 MB of weights) exports in linear time and loads', async () => {
    const device = await testDevice();
    const spec = specFromNetG({
      input_nc: 3,
      output_nc: 3,
      ngf: 64,
      netG: 'resnet_9blocks',
      norm: 'instance',
      use_dropout: false,
    });
    const net = buildGenerator(spec, { device, rng: new Rng(0) });
    const rng = new Rng(3);
    const sd: StateDict = new Map();
    for (const [k, t] of net.stateDict()) {
      const data = new Float32Array(t.shape.reduce((a, b) => a * b, 1));
      for (let i = 0; i < data.length; i += 97) data[i] = rng.normal(0, 0.02);
      sd.set(k, { dtype: 'float32', shape: [...t.shape], data });
    }
    net.dispose();
    let values = 0;
    for (const t of sd.values()) values += t.data.length;
    const t0 = performance.now();
    const bytes = exportOnnx(sd);
    const ms = performance.now() - t0;
    // Measured 85 ms here (45.5 MB); quadratic copying of 45 MB would take minutes.
    console.log(`resnet_9blocks ngf 64: ${(bytes.length / 1e6).toFixed(1)} MB in ${ms.toFixed(0)} ms`);
    expect(bytes.length).toBeGreaterThan(values * 4);
    expect(bytes.length).toBeLessThan(values * 4 + 100_000);
    expect(ms).toBeLessThan(10_000);
    const s = await ortSession(bytes);
    expect((await runOrt(s, randomInput([1, 3, 32, 32], 4), [1, 3, 32, 32])).dims).toEqual([1, 3, 32, 32]);
    await s.release();
  });
});
