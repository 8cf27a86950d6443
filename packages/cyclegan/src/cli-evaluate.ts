// `pnpm cyclegan evaluate`: both generators over the test set, failure-mode metrics per direction, the
// worst-aligned images with cycle-error heat maps, all in <results_dir>/<name>/evaluate_<epoch>/.
import { mkdir, writeFile } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import type { Device } from '@cg/tensor-core';
import { type ArgValue, bar, parseArgs } from './cli_args.js';
import { MAX_PIXELS_OPTION, maxPixelsFrom } from './cli-image-limit.js';
import { loadRunGenerator } from './cli-run-generators.js';
import { UnalignedDataset } from './data/dataset.js';
import { NodeImageSource, writePng } from './data/fs-images.js';
import { THRESHOLDS } from './diagnostics/checks.js';
import { type EvaluationResult, evaluate } from './diagnostics/evaluate.js';
import { formatDirection } from './diagnostics/format.js';
import { ARROW, DIRECTIONS } from './diagnostics/measure.js';
import { CONTENT_SSIM_RANGE, HEAT_MAX } from './diagnostics/scores.js';
import { OptionError } from './errors.js';
import { DEFAULT_TRAIN_OPTIONS } from './options.js';
import { escapeHtml } from './svg_chart.js';

export const EVALUATE_DEFAULTS = {
  ...DEFAULT_TRAIN_OPTIONS,
  dataroot: '',
  results_dir: './results',
  phase: 'test' as 'test' | 'train',
  num_test: Number.POSITIVE_INFINITY,
  worst: 8,
  diversity_images: 32,
  heat_max: HEAT_MAX,
  eval: false,
  ...MAX_PIXELS_OPTION,
};

