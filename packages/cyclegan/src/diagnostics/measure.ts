import { type nn, noGrad, variable } from '@cg/autograd';
import type { Tensor } from '@cg/tensor-core';
import { tidy } from '@cg/tensor-core';
import { contentScores, cycleErrors, detailScores } from './scores.js';

/** The two generators as CycleGANModel holds them (G_A: A→B, G_B: B→A). */
export interface Generators {
  readonly netG_A: nn.Module;
  readonly netG_B: nn.Module;
}

export const DIRECTIONS = ['AtoB', 'BtoA'] as const;
export type Direction = (typeof DIRECTIONS)[number];
export const ARROW: Record<Direction, string> = { AtoB: 'A→B', BtoA: 'B→A' };

/** Both cycles of one batch, as the official test computes them. */
export interface CycleImages {
  real_A: Tensor;
  fake_B: Tensor;
  rec_A: Tensor;
  real_B: Tensor;
  fake_A: Tensor;
  rec_B: Tensor;
}

/** fake_B = G_A(real_A), rec_A = G_B(fake_B) and the same from B, without recording a graph. */
export function runCycles(g: Generators, real_A: Tensor, real_B: Tensor): CycleImages {
  return tidy(() =>
    noGrad(() => {
      const fake_B = g.netG_A.forward(variable(real_A)).data;
      const rec_A = g.netG_B.forward(variable(fake_B)).data;
      const fake_A = g.netG_B.forward(variable(real_B)).data;
      const rec_B = g.netG_A.forward(variable(fake_A)).data;
      return { real_A, fake_B, rec_A, real_B, fake_A, rec_B };
    }),
  );
}

/** The per-image score tensors ([N] each) of one direction. */
export interface DirectionScoreTensors {
  content: Tensor;
  cycle_error: Tensor;
  detail_fake: Tensor;
  detail_rec: Tensor;
  /** hf of this direction's inputs: they are the other direction's real target-domain images. */
  detail_input: Tensor;
}

/** The images of one direction: its inputs, their translations and reconstructions. */
export function directionImages(c: CycleImages, d: Direction): { real: Tensor; fake: Tensor; rec: Tensor } {
  return d === 'AtoB'
    ? { real: c.real_A, fake: c.fake_B, rec: c.rec_A }
    : { real: c.real_B, fake: c.fake_A, rec: c.rec_B };
}

export function scoreCycles(c: CycleImages): Record<Direction, DirectionScoreTensors> {
  const one = (d: Direction): DirectionScoreTensors => {
    const { real, fake, rec } = directionImages(c, d);
    return {
      content: contentScores(real, fake),
      cycle_error: cycleErrors(real, rec),
      detail_fake: detailScores(fake),
      detail_rec: detailScores(rec),
      detail_input: detailScores(real),
    };
  };
  return { AtoB: one('AtoB'), BtoA: one('BtoA') };
}

export const SCORE_NAMES = ['content', 'cycle_error', 'detail_fake', 'detail_rec', 'detail_input'] as const;
export type ScoreName = (typeof SCORE_NAMES)[number];

/** Per-image scores of one direction, read back. */
export interface ImageScores {
  path: string;
  content: number;
  cycle_error: number;
  /** hf(G(x)) and hf(rec) of this image. */
  detail: number;
  detail_rec: number;
  /** hf(x) of the input. */
  detail_input: number;
}

/**
 * The numbers of one direction (A→B: G_A on domain A, judged against real domain-B images). All are means over
 * the evaluated images; see scores.ts for the formulas and what bad values look like.
 */
export interface DirectionMetrics {
  /** div(fakes) / div(real target images); ≈ 1 healthy, → 0 collapse. NaN with fewer than 2 images. */
  diversity: number;
  diversity_fake: number;
  diversity_real: number;
  /** mean hf(fakes) / mean hf(real target images); ≈ 1 healthy, ≪ 1 blurry, ≫ 1 noisy. */
  detail: number;
  detail_fake: number;
  detail_real: number;
  /** mean hf(rec) / mean hf(inputs): detail lost (≪ 1) or added (≫ 1) by the round trip. */
  detail_rec: number;
  /** mean Sobel-SSIM between input and translation; 1 = edges where they were. */
  content: number;
  /** mean |rec − real| (model units). */
  cycle_error: number;
  /** Images of this direction's domain that were evaluated. */
  images: number;
}

export const mean = (xs: readonly number[]): number =>
  xs.length === 0 ? Number.NaN : xs.reduce((a, b) => a + b, 0) / xs.length;

/** Combines per-image scores of both directions and the diversities into the metrics of each direction. */
export function summarize(
  scores: Record<Direction, readonly ImageScores[]>,
  diversity: Record<Direction, { fake: number; real: number }>,
): Record<Direction, DirectionMetrics> {
  const one = (d: Direction): DirectionMetrics => {
    const other: Direction = d === 'AtoB' ? 'BtoA' : 'AtoB';
    const s = scores[d];
    const detailFake = mean(s.map((x) => x.detail));
    // The real target-domain images of A→B are B→A's inputs.
    const detailReal = mean(scores[other].map((x) => x.detail_input));
    const dv = diversity[d];
    return {
      diversity: dv.fake / dv.real,
      diversity_fake: dv.fake,
      diversity_real: dv.real,
      detail: detailFake / detailReal,
      detail_fake: detailFake,
      detail_real: detailReal,
      detail_rec: mean(s.map((x) => x.detail_rec)) / mean(s.map((x) => x.detail_input)),
      content: mean(s.map((x) => x.content)),
      cycle_error: mean(s.map((x) => x.cycle_error)),
      images: s.length,
    };
  };
  return { AtoB: one('AtoB'), BtoA: one('BtoA') };
}

/** The keys charted and logged during training: `<metric>_<direction>`. */
export const TRACKED = ['diversity', 'detail', 'detail_rec', 'content', 'cycle_error'] as const;

export function flatten(m: Record<Direction, DirectionMetrics>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const d of DIRECTIONS) for (const k of TRACKED) out[`${k}_${d}`] = m[d][k];
  return out;
}
