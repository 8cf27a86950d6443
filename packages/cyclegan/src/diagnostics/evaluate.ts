import { type Device, fmtShape, Tensor, tidy } from '@cg/tensor-core';
import type { UnalignedDataset } from '../data/dataset.js';
import { tensorToImages } from '../data/grid.js';
import type { RgbImage } from '../data/image.js';
import { findings } from './checks.js';
import { rgb01ToImages } from './heatmap.js';
import {
  DIRECTIONS,
  type Direction,
  type DirectionMetrics,
  directionImages,
  type Generators,
  type ImageScores,
  runCycles,
  SCORE_NAMES,
  scoreCycles,
  summarize,
} from './measure.js';
import { cycleHeatMap, HEAT_MAX, meanPairwiseDistance, readAll } from './scores.js';

export interface EvaluateOptions {
  /** Evaluate at most this many images per domain (the official --num_test). Default: all. */
  maxImages?: number;
  /**
   * Diversity uses the first this-many images of each set: pairwise distances cost O(n²) and all of them stay
   * on the GPU until the end. Default 32.
   */
  diversityImages?: number;
  /** Keep this many worst-aligned images (lowest content score) per direction, with heat maps. Default 0. */
  worst?: number;
  heatMax?: number;
  onProgress?(done: number, total: number): void;
}

/** One of the worst-aligned images: its scores and its pictures (8-bit RGB). */
export interface WorstImage extends ImageScores {
  real: RgbImage;
  fake: RgbImage;
  rec: RgbImage;
  /** inferno(|rec − real| / heatMax), black = perfect reconstruction. */
  heatMap: RgbImage;
}

export interface DirectionEvaluation extends DirectionMetrics {
  /** Images whose pairwise distances make up diversity_fake / diversity_real. */
  diversity_images: { fake: number; real: number };
  perImage: ImageScores[];
  /** Lowest content first. */
  worst: WorstImage[];
  /** Plain-language findings where a value crosses a threshold (checks.ts). */
  findings: string[];
}

export type EvaluationResult = Record<Direction, DirectionEvaluation>;

/** Up to `cap` images of one shape, copied on the GPU as they arrive. */
class ImageSet {
  private store: Tensor | null = null;
  count = 0;
  /** Set when an image of another size arrived: diversity is then undefined. */
  mismatch = '';

  constructor(
    private readonly device: Device,
    private readonly cap: number,
  ) {}

  add(batch: Tensor, index: number): void {
    if (this.count >= this.cap || this.mismatch) return;
    const [, c, h, w] = batch.shape;
    if (!this.store) this.store = Tensor.empty(this.device, [this.cap, c, h, w]);
    const [, sc, sh, sw] = this.store.shape;
    if (sc !== c || sh !== h || sw !== w) {
      this.mismatch = `images of different sizes (${fmtShape(this.store.shape.slice(1))} and ${fmtShape(batch.shape.slice(1))})`;
      return;
    }
    const bytes = c * h * w * 4;
    this.device.copy(batch.buffer, this.store.buffer, bytes, index * bytes, this.count * bytes);
    this.count++;
  }

  /** div of the collected images as a [] tensor, or null with fewer than 2 (or mixed sizes). */
  diversity(): Tensor | null {
    if (!this.store || this.mismatch || this.count < 2) return null;
    const store = this.store;
    return tidy(() => {
      const [, c, h, w] = store.shape;
      const used = Tensor.empty(this.device, [this.count, c, h, w]);
      this.device.copy(store.buffer, used.buffer, used.byteLength);
      return meanPairwiseDistance(used);
    });
  }

  dispose(): void {
    this.store?.dispose();
  }
}

/**
 * Runs both generators over `dataset` (typically phase 'test', serial_batches, no_flip, as the official test)
 * and measures the three failure-mode families per direction: diversity (collapse), detail, and content
 * preservation with the cycle error. Every image of each domain counts once (the shorter domain's repeats are
 * skipped). Generators are used as they are (train or eval mode is the caller's choice, as in the official
 * test.py). Readbacks: one per batch for the per-image scores, plus the pictures of images that enter the
 * worst-K list.
 */
