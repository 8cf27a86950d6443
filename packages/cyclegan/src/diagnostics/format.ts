import { THRESHOLDS } from './checks.js';
import { ARROW, DIRECTIONS, type Direction, type DirectionMetrics } from './measure.js';

interface Row {
  key: keyof DirectionMetrics;
  digits: number;
  healthy: string;
  meaning: string;
  bad: (v: number) => boolean;
}

const t = THRESHOLDS;

/** What each number means and where it stops looking healthy. */
export const METRIC_ROWS: readonly Row[] = [
  {
    key: 'diversity',
    digits: 2,
    healthy: `≈1 (< ${t.collapse}: collapse)`,
    meaning: 'pairwise L1 of translations / of real target images',
    bad: (v) => v < t.collapse,
  },
  {
    key: 'detail',
    digits: 2,
    healthy: `≈1 (${t.blurry}–${t.noisy})`,
    meaning: 'Laplacian variance of translations / of real target images',
    bad: (v) => v < t.blurry || v > t.noisy,
  },
  {
    key: 'detail_rec',
    digits: 2,
    healthy: `≈1 (${t.blurry}–${t.noisy})`,
    meaning: 'Laplacian variance of reconstructions / of inputs',
    bad: (v) => v < t.blurry || v > t.noisy,
  },
  {
    key: 'content',
    digits: 3,
    healthy: `high (< ${t.misaligned}: misaligned)`,
    meaning: 'SSIM of Sobel edges, input vs translation',
    bad: (v) => v < t.misaligned,
  },
  {
    key: 'cycle_error',
    digits: 3,
    healthy: `low (> ${t.cycle}: poor)`,
    meaning: 'mean |rec − real| per image (model units)',
    bad: (v) => v > t.cycle,
  },
];

const fmt = (v: number, digits: number) => (Number.isFinite(v) ? v.toFixed(digits) : 'n/a');

/** A plain-text table of one direction's metrics; values outside the healthy range are marked with '!'. */
export function formatDirection(d: Direction, m: DirectionMetrics, heading = ''): string {
  const lines = [heading || `${ARROW[d]} (${m.images} images)`];
  const w = Math.max(...METRIC_ROWS.map((r) => r.key.length));
  for (const r of METRIC_ROWS) {
    const v = m[r.key] as number;
    const flag = Number.isFinite(v) && r.bad(v) ? '!' : ' ';
    lines.push(`  ${r.key.padEnd(w)}  ${fmt(v, r.digits).padStart(7)} ${flag} ${r.healthy.padEnd(24)} ${r.meaning}`);
  }
  return lines.join('\n');
}

/** Both directions, one table each. */
export function formatMetrics(m: Record<Direction, DirectionMetrics>, headings?: Partial<Record<Direction, string>>) {
  return DIRECTIONS.map((d) => formatDirection(d, m[d], headings?.[d])).join('\n\n');
}
