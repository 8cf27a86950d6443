// `pnpm cyclegan demo` (the README's first command): a small CycleGAN trained on a synthetic two-domain
// dataset made on the fly, with a measurable result: translated images take on the target domain's colour.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { nn } from '@cg/autograd';
import { type Device, Rng } from '@cg/tensor-core';
import { type ArgValue, formatDuration, parseArgs } from './cli_args.js';
import { progressPrinter } from './cli-progress.js';
import { UnalignedDataset } from './data/dataset.js';
import { writePng } from './data/fs-images.js';
import { makeGrid } from './data/grid.js';
import type { RgbImage } from './data/image.js';
import { MemoryImageSource } from './data/memory_source.js';
import { blueness, makeSyntheticDomains } from './data/synthetic.js';
import { evaluate } from './diagnostics/evaluate.js';
import { formatMetrics } from './diagnostics/format.js';
import type { Direction, DirectionMetrics } from './diagnostics/measure.js';
import { translateImage } from './generator_io.js';
import { nodeTrainerIO } from './node.js';
import type { TrainOptions } from './options.js';
import { train } from './trainer.js';

/** Sized so the whole command takes a few minutes on a 2-core software adapter; a real GPU takes seconds. */
export const DEMO_DEFAULTS = {
  out: './demo-output',
  images: 24,
  size: 32,
  ngf: 8,
  ndf: 8,
  netG: 'resnet_6blocks',
  n_epochs: 6,
  n_epochs_decay: 4,
  lr: 0.001,
  seed: 1,
};

export interface DemoResult {
  /** Mean blue − mean red of each image set, in levels: A is warm (negative), B cool (positive). */
  blueness: { real_A: number; real_B: number; fake_B: number; fake_A: number };
  /** How far G_A moved A's colour towards B's: (fake_B − real_A) / (real_B − real_A); ≈1 means learned. */
  progressAtoB: number;
  progressBtoA: number;
  /** Failure-mode metrics of the trained model on the held-out images (see diagnostics/scores.ts). */
  metrics: Record<Direction, DirectionMetrics>;
  seconds: number;
  secondsPerIter: number;
  peakBytes: number;
}

export async function runDemo(argv: string[], device: Device, quiet = false): Promise<DemoResult> {
  const a = { ...DEMO_DEFAULTS, ...parseArgs(argv, DEMO_DEFAULTS as Record<string, ArgValue>) };
  const log = (m: string) => {
    if (!quiet) process.stderr.write(`${m}\n`);
  };
  const rng = new Rng(a.seed);
  const train_ = makeSyntheticDomains(a.images, a.size, rng);
  const test = makeSyntheticDomains(8, a.size, rng);
  const source = new MemoryImageSource();
  source.addAll('synthetic/trainA', train_.A);
  source.addAll('synthetic/trainB', train_.B);
  source.addAll('synthetic/testA', test.A);
  source.addAll('synthetic/testB', test.B);
  log(
    `demo: ${a.images} + ${a.images} synthetic ${a.size}×${a.size} images (A: warm smooth shapes, B: cool striped shapes)`,
  );
  log(
    `demo: device ${device.adapter.description || device.adapter.architecture} (${device.adapter.backend}${device.adapter.isSoftware ? ', software' : ''})`,
  );
  const options: Partial<TrainOptions> & { dataroot: string } = {
    dataroot: 'synthetic',
    name: 'demo',
    checkpoints_dir: a.out,
    netG: a.netG as TrainOptions['netG'],
    ngf: a.ngf,
    ndf: a.ndf,
    load_size: a.size + a.size / 8,
    crop_size: a.size,
    n_epochs: a.n_epochs,
    n_epochs_decay: a.n_epochs_decay,
    lr: a.lr,
    seed: a.seed,
    display_freq: a.images * 2,
    print_freq: a.images,
    save_epoch_freq: 1000,
  };
  const result = await train(options, {
    device,
    source,
    io: nodeTrainerIO,
    diagnostics: true,
    hooks: quiet ? {} : { onProgress: progressPrinter(), onLog: (l) => log(`\r\x1b[K${l}`) },
  });
  const { model } = result;
  const translateAll = async (net: nn.Module, images: RgbImage[]) => {
    const out: RgbImage[] = [];
    for (const img of images) out.push(await translateImage(net, img, { multiple: 4, input_nc: 3 }));
    return out;
  };
  const fakeB = await translateAll(model.netG_A, test.A);
  const fakeA = await translateAll(model.netG_B, test.B);
  const b = { real_A: blueness(test.A), real_B: blueness(test.B), fake_B: blueness(fakeB), fake_A: blueness(fakeA) };
  const progressAtoB = (b.fake_B - b.real_A) / (b.real_B - b.real_A);
  const progressBtoA = (b.fake_A - b.real_B) / (b.real_A - b.real_B);
  // The diagnostics on the held-out images, as `pnpm cyclegan evaluate` computes them.
  const testSet = await UnalignedDataset.open(
    { ...options, phase: 'test', batch_size: 1, serial_batches: true, no_flip: true, load_size: a.size },
    source,
  );
  const evaluation = await evaluate(model, testSet);
  const metrics = Object.fromEntries(
    (['AtoB', 'BtoA'] as const).map((d) => {
      const { perImage: _p, worst: _w, findings: _f, diversity_images: _d, ...m } = evaluation[d];
      return [d, m];
    }),
  ) as Record<Direction, DirectionMetrics>;
  await mkdir(a.out, { recursive: true });
  await writePng(join(a.out, 'A_to_B.png'), makeGrid([...test.A, ...fakeB], test.A.length, 2));
  await writePng(join(a.out, 'B_to_A.png'), makeGrid([...test.B, ...fakeA], test.B.length, 2));
  const summary: DemoResult = {
    blueness: b,
    progressAtoB,
    progressBtoA,
    metrics,
    seconds: result.seconds,
    secondsPerIter: result.seconds / Math.max(1, result.totalIters),
    peakBytes: device.memory().peakBytes,
  };
  await writeFile(join(a.out, 'demo.json'), `${JSON.stringify(summary, null, 2)}\n`);
  model.dispose();
  log('');
  log(
    `demo: trained ${result.totalIters} iterations in ${formatDuration(result.seconds)} (${summary.secondsPerIter.toFixed(3)} s/iter)`,
  );
  log(`demo: colour (mean blue − red) of held-out images: A ${b.real_A.toFixed(1)}, B ${b.real_B.toFixed(1)}`);
  log(`demo:   G_A(A) ${b.fake_B.toFixed(1)}  → ${(100 * progressAtoB).toFixed(0)}% of the way from A to B`);
  log(`demo:   G_B(B) ${b.fake_A.toFixed(1)}  → ${(100 * progressBtoA).toFixed(0)}% of the way from B to A`);
  log(`demo: failure-mode metrics of the trained model on the ${test.A.length} + ${test.B.length} held-out images:`);
  log(formatMetrics(metrics).replace(/^(?=.)/gm, '  '));
  for (const d of ['AtoB', 'BtoA'] as const) for (const f of evaluation[d].findings) log(`  ! ${f}`);
  log(
    `demo: wrote ${join(a.out, 'A_to_B.png')}, ${join(a.out, 'B_to_A.png')} (top row input, bottom row translation),`,
  );
  log(
    `demo:       ${join(result.dir, 'report.html')} (loss and diagnostics curves, samples with cycle-error heat maps), checkpoints in ${result.dir}`,
  );
  return summary;
}
