import { type Device, Tensor, tidy } from '@cg/tensor-core';
import { UnalignedDataset } from '../data/dataset.js';
import type { ImageSource } from '../data/files.js';
import { makeGrid } from '../data/grid.js';
import type { RgbImage } from '../data/image.js';
import { DataError } from '../errors.js';
import type { VisualName } from '../model.js';
import type { TrainOptions } from '../options.js';
import { CollapseWatch, THRESHOLDS } from './checks.js';
import { rgb01ToImages } from './heatmap.js';
import {
  ARROW,
  DIRECTIONS,
  type Direction,
  type DirectionMetrics,
  directionImages,
  flatten,
  type Generators,
  type ImageScores,
  runCycles,
  SCORE_NAMES,
  scoreCycles,
  summarize,
} from './measure.js';
import { cycleHeatMap, HEAT_MAX, meanPairwiseDistance, readAll } from './scores.js';

export interface DiagnosticsOptions {
  /** Images per domain in the fixed probe set (fewer if a domain has fewer). Default 8. */
  probeSize?: number;
  /** Diversity below this for `patience` evaluations in a row prints a collapse warning. */
  collapseThreshold?: number;
  patience?: number;
  /** |rec − real| that the heat maps show at full brightness (model units). */
  heatMax?: number;
}

export interface DiagnosticsReading {
  /** `<metric>_<direction>` for the history, the charts and the report. */
  metrics: Record<string, number>;
  byDirection: Record<Direction, DirectionMetrics>;
  /** For the progress line, e.g. `diversity A→B 0.93 B→A 0.88`. */
  line: string;
  /** Collapse warnings (with the official advice), empty when healthy. */
  warnings: string[];
  /** Wall time of this measurement, readback included. */
  seconds: number;
}

/** The report charts of the tracked metrics. */
export const DIAGNOSTIC_CHARTS = [
  {
    title: 'Diversity: fake / real pairwise L1 (≈1 healthy, →0 mode collapse)',
    keys: ['diversity_AtoB', 'diversity_BtoA'],
  },
  {
    title: 'Detail: Laplacian variance, fake / real and rec / input (≈1 healthy)',
    keys: ['detail_AtoB', 'detail_BtoA', 'detail_rec_AtoB', 'detail_rec_BtoA'],
  },
  { title: 'Content: Sobel-edge SSIM, input vs translation (1 = aligned)', keys: ['content_AtoB', 'content_BtoA'] },
  { title: 'Cycle error: mean |rec − real| (0 = perfect)', keys: ['cycle_error_AtoB', 'cycle_error_BtoA'] },
];

/**
 * Diagnostics during training: a fixed probe set (the first `probeSize` images of each domain, preprocessed
 * as for training but deterministically: serial order, no flip, the run's seed), uploaded once and kept on the
 * GPU. Every measure() runs both generators over it under noGrad, in eval mode so that dropout draws no random
 * numbers and batch norm keeps its running statistics (the training stream is the same with or without
 * diagnostics), and reads back only the final scalars.
 *
 * Cost per measurement: 4 generator forwards of `probeSize` images (about the forward work of
 * 2·probeSize/3 training iterations at batch size 1, without any backward), plus filters and
 * probeSize² pairwise distances that are negligible next to them. At the default display_freq 400 that is
 * about 1% of training time.
 */
export class TrainingDiagnostics {
  readonly charts = DIAGNOSTIC_CHARTS;
  private readonly watch: CollapseWatch;
  readonly heatMax: number;
  private latest: DiagnosticsReading | null = null;

  private constructor(
    readonly device: Device,
    private readonly probeA: Tensor,
    private readonly probeB: Tensor,
    readonly probePaths: { A: string[]; B: string[] },
    private readonly realDiversity: Record<Direction, number>,
    options: DiagnosticsOptions,
  ) {
    this.watch = new CollapseWatch(
      options.collapseThreshold ?? THRESHOLDS.collapse,
      options.patience ?? THRESHOLDS.patience,
    );
    this.heatMax = options.heatMax ?? HEAT_MAX;
  }

  /** Loads the probe set from the training data (model view: A is real_A even for BtoA). */
  static async create(
    device: Device,
    o: TrainOptions,
    source: ImageSource,
    options: DiagnosticsOptions = {},
  ): Promise<TrainingDiagnostics> {
    const all = await UnalignedDataset.open({ ...o, serial_batches: true, no_flip: true, batch_size: 1 }, source);
    const count = Math.min(options.probeSize ?? 8, all.folderA.length, all.folderB.length);
    // Folders are sorted before capping, so these are the first `count` images of each domain.
    const limited = await UnalignedDataset.open(
      { ...o, serial_batches: true, no_flip: true, batch_size: count, max_dataset_size: count },
      source,
    );
    const batch = (await limited.epoch(0).next()).value;
    if (!batch) throw new DataError('diagnostics: the probe set is empty');
    const probeA = Tensor.fromArray(device, batch.A, batch.shapeA);
    const probeB = Tensor.fromArray(device, batch.B, batch.shapeB);
    // The real images never change: their diversity is measured once.
    const div = tidy(() => [meanPairwiseDistance(probeB), meanPairwiseDistance(probeA)]);
    const present = div.filter((t): t is Tensor => t !== null);
    const values = await readAll(device, present);
    for (const t of present) t.dispose();
    const realDiversity = {
      AtoB: div[0] ? values[0][0] : Number.NaN,
      BtoA: div[1] ? values[div[0] ? 1 : 0][0] : Number.NaN,
    };
    return new TrainingDiagnostics(
      device,
      probeA,
      probeB,
      { A: batch.pathsA, B: batch.pathsB },
      realDiversity,
      options,
    );
  }