export async function evaluate(
  model: Generators & { readonly device: Device },
  dataset: UnalignedDataset,
  options: EvaluateOptions = {},
): Promise<EvaluationResult> {
  const cap = options.diversityImages ?? 32;
  const worstK = options.worst ?? 0;
  const heatMax = options.heatMax ?? HEAT_MAX;
  const btoA = dataset.opts.direction === 'BtoA';
  // Model view: real_A comes from the B folder for BtoA.
  const counts: Record<Direction, number> = {
    AtoB: (btoA ? dataset.folderB : dataset.folderA).length,
    BtoA: (btoA ? dataset.folderA : dataset.folderB).length,
  };
  const limit = options.maxImages ?? Number.POSITIVE_INFINITY;
  for (const d of DIRECTIONS) counts[d] = Math.min(counts[d], limit);
  const total = Math.max(counts.AtoB, counts.BtoA);

  const dev = model.device;
  const sets: Record<Direction, { fake: ImageSet; real: ImageSet }> = {
    AtoB: { fake: new ImageSet(dev, cap), real: new ImageSet(dev, cap) },
    BtoA: { fake: new ImageSet(dev, cap), real: new ImageSet(dev, cap) },
  };
  const scores: Record<Direction, ImageScores[]> = { AtoB: [], BtoA: [] };
  const worst: Record<Direction, WorstImage[]> = { AtoB: [], BtoA: [] };
  // Item i of a serial dataset is (A[i % lenA], B[i % lenB]): start from item 0 to count each image once.
  const state = dataset.getState();
  if (state.position !== 0) dataset.setState({ ...state, position: 0 });
  let position = 0;
  try {
    for await (const batch of dataset.epoch()) {
      if (position >= total) break;
      const realA = Tensor.fromArray(dev, batch.A, batch.shapeA);
      const realB = Tensor.fromArray(dev, batch.B, batch.shapeB);
      const { images, tensors } = tidy(() => {
        const images = runCycles(model, realA, realB);
        const s = scoreCycles(images);
        return { images, tensors: DIRECTIONS.flatMap((d) => SCORE_NAMES.map((k) => s[d][k])) };
      });
      const n = batch.shapeA[0];
      const paths: Record<Direction, string[]> = { AtoB: batch.pathsA, BtoA: batch.pathsB };
      for (const d of DIRECTIONS) {
        const other: Direction = d === 'AtoB' ? 'BtoA' : 'AtoB';
        const { fake, real } = directionImages(images, d);
        for (let k = 0; k < n; k++) {
          if (position + k < counts[d]) {
            sets[d].fake.add(fake, k);
            // This direction's inputs are the other direction's real target-domain images.
            sets[other].real.add(real, k);
          }
        }
      }
      const values = await readAll(dev, tensors);
      for (const t of tensors) t.dispose();
      for (const [di, d] of DIRECTIONS.entries()) {
        const col = (k: number) => values[di * SCORE_NAMES.length + k];
        for (let k = 0; k < n; k++) {
          if (position + k >= counts[d]) continue;
          const s: ImageScores = {
            path: paths[d][k],
            content: col(0)[k],
            cycle_error: col(1)[k],
            detail: col(2)[k],
            detail_rec: col(3)[k],
            detail_input: col(4)[k],
          };
          scores[d].push(s);
          const list = worst[d];
          if (worstK > 0 && (list.length < worstK || s.content < list[list.length - 1].content)) {
            list.push(await pictures(dev, s, directionImages(images, d), k, heatMax));
            list.sort((a, b) => a.content - b.content);
            list.length = Math.min(list.length, worstK);
          }
        }
      }
      for (const t of [images.fake_B, images.rec_A, images.fake_A, images.rec_B, realA, realB]) t.dispose();
      position += n;
      options.onProgress?.(Math.min(position, total), total);
    }
    const div = {} as Record<Direction, { fake: number; real: number }>;
    const used = {} as Record<Direction, { fake: number; real: number }>;
    for (const d of DIRECTIONS) {
      const fakeT = sets[d].fake.diversity();
      const realT = sets[d].real.diversity();
      const present = [fakeT, realT].filter((t): t is Tensor => t !== null);
      const v = await readAll(dev, present);
      for (const t of present) t.dispose();
      div[d] = { fake: fakeT ? v[0][0] : Number.NaN, real: realT ? v[fakeT ? 1 : 0][0] : Number.NaN };
      used[d] = { fake: sets[d].fake.count, real: sets[d].real.count };
    }
    const metrics = summarize(scores, div);
    const out = {} as EvaluationResult;
    for (const d of DIRECTIONS) {
      out[d] = {
        ...metrics[d],
        diversity_images: used[d],
        perImage: scores[d],
        worst: worst[d],
        findings: findings(d, metrics[d]),
      };
    }
    return out;
  } finally {
    for (const d of DIRECTIONS) for (const s of Object.values(sets[d])) s.dispose();
  }
}

/** Reads back image k of a direction's batch with its heat map. */
async function pictures(
  device: Device,
  s: ImageScores,
  imgs: { real: Tensor; fake: Tensor; rec: Tensor },
  k: number,
  heatMax: number,
): Promise<WorstImage> {
  const heat = cycleHeatMap(imgs.real, imgs.rec, heatMax);
  const [real, fake, rec, h] = await readAll(device, [imgs.real, imgs.fake, imgs.rec, heat]);
  const pick = (data: Float32Array, t: Tensor) => {
    const [n, c, hh, w] = t.shape;
    return tensorToImages(data, [n, c, hh, w])[k];
  };
  const out: WorstImage = {
    ...s,
    real: pick(real, imgs.real),
    fake: pick(fake, imgs.fake),
    rec: pick(rec, imgs.rec),
    heatMap: rgb01ToImages(h, heat.shape)[k],
  };
  heat.dispose();
  return out;
}
