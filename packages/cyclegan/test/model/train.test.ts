import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Device, Rng } from '@cg/tensor-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testDevice } from '../../../../test/helpers/device.js';
import { makeSyntheticDomains, readCheckpoint, type TrainOptions, train } from '../../src/index.js';
import { nodeTrainerIO } from '../../src/node.js';
import { syntheticSource, tinyOptions } from './tiny_run.js';

let device: Device;
let dir: string;
beforeAll(async () => {
  device = await testDevice();
  dir = await mkdtemp(join(tmpdir(), 'cg-train-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const source = syntheticSource;
const tiny = (name: string, extra: Partial<TrainOptions> = {}) => tinyOptions(dir, name, extra);

describe('training end to end', () => {
  it('trains a few epochs: losses fall, checkpoints and the report exist', async () => {
    const lines: string[] = [];
    const r = await train(tiny('e2e', { n_epochs: 3, n_epochs_decay: 2, print_freq: 6 }), {
      device,
      source: source(),
      io: nodeTrainerIO,
      hooks: { onLog: (l) => lines.push(l) },
    });
    expect(r.totalIters).toBe(30);
    const cycle = r.history.map((p) => p.losses.cycle_A + p.losses.cycle_B);
    expect(cycle.every(Number.isFinite)).toBe(true);
    // Cycle loss of the last logged steps below the first ones.
    const first = (cycle[0] + cycle[1]) / 2;
    const last = (cycle.at(-1)! + cycle.at(-2)!) / 2;
    expect(last).toBeLessThan(first);
    const files = await readdir(join(dir, 'e2e'));
    for (const net of ['G_A', 'G_B', 'D_A', 'D_B']) expect(files).toContain(`latest_net_${net}.safetensors`);
    expect(files).toContain('report.html');
    expect(files).toContain('latest_train_state.safetensors');
    const html = await readFile(join(dir, 'e2e', 'report.html'), 'utf8');
    expect(html).toContain('<svg');
    expect(html).toContain('data:image/png;base64,');
    const sd = readCheckpoint(await readFile(join(dir, 'e2e', 'latest_net_G_A.safetensors')), 'G_A');
    expect(sd.get('model.1.weight')!.shape).toEqual([4, 3, 7, 7]);
    expect(lines.some((l) => l.startsWith('End of epoch 5 / 5'))).toBe(true);
    r.model.dispose();
  });

  it('resumes exactly: N steps straight equals N/2 + --continue_train + N/2 (losses and weights)', async () => {
    const opts = (name: string, extra: Partial<TrainOptions> = {}) =>
      tiny(name, {
        n_epochs: 2,
        n_epochs_decay: 0,
        print_freq: 1,
        display_freq: 1000,
        save_latest_freq: 1000,
        ...extra,
      });
    const straight = await train(opts('straight'), { device, source: source(5), io: nodeTrainerIO });
    // Stop in the middle of the second epoch (7 of 10 iterations).
    const first = await train(opts('resumed'), {
      device,
      source: source(5),
      io: nodeTrainerIO,
      hooks: { shouldStop: (p) => p.totalIters === 7 },
    });
    expect(first.stopped).toBe(true);
    first.model.dispose();
    const second = await train(opts('resumed', { continue_train: true }), {
      device,
      source: source(5),
      io: nodeTrainerIO,
    });
    expect(second.totalIters).toBe(10);
    const lossesOf = (h: typeof straight.history) => h.map((p) => JSON.stringify(p.losses));
    expect(lossesOf(second.history)).toEqual(lossesOf(straight.history));
    for (const net of ['G_A', 'G_B', 'D_A', 'D_B']) {
      const a = readCheckpoint(await readFile(join(dir, 'straight', `latest_net_${net}.safetensors`)), net);
      const b = readCheckpoint(await readFile(join(dir, 'resumed', `latest_net_${net}.safetensors`)), net);
      for (const [k, t] of a) expect(b.get(k)!.data, `${net} ${k}`).toEqual(t.data);
    }
    straight.model.dispose();
    second.model.dispose();
  });

  it('runs 200 training steps with flat live-buffer counts', async () => {
    const before = device.memory();
    const counts: number[] = [];
    const r = await train(
      tiny('memory', {
        n_epochs: 40,
        n_epochs_decay: 0,
        print_freq: 1000,
        display_freq: 1000,
        save_latest_freq: 100_000,
        save_epoch_freq: 1000,
      }),
      {
        device,
        source: source(5, 16),
        io: nodeTrainerIO,
        hooks: {
          onProgress: (p) => {
            if (p.totalIters % 10 === 0) counts.push(device.memory().liveTensors);
          },
        },
      },
    );
    expect(r.totalIters).toBe(200);
    // After the image pools fill (pool_size 4, two per step) nothing accumulates.
    const steady = counts.slice(2);
    expect(Math.max(...steady) - Math.min(...steady)).toBe(0);
    r.model.dispose();
    expect(device.memory().liveTensors).toBe(before.liveTensors);
    expect(device.memory().liveBytes).toBe(before.liveBytes);
  });
});

describe('test command', () => {
  it('writes results/<name>/test_latest/images/*_{real_A,fake_B,rec_A,real_B,fake_A,rec_B}.png and index.html', async () => {
    const { writePng } = await import('../../src/data/fs-images.js');
    const { spawnSync } = await import('node:child_process');
    const { fileURLToPath } = await import('node:url');
    const r = await train(tiny('testcmd', { n_epochs: 1, n_epochs_decay: 0 }), {
      device,
      source: source(),
      io: nodeTrainerIO,
    });
    r.model.dispose();
    const d = makeSyntheticDomains(3, 16, new Rng(9));
    const root = join(dir, 'testdata');
    for (const [k, img] of d.A.entries()) await writePng(join(root, 'testA', `a${k}.png`), img);
    for (const [k, img] of d.B.entries()) await writePng(join(root, 'testB', `b${k}.png`), img);
    const cli = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));
    const args = [
      cli,
      'test',
      '--dataroot',
      root,
      '--name',
      'testcmd',
      '--checkpoints_dir',
      dir,
      '--crop_size',
      '16',
      '--num_test',
      '2',
    ];
    const res = spawnSync(process.execPath, [...args, '--results_dir', join(dir, 'results')], {
      encoding: 'utf8',
      timeout: 300_000,
    });
    expect(res.status, res.stderr).toBe(0);
    const images = await readdir(join(dir, 'results', 'testcmd', 'test_latest', 'images'));
    const expected = ['a0', 'a1'].flatMap((s) =>
      ['real_A', 'fake_B', 'rec_A', 'real_B', 'fake_A', 'rec_B'].map((v) => `${s}_${v}.png`),
    );
    expect(images.sort()).toEqual(expected.sort());
    const html = await readFile(join(dir, 'results', 'testcmd', 'test_latest', 'index.html'), 'utf8');
    expect(html).toContain('a1_fake_B.png');

    // 0.02 MB is below every whole-image forward here: all four generator runs per image go through tiles.
    const tiledRes = spawnSync(
      process.execPath,
      [...args, '--results_dir', join(dir, 'tiled'), '--max_memory', '0.02'],
      {
        encoding: 'utf8',
        timeout: 300_000,
      },
    );
    expect(tiledRes.status, tiledRes.stderr).toBe(0);
    expect(tiledRes.stderr).toMatch(/8 of 8 generator runs in tiles/);
    const { decodeImage } = await import('../../src/data/fs-images.js');
    for (const file of expected) {
      const read = async (root: string) =>
        decodeImage(await readFile(join(root, 'testcmd', 'test_latest', 'images', file)), file);
      const a = await read(join(dir, 'results'));
      const b = await read(join(dir, 'tiled'));
      let maxLevel = 0;
      for (let i = 0; i < a.data.length; i++) maxLevel = Math.max(maxLevel, Math.abs(a.data[i] - b.data[i]));
      expect(maxLevel, file).toBeLessThanOrEqual(1);
    }
  });
});