export async function runEvaluate(argv: string[], device: Device): Promise<EvaluationResult> {
  const a = parseArgs(argv, EVALUATE_DEFAULTS as Record<string, ArgValue>) as Partial<typeof EVALUATE_DEFAULTS>;
  if (!a.dataroot) throw new OptionError('evaluate: --dataroot DIR is required (a folder with testA/ and testB/)');
  const o = { ...EVALUATE_DEFAULTS, ...a };
  const log = (m: string) => process.stderr.write(`${m}\n`);
  // The architecture comes from the checkpoint's keys unless the user names it.
  const overrides = { netG: a.netG, ngf: a.ngf, norm: a.norm, log };
  const G_A = await loadRunGenerator(device, o, 'G_A', overrides, 'evaluate');
  const G_B = await loadRunGenerator(device, o, 'G_B', overrides, 'evaluate');
  for (const g of [G_A, G_B]) {
    if (o.eval) g.eval();
    else g.train(); // as the official test.py: train mode unless --eval
  }
  // The official test options: load_size = crop_size, serial batches, no flip, batch 1.
  const dataset = await UnalignedDataset.open(
    { ...o, batch_size: 1, serial_batches: true, no_flip: true, load_size: a.load_size ?? o.crop_size },
    new NodeImageSource({ maxPixels: maxPixelsFrom(a.max_pixels), warn: log }),
  );
  const t0 = performance.now();
  const result = await evaluate({ device, netG_A: G_A, netG_B: G_B }, dataset, {
    maxImages: o.num_test,
    diversityImages: o.diversity_images,
    worst: o.worst,
    heatMax: o.heat_max,
    onProgress: (done, total) => process.stderr.write(`\r\x1b[K${bar(done, total)} evaluating`),
  });
  const seconds = (performance.now() - t0) / 1000;
  G_A.dispose();
  G_B.dispose();

  const outDir = join(o.results_dir, o.name, `evaluate_${o.epoch}`);
  const worstDir = join(outDir, 'worst');
  await mkdir(worstDir, { recursive: true });
  const folder = (d: 'AtoB' | 'BtoA') => {
    const inA = (d === 'AtoB') === (o.direction !== 'BtoA');
    return `${o.phase}${inA ? 'A' : 'B'}`;
  };
  const json: Record<string, unknown> = {
    name: o.name,
    epoch: o.epoch,
    dataroot: o.dataroot,
    phase: o.phase,
    seconds,
    definitions: {
      diversity: 'mean pairwise mean-L1 distance of translations / the same of real target-domain images',
      detail: 'mean Var(3x3 Laplacian of luminance) of translations / of real target-domain images',
      detail_rec: 'mean Var(Laplacian) of reconstructions / of inputs',
      content: `mean SSIM (Gaussian sigma 1.5, 11x11, data range ${CONTENT_SSIM_RANGE}) of the Sobel magnitude maps of input and translation`,
      cycle_error: 'mean |G_B(G_A(x)) - x| per image, model units ([-1, 1])',
      luminance: 'ITU-R 601 (0.299 R + 0.587 G + 0.114 B) of (x + 1) / 2',
    },
    thresholds: THRESHOLDS,
  };
  const rows: string[] = [];
  for (const d of DIRECTIONS) {
    const r = result[d];
    const worst = [];
    for (const [rank, w] of r.worst.entries()) {
      const stem = `${d}_${String(rank + 1).padStart(2, '0')}_${basename(w.path, extname(w.path))}`;
      const files = {
        real: `${stem}_real.png`,
        fake: `${stem}_fake.png`,
        rec: `${stem}_rec.png`,
        cycle_error: `${stem}_cycle_error.png`,
      };
      await writePng(join(worstDir, files.real), w.real);
      await writePng(join(worstDir, files.fake), w.fake);
      await writePng(join(worstDir, files.rec), w.rec);
      await writePng(join(worstDir, files.cycle_error), w.heatMap);
      worst.push({
        path: w.path,
        content: w.content,
        cycle_error: w.cycle_error,
        detail: w.detail,
        files: Object.fromEntries(Object.entries(files).map(([k, f]) => [k, `worst/${f}`])),
      });
      const cells = Object.entries(files)
        .map(([k, f]) => `<td><img src="worst/${escapeHtml(f)}" width="192"><br>${k}</td>`)
        .join('');
      rows.push(
        `<tr><th>${ARROW[d]} #${rank + 1}<br>${escapeHtml(basename(w.path))}<br>content ${w.content.toFixed(3)}<br>cycle ${w.cycle_error.toFixed(3)}</th>${cells}</tr>`,
      );
    }
    const { worst: _w, ...rest } = r;
    json[d] = { ...rest, worst };
  }
  await writeFile(join(outDir, 'metrics.json'), `${JSON.stringify(json, null, 2)}\n`);
  const html = `<!doctype html><html><head><meta charset="utf-8"><title>${escapeHtml(o.name)}: worst-aligned test images</title><style>img{image-rendering:pixelated}</style></head><body>
<h1>${escapeHtml(o.name)} (epoch ${escapeHtml(o.epoch)}): lowest content scores</h1>
<p>cycle_error column: |rec − real| coloured inferno from black (0) to yellow (≥ ${o.heat_max}, model units).</p>
<table>${rows.join('\n')}</table></body></html>\n`;
  await writeFile(join(outDir, 'index.html'), html);

  process.stderr.write('\n');
  const out: string[] = [];
  for (const d of DIRECTIONS) {
    const r = result[d];
    const other = d === 'AtoB' ? 'BtoA' : 'AtoB';
    const heading = `${ARROW[d]}: ${d === 'AtoB' ? 'G_A' : 'G_B'} on ${r.images} ${folder(d)} images, against ${result[other].images} real ${folder(other)} images (diversity over ${r.diversity_images.fake}/${r.diversity_images.real})`;
    out.push(formatDirection(d, r, heading));
    for (const f of r.findings) out.push(`  ! ${f}`);
    out.push('');
  }
  console.log(out.join('\n'));
  process.stderr.write(
    `evaluated in ${seconds.toFixed(1)} s; wrote ${join(outDir, 'metrics.json')} and the ${Math.max(result.AtoB.worst.length, result.BtoA.worst.length)} worst-aligned images per direction (with heat maps) to ${worstDir} (index.html beside it)\n`,
  );
  return result;
}