  get probeSize(): number {
    return this.probeA.shape[0];
  }

  /** The latest reading, or null before the first measure(). */
  get last(): DiagnosticsReading | null {
    return this.latest;
  }

  /** Runs both generators over the probe set and returns the metrics; one GPU→CPU readback. */
  async measure(g: Generators): Promise<DiagnosticsReading> {
    const t0 = performance.now();
    const nets = [g.netG_A, g.netG_B];
    const wasTraining = nets.map((n) => n.training);
    for (const n of nets) n.eval();
    let tensors: Tensor[];
    let fakeDiv: (Tensor | null)[];
    try {
      ({ tensors, fakeDiv } = tidy(() => {
        const c = runCycles(g, this.probeA, this.probeB);
        const s = scoreCycles(c);
        return {
          tensors: DIRECTIONS.flatMap((d) => SCORE_NAMES.map((k) => s[d][k])),
          fakeDiv: DIRECTIONS.map((d) => meanPairwiseDistance(directionImages(c, d).fake)),
        };
      }));
    } finally {
      nets.forEach((n, i) => {
        n.train(wasTraining[i]);
      });
    }
    const divTensors = fakeDiv.filter((t): t is Tensor => t !== null);
    const values = await readAll(this.device, [...tensors, ...divTensors]);
    for (const t of [...tensors, ...divTensors]) t.dispose();
    const scores = {} as Record<Direction, ImageScores[]>;
    DIRECTIONS.forEach((d, di) => {
      const col = (k: number) => values[di * SCORE_NAMES.length + k];
      const paths = d === 'AtoB' ? this.probePaths.A : this.probePaths.B;
      scores[d] = paths.map((path, i) => ({
        path,
        content: col(0)[i],
        cycle_error: col(1)[i],
        detail: col(2)[i],
        detail_rec: col(3)[i],
        detail_input: col(4)[i],
      }));
    });
    let at = tensors.length;
    const fake = fakeDiv.map((t) => (t ? values[at++][0] : Number.NaN));
    const byDirection = summarize(scores, {
      AtoB: { fake: fake[0], real: this.realDiversity.AtoB },
      BtoA: { fake: fake[1], real: this.realDiversity.BtoA },
    });
    const warnings = this.watch.update({ AtoB: byDirection.AtoB.diversity, BtoA: byDirection.BtoA.diversity });
    const line = `diversity ${DIRECTIONS.map((d) => `${ARROW[d]} ${byDirection[d].diversity.toFixed(2)}`).join(' ')}`;
    this.latest = {
      metrics: flatten(byDirection),
      byDirection,
      line,
      warnings,
      seconds: (performance.now() - t0) / 1000,
    };
    return this.latest;
  }

  /**
   * Cycle-error heat maps of a batch of visuals, laid out like visualsGrid (rows real_A, fake_B, rec_A, real_B,
   * fake_A, rec_B; one column per image; 2-pixel gaps) with |rec_A − real_A| in the rec_A row, |rec_B − real_B|
   * in the rec_B row and the other rows blank (white), so that beside the sample grid each map lines up with its
   * reconstruction. Inferno from black (0) to yellow (≥ heatMax). Null when the visuals lack a cycle.
   */
  async heatMaps(visuals: Partial<Record<VisualName, Tensor>>): Promise<RgbImage | null> {
    const { real_A, rec_A, real_B, rec_B } = visuals;
    if (!real_A || !rec_A || !real_B || !rec_B) return null;
    const maps = tidy(() => [cycleHeatMap(real_A, rec_A, this.heatMax), cycleHeatMap(real_B, rec_B, this.heatMax)]);
    const [a, b] = await readAll(this.device, maps);
    const heatA = rgb01ToImages(a, maps[0].shape);
    const heatB = rgb01ToImages(b, maps[1].shape);
    for (const t of maps) t.dispose();
    const blank = (img: RgbImage): RgbImage => ({ ...img, data: new Uint8Array(img.data.length).fill(255) });
    const blanks = heatA.map(blank);
    const rows = [blanks, blanks, heatA, blanks, blanks, heatB];
    return makeGrid(rows.flat(), real_A.shape[0], 2, 255);
  }

  dispose(): void {
    this.probeA.dispose();
    this.probeB.dispose();
  }
}
