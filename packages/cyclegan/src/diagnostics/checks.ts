import { ARROW, type Direction, type DirectionMetrics } from './measure.js';

/**
 * Where a value stops looking healthy. Calibrated on the synthetic demo domains and constructed cases (a constant
 * generator, blurred and shifted outputs; see the tests): they flag clear failures, not fine differences, so
 * compare the curves of a run over time before trusting a single value.
 */
export const THRESHOLDS = {
  /** diversity below this counts as collapsing; training warns after `patience` such evaluations in a row. */
  collapse: 0.3,
  patience: 3,
  /** detail (or detail_rec) below this: outputs much blurrier than real images. */
  blurry: 0.5,
  /** detail (or detail_rec) above this: noise, checkerboard or other high-frequency artefacts. */
  noisy: 2.5,
  /** content below this: the translation's edges no longer follow the input's (misalignment, invented content). */
  misaligned: 0.3,
  /** cycle_error above this (model units, 2 = the whole range): reconstructions lose the input. */
  cycle: 0.2,
} as const;

/** The advice of the official repository for mode collapse (docs/qa.md and its issues). */
export const COLLAPSE_ADVICE =
  'the official advice: add the identity loss (--lambda_identity 0.5, or raise it), lower the learning rate ' +
  '(e.g. --lr 0.0001), and use more (or more augmented) training data';

/** Plain-language findings for one direction's metrics; empty when nothing crosses a threshold. */
export function findings(d: Direction, m: DirectionMetrics, t = THRESHOLDS): string[] {
  const out: string[] = [];
  const a = ARROW[d];
  if (m.diversity < t.collapse) {
    out.push(
      `${a}: diversity ${m.diversity.toFixed(2)} < ${t.collapse}: outputs are much more alike than real images (mode collapse)`,
    );
  }
  if (m.detail < t.blurry)
    out.push(`${a}: detail ${m.detail.toFixed(2)} < ${t.blurry}: translations are blurrier than real images`);
  if (m.detail > t.noisy)
    out.push(`${a}: detail ${m.detail.toFixed(2)} > ${t.noisy}: high-frequency artefacts or noise`);
  if (m.detail_rec < t.blurry) {
    out.push(`${a}: detail_rec ${m.detail_rec.toFixed(2)} < ${t.blurry}: the round trip loses fine detail`);
  }
  if (m.content < t.misaligned) {
    out.push(
      `${a}: content ${m.content.toFixed(2)} < ${t.misaligned}: edges of the translation do not follow the input`,
    );
  }
  if (m.cycle_error > t.cycle) {
    out.push(
      `${a}: cycle_error ${m.cycle_error.toFixed(3)} > ${t.cycle}: reconstructions lose the input (see the heat maps)`,
    );
  }
  return out;
}

/** Counts evaluations in a row with diversity below the collapse threshold, per direction. */
export class CollapseWatch {
  private readonly streak: Record<Direction, number> = { AtoB: 0, BtoA: 0 };

  constructor(
    readonly threshold: number = THRESHOLDS.collapse,
    readonly patience: number = THRESHOLDS.patience,
  ) {}

  /** Feeds one evaluation; returns a warning per direction that has been low for `patience` evaluations or more. */
  update(diversity: Record<Direction, number>): string[] {
    const out: string[] = [];
    for (const d of Object.keys(this.streak) as Direction[]) {
      const v = diversity[d];
      // NaN (too few images) neither extends nor breaks a streak.
      if (Number.isNaN(v)) continue;
      this.streak[d] = v < this.threshold ? this.streak[d] + 1 : 0;
      if (this.streak[d] >= this.patience) {
        out.push(
          `warning: possible mode collapse ${ARROW[d]}: diversity ${v.toFixed(2)} < ${this.threshold} for ${this.streak[d]} ` +
            `evaluations in a row (translations of different inputs look alike); ${COLLAPSE_ADVICE}`,
        );
      }
    }
    return out;
  }

  get streaks(): Readonly<Record<Direction, number>> {
    return { ...this.streak };
  }
}
