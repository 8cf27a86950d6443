import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Device, Rng } from '@cg/tensor-core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { testDevice } from '../../../../test/helpers/device.js';
import { runEvaluate } from '../../src/cli-evaluate.js';
import {
  DIRECTIONS,
  evaluate,
  MemoryImageSource,
  makeSyntheticDomains,
  THRESHOLDS,
  type TrainOptions,
  train,
  UnalignedDataset,
} from '../../src/index.js';
import { nodeTrainerIO, writePng } from '../../src/node.js';

/*
 * A short training run on generated domains with diagnostics on: the metrics are logged, charted and stay
 * healthy; the report has the diagnostics and heat maps; diagnostics do not change the training stream; and
 * `cyclegan evaluate` on the saved checkpoint gives the same numbers as the library's evaluate().
 */

const SIZE = 16;
let device: Device;
let dir: string;

beforeAll(async () => {
  device = await testDevice();
  dir = await mkdtemp(join(tmpdir(), 'cg-diag-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function options(name: string, n_epochs: number): Partial<TrainOptions> & { dataroot: string } {
  return {
    dataroot: 'syn',
    name,
    checkpoints_dir: join(dir, 'checkpoints'),
    netG: 'resnet_2blocks' as TrainOptions['netG'],
    ngf: 4,
    ndf: 4,
    netD: 'n_layers',
    n_layers_D: 2,
    load_size: SIZE + 2,
    crop_size: SIZE,
    n_epochs,
    n_epochs_decay: 0,
    lr: 0.001,
    seed: 3,
    display_freq: 6,
    print_freq: 6,
    save_epoch_freq: 1000,
  };
}

describe('diagnostics during training', () => {
  it('stay healthy on a short run, reach the log, the history and the report, and leave training unchanged', async () => {
    const domains = makeSyntheticDomains(6, SIZE, new Rng(9));
    const test = makeSyntheticDomains(4, SIZE, new Rng(10));
    const source = new MemoryImageSource();
    source.addAll('syn/trainA', domains.A);
    source.addAll('syn/trainB', domains.B);
    source.addAll('syn/testA', test.A);
    source.addAll('syn/testB', test.B);
    const lines: string[] = [];
    const result = await train(options('diag', 3), {
      device,
      source,
      io: nodeTrainerIO,
      diagnostics: { probeSize: 5 },
      hooks: { onLog: (l) => lines.push(l) },
    });
    const measured = result.history.filter((p) => p.metrics);
    expect(measured.map((p) => p.iter)).toEqual([6, 12, 18]);
    for (const p of measured) {
      for (const d of DIRECTIONS) {
        expect(p.metrics![`diversity_${d}`], `diversity ${d} at ${p.iter}`).toBeGreaterThan(THRESHOLDS.collapse);
        for (const k of ['detail', 'detail_rec', 'content', 'cycle_error']) {
          expect(Number.isFinite(p.metrics![`${k}_${d}`]), `${k}_${d}`).toBe(true);
        }
      }
    }
    expect(lines.join('\n')).toMatch(/diagnostics: probe set of 5 images per domain/);
    expect(lines.filter((l) => / \| diversity A→B \d+\.\d\d B→A \d+\.\d\d$/.test(l))).toHaveLength(3);
    expect(lines.join('\n')).not.toMatch(/mode collapse/);

    const html = await readFile(join(result.dir, 'report.html'), 'utf8');
    expect(html).toContain('<h2>Diagnostics</h2>');
    expect(html).toContain('Diversity: fake / real pairwise L1');
    expect(html).toContain('linearGradient id="inferno"');
    expect(html.match(/alt="cycle-error heat maps"/g)).toHaveLength(3);

    // The same run without diagnostics: identical losses after a measurement (eval mode, no RNG draws).
    const plain = await train(options('plain', 2), { device, source, io: nodeTrainerIO });
    expect(plain.history.find((p) => p.iter === 12)?.losses).toEqual(result.history.find((p) => p.iter === 12)?.losses);
    plain.model.dispose();

    // `cyclegan evaluate` on the saved checkpoint vs the library on the model in memory.
    const data = join(dir, 'data');
    for (const [d, imgs] of [
      ['testA', test.A],
      ['testB', test.B],
    ] as const) {
      for (const [i, img] of imgs.entries()) await writePng(join(data, d, `${i}.png`), img);
    }
    const results = join(dir, 'results');
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    let cli: Awaited<ReturnType<typeof runEvaluate>>;
    let printed = '';
    try {
      cli = await runEvaluate(
        [
          ...['--dataroot', data, '--name', 'diag', '--checkpoints_dir', join(dir, 'checkpoints')],
          ...['--results_dir', results, '--netG', 'resnet_2blocks', '--ngf', '4', '--crop_size', String(SIZE)],
          ...['--worst', '2'],
        ],
        device,
      );
      printed = log.mock.calls.flat().join('\n');
    } finally {
      log.mockRestore();
      stderr.mockRestore();
    }
    expect(printed).toMatch(/A→B: G_A on 4 testA images[\s\S]*diversity[\s\S]*B→A: G_B on 4 testB images/);
    const testSet = await UnalignedDataset.open(
      { dataroot: 'syn', phase: 'test', crop_size: SIZE, load_size: SIZE, serial_batches: true, no_flip: true },
      source,
    );
    const lib = await evaluate(result.model, testSet);
    const json = JSON.parse(await readFile(join(results, 'diag', 'evaluate_latest', 'metrics.json'), 'utf8'));
    for (const d of DIRECTIONS) {
      for (const k of ['diversity', 'detail', 'detail_rec', 'content', 'cycle_error'] as const) {
        expect(cli[d][k], `${d} ${k}`).toBeCloseTo(lib[d][k], 6);
        expect(json[d][k]).toBe(cli[d][k]);
      }
      expect(json[d].worst).toHaveLength(2);
      const worstFile = join(results, 'diag', 'evaluate_latest', json[d].worst[0].files.cycle_error);
      expect((await readFile(worstFile)).subarray(1, 4).toString()).toBe('PNG');
    }
    result.model.dispose();
  });
});
