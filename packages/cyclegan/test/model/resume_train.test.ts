import { copyFile, mkdtemp, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CheckpointError, OptionError } from '@cg/cyclegan';
import { type Device, Rng } from '@cg/tensor-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testDevice } from '../../../../test/helpers/device.js';
import { makeSyntheticDomains, type TrainOptions, train } from '../../src/index.js';
import { nodeTrainerIO } from '../../src/node.js';
import { syntheticSource, tinyOptions } from './tiny_run.js';

let device: Device;
let dir: string;
beforeAll(async () => {
  device = await testDevice();
  dir = await mkdtemp(join(tmpdir(), 'cg-resume-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const source = (n = 5) => syntheticSource(n);

/** The tiny CycleGAN of train.test.ts with 5 images, so an epoch is 5 iterations. */
const tiny = (name: string, extra: Partial<TrainOptions> = {}) =>
  tinyOptions(dir, name, {
    n_epochs: 1,
    print_freq: 1,
    display_freq: 1000,
    save_latest_freq: 1000,
    save_epoch_freq: 1000,
    ...extra,
  });

async function run(
  opts: Partial<TrainOptions> & { dataroot: string },
  stopAt?: number,
): Promise<{ lines: string[]; lrs: number[]; totalIters: number; history: number }> {
  const lines: string[] = [];
  const lrs: number[] = [];
  const r = await train(opts, {
    device,
    source: source(),
    io: nodeTrainerIO,
    hooks: {
      onLog: (l) => lines.push(l),
      onProgress: (p) => lrs.push(p.lr),
      shouldStop: stopAt ? (p) => p.totalIters === stopAt : undefined,
    },
  });
  r.model.dispose();
  return { lines, lrs, totalIters: r.totalIters, history: r.history.length };
}

describe('--continue_train with --epoch_count', () => {
  it('extends a finished run the official way (--epoch_count 3 after 2 epochs) at the right, positive rate', async () => {
    await run(tiny('extend'));
    // Resuming the finished run as it was is refused up front.
    await expect(run(tiny('extend', { continue_train: true }))).rejects.toThrow(/this run has finished/);
    // The issue: saved steps 2 + epoch_count 3 gave lr −6.7e-5 and `Adam: lr must be …`.
    await expect(run(tiny('extend', { continue_train: true, epoch_count: 2, n_epochs_decay: 2 }))).rejects.toThrow(
      OptionError,
    );
    const r = await run(tiny('extend', { continue_train: true, epoch_count: 3, n_epochs_decay: 2 }));
    expect(r.lines).toContain('resumed exactly at epoch 3, total_iters 10');
    expect(r.totalIters).toBe(15);
    // Epoch 3 of n_epochs 1 + n_epochs_decay 2: lr · (1 − 2/3).
    for (const lr of r.lrs.slice(0, -1)) expect(lr).toBeCloseTo(0.002 / 3, 12);
    expect(
      r.lines.some((l) => l.startsWith('End of epoch 3 / 3') && l.endsWith('learning rate 0.0006667 -> 0.000')),
    ).toBe(true);
  });

  it('an --epoch_count that agrees with a state saved mid-epoch resumes exactly', async () => {
    const straight = await train(tiny('straight', { n_epochs: 2, n_epochs_decay: 0 }), {
      device,
      source: source(),
      io: nodeTrainerIO,
    });
    await run(tiny('agree', { n_epochs: 2, n_epochs_decay: 0 }), 7);
    const second = await train(
      tiny('agree', { n_epochs: 2, n_epochs_decay: 0, continue_train: true, epoch_count: 2 }),
      {
        device,
        source: source(),
        io: nodeTrainerIO,
      },
    );
    const losses = (h: typeof straight.history) => h.map((p) => JSON.stringify(p.losses));
    expect(losses(second.history)).toEqual(losses(straight.history));
    straight.model.dispose();
    second.model.dispose();
  });
});

describe('--continue_train from an epoch label (no training state)', () => {
  it('restarts the official way at --epoch_count, and says which --epoch_count continues the schedule', async () => {
    await run(tiny('label', { n_epochs: 1, n_epochs_decay: 2, save_epoch_freq: 1 }), 10);
    const hinted = await run(tiny('label', { n_epochs: 1, n_epochs_decay: 2, continue_train: true, epoch: '1' }));
    expect(hinted.lines).toContain(
      "--continue_train: '1' was saved at the end of epoch 1; pass --epoch_count 2 to continue its schedule",
    );
    const r = await run(
      tiny('label', { n_epochs: 1, n_epochs_decay: 2, continue_train: true, epoch: '1', epoch_count: 2 }),
    );
    expect(r.lines[0]).toMatch(/no training state for '1'; restarting optimizers, pools and data order from epoch 2/);
    expect(r.lines.some((l) => l.includes('pass --epoch_count'))).toBe(false);
    // Epochs 2 and 3 of n_epochs 1 + n_epochs_decay 2: lr · 2/3, then lr · 1/3.
    expect(r.totalIters).toBe(10);
    expect(r.lrs[0]).toBeCloseTo((0.002 * 2) / 3, 12);
    expect(r.lrs[5]).toBeCloseTo(0.002 / 3, 12);
  });
});

describe('checkpoint sets on resume', () => {
  const ck = (name: string, file: string) => join(dir, name, file);

  it('refuses nets from one save with the training state of another, naming the file', async () => {
    const opts = tiny('mixed', { n_epochs: 3, n_epochs_decay: 0 });
    await run(opts, 5);
    await copyFile(ck('mixed', 'latest_train_state.safetensors'), ck('mixed', 'state_at_5'));
    await run({ ...opts, continue_train: true }, 10);
    const manifest = JSON.parse(await readFile(ck('mixed', 'latest_manifest.json'), 'utf8'));
    expect(manifest.totalIters).toBe(10);
    expect(manifest.files.map((f: { name: string }) => f.name).sort()).toEqual(
      [
        ...['D_A', 'D_B', 'G_A', 'G_B'].map((n) => `latest_net_${n}.safetensors`),
        'latest_train_state.safetensors',
      ].sort(),
    );
    // The issue: a save that died while writing the state left nets from iteration 10 with state from 5.
    const state10 = await readFile(ck('mixed', 'latest_train_state.safetensors'));
    await copyFile(ck('mixed', 'state_at_5'), ck('mixed', 'latest_train_state.safetensors'));
    const resume = () => run({ ...opts, continue_train: true });
    await expect(resume()).rejects.toThrow(CheckpointError);
    await expect(resume()).rejects.toThrow(/latest_train_state.safetensors: not the file .*latest_manifest.json lists/);
    await writeFile(ck('mixed', 'latest_train_state.safetensors'), state10);
    // One flipped byte in a net: same size, different hash.
    const net = await readFile(ck('mixed', 'latest_net_D_B.safetensors'));
    const flipped = Uint8Array.from(net);
    flipped[flipped.length - 1] ^= 1;
    await writeFile(ck('mixed', 'latest_net_D_B.safetensors'), flipped);
    await expect(resume()).rejects.toThrow(/latest_net_D_B.safetensors: not the file .*same size, different contents/);
    await writeFile(ck('mixed', 'latest_net_D_B.safetensors'), net);
    const r = await resume();
    // Stopped after the last iteration of epoch 2, before its end-of-epoch step: that step is all that is left of it.
    expect(r.lines).toContain('resumed exactly at epoch 2, total_iters 10');
    expect(r.lines.filter((l) => l.startsWith('(epoch: 2,'))).toEqual([]);
    expect(r.lines.some((l) => l.startsWith('End of epoch 2 / 3'))).toBe(true);
    expect(r.totalIters).toBe(15);
  });

  it('accepts a set without a manifest (older runs) with a warning that it cannot be checked', async () => {
    await run(tiny('old', { n_epochs: 2, n_epochs_decay: 0 }), 3);
    await unlink(ck('old', 'latest_manifest.json'));
    const r = await run(tiny('old', { n_epochs: 2, n_epochs_decay: 0, continue_train: true }));
    expect(r.lines.some((l) => /latest_manifest.json does not exist .* cannot be checked/.test(l))).toBe(true);
    expect(r.lines).toContain('resumed exactly at epoch 1, total_iters 3');
    expect(r.totalIters).toBe(10);
  });

  it('names the folder when there is nothing to resume, and carries on past a corrupt history.json', async () => {
    const none = run(tiny('never-trained', { continue_train: true }));
    await expect(none).rejects.toThrow(CheckpointError);
    await expect(none).rejects.toThrow(
      `--continue_train: no checkpoint 'latest' in ${join(dir, 'never-trained')} (${ck('never-trained', 'latest_net_G_A.safetensors')} does not exist); train once without --continue_train first`,
    );
    await run(tiny('history', { n_epochs: 2, n_epochs_decay: 0 }), 3);
    await writeFile(ck('history', 'history.json'), '[{"iter": 1, "epo');
    const r = await run(tiny('history', { n_epochs: 2, n_epochs_decay: 0, continue_train: true }));
    expect(r.lines.some((l) => l.startsWith(`${ck('history', 'history.json')}: unreadable (`))).toBe(true);
    expect(r.totalIters).toBe(10);
    expect(r.history).toBe(7);
  });
});

describe('dataset warnings', () => {
  it('reach hooks.onLog', async () => {
    const s = source();
    s.set('data/trainA/extra.gif', makeSyntheticDomains(1, 16, new Rng(1)).A[0]);
    const lines: string[] = [];
    const r = await train(tiny('warned', { n_epochs: 1, n_epochs_decay: 0 }), {
      device,
      source: s,
      io: nodeTrainerIO,
      hooks: { onLog: (l) => lines.push(l) },
    });
    r.model.dispose();
    expect(lines.some((l) => l.includes('skipping 1 image(s) in formats we do not read'))).toBe(true);
  });
});
