// `pnpm cyclegan test`: the official test.py for CycleGAN, writing results/<name>/test_<epoch>/.
import { mkdir, writeFile } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import type { nn } from '@cg/autograd';
import type { Device } from '@cg/tensor-core';
import { type ArgValue, bar, parseArgs } from './cli_args.js';
import {
  MAX_HOST_MEMORY_OPTION,
  MAX_MEMORY_OPTION,
  MAX_PIXELS_OPTION,
  maxGpuBytesFrom,
  maxHostBytesFrom,
  maxPixelsFrom,
} from './cli-image-limit.js';
import { loadRunGenerator } from './cli-run-generators.js';
import { UnalignedDataset } from './data/dataset.js';
import { NodeImageSource, writePng } from './data/fs-images.js';
import { tensorToImages } from './data/grid.js';
import { OptionError } from './errors.js';
import { DEFAULT_TRAIN_OPTIONS } from './options.js';
import { escapeHtml } from './svg_chart.js';
import { generateAnySize } from './tiled/translate_any_size.js';

const TEST_DEFAULTS = {
  ...DEFAULT_TRAIN_OPTIONS,
  dataroot: '',
  results_dir: './results',
  num_test: 50,
  eval: false,
  ...MAX_PIXELS_OPTION,
  ...MAX_HOST_MEMORY_OPTION,
  ...MAX_MEMORY_OPTION,
};

/** [N, C, H, W] with another channel count: a generator keeps the size and changes the channels. */
const shapeOut = (s: readonly number[], channels: number) => [s[0], channels, s[2], s[3]];

export async function runTest(argv: string[], device: Device): Promise<void> {
  const a = parseArgs(argv, TEST_DEFAULTS as Record<string, ArgValue>) as Partial<typeof TEST_DEFAULTS>;
  if (!a.dataroot) throw new OptionError('test: --dataroot DIR is required (a folder with testA/ and testB/)');
  const o = { ...TEST_DEFAULTS, ...a };
  const log = (m: string) => process.stderr.write(`${m}\n`);
  // The architecture comes from the checkpoint's keys unless the user names it.
  const overrides = { netG: a.netG, ngf: a.ngf, norm: a.norm, log };
  const load = (net: 'G_A' | 'G_B') => loadRunGenerator(device, o, net, overrides, 'test');
  const G_A = await load('G_A');
  const G_B = await load('G_B');
  for (const g of [G_A, G_B]) {
    if (o.eval) g.eval();
    else g.train(); // official test.py keeps train mode unless --eval
  }
  // Official test options: load_size = crop_size, serial batches, no flip, batch 1.
  const dataset = await UnalignedDataset.open(
    { ...o, phase: 'test', batch_size: 1, serial_batches: true, no_flip: true, load_size: a.load_size ?? o.crop_size },
    new NodeImageSource({ maxPixels: maxPixelsFrom(a.max_pixels), warn: log }),
  );
  const outDir = join(o.results_dir, o.name, `test_${o.epoch}`);
  const imgDir = join(outDir, 'images');
  await mkdir(imgDir, { recursive: true });
  const total = Math.min(o.num_test, dataset.length);
  const tiledOptions = {
    maxHostBytes: maxHostBytesFrom(a.max_host_memory),
    maxGpuBytes: maxGpuBytesFrom(a.max_memory),
  };
  const rows: string[] = [];
  let i = 0;
  let runs = 0;
  let tiledRuns = 0;
  for await (const batch of dataset.epoch()) {
    if (i >= total) break;
    // Each forward takes the whole-image path when it fits and exact tiles otherwise (a --preprocess none
    // test set keeps photos at their own size).
    const run = async (g: nn.Module, data: Float32Array, shape: readonly number[]) => {
      const r = await generateAnySize(g, data, shape as [1, number, number, number], tiledOptions);
      runs++;
      if (r.tiled) tiledRuns++;
      return r.data;
    };
    const fake_B = await run(G_A, batch.A, batch.shapeA);
    const rec_A = await run(G_B, fake_B, shapeOut(batch.shapeA, o.output_nc));
    const fake_A = await run(G_B, batch.B, batch.shapeB);
    const rec_B = await run(G_A, fake_A, shapeOut(batch.shapeB, o.input_nc));
    const outs: Record<string, [Float32Array, readonly number[]]> = {
      real_A: [batch.A, batch.shapeA],
      fake_B: [fake_B, shapeOut(batch.shapeA, o.output_nc)],
      rec_A: [rec_A, batch.shapeA],
      real_B: [batch.B, batch.shapeB],
      fake_A: [fake_A, shapeOut(batch.shapeB, o.input_nc)],
      rec_B: [rec_B, batch.shapeB],
    };
    const stem = basename(batch.pathsA[0], extname(batch.pathsA[0]));
    const cells: string[] = [];
    for (const [label, [data, shape]] of Object.entries(outs)) {
      const [n, c, h, w] = shape;
      const img = tensorToImages(data, [n, c, h, w])[0];
      const file = `${stem}_${label}.png`;
      await writePng(join(imgDir, file), img);
      cells.push(`<td><img src="images/${escapeHtml(file)}" width="256"><br>${label}</td>`);
    }
    rows.push(`<tr><th>${escapeHtml(stem)}</th>${cells.join('')}</tr>`);
    i++;
    process.stderr.write(`\r\x1b[K${bar(i, total)} ${stem}`);
  }
  const html = `<!doctype html><html><head><meta charset="utf-8"><title>Experiment = ${escapeHtml(o.name)}, Phase = test, Epoch = ${escapeHtml(o.epoch)}</title></head><body><table>${rows.join('\n')}</table></body></html>\n`;
  await writeFile(join(outDir, 'index.html'), html);
  const tiles = tiledRuns ? ` (${tiledRuns} of ${runs} generator runs in tiles)` : '';
  process.stderr.write(`\nwrote ${i} results to ${outDir}${tiles}\n`);
  G_A.dispose();
  G_B.dispose();
}
