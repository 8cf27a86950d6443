import type { LogPoint } from '../report.js';
import { escapeHtml } from '../svg_chart.js';
import { THRESHOLDS } from './checks.js';
import { METRIC_ROWS } from './format.js';
import { heatLegendSvg } from './heatmap.js';
import { ARROW, DIRECTIONS } from './measure.js';

/** The report's diagnostics section: what the numbers mean, their latest values, and the heat-map scale. */
export function diagnosticsSection(history: readonly LogPoint[], o: { heatMax: number; probeSize: number }): string {
  const last = [...history].reverse().find((p) => p.metrics && 'diversity_AtoB' in p.metrics);
  const rows = METRIC_ROWS.map((r) => {
    const cells = DIRECTIONS.map((d) => {
      const v = last?.metrics?.[`${r.key}_${d}`];
      if (v === undefined || !Number.isFinite(v)) return '<td>n/a</td>';
      const bad = r.bad(v);
      return `<td style="text-align:right${bad ? ';color:#c00;font-weight:bold' : ''}">${v.toFixed(r.digits)}${bad ? ' !' : ''}</td>`;
    }).join('');
    return `<tr><th>${escapeHtml(r.key)}</th>${cells}<td>${escapeHtml(r.healthy)}</td><td>${escapeHtml(r.meaning)}</td></tr>`;
  }).join('');
  const streak = collapseStreak(history);
  const warning =
    streak.length > 0
      ? `<p style="color:#c00"><b>Possible mode collapse</b> (${streak.join(', ')}): diversity below ${THRESHOLDS.collapse} for ${THRESHOLDS.patience} or more evaluations in a row. Try the identity loss (--lambda_identity), a lower --lr, more data.</p>`
      : '';
  return `<h2>Diagnostics</h2>
<p>Measured every display_freq on a fixed probe set of ${o.probeSize} training images per domain, both generators in eval mode
without gradients. <b>diversity</b> = mean pairwise L1 distance between translations of different inputs ÷ the same for real
target-domain images (→0: mode collapse). <b>detail</b> = variance of the 3×3 Laplacian of luminance, translations ÷ real
target images (and <b>detail_rec</b>: reconstructions ÷ inputs; ≪1 blurry, ≫1 noisy). <b>content</b> = SSIM (Gaussian σ 1.5)
between the Sobel-edge maps of input and translation (low: edges moved, dropped or invented). <b>cycle_error</b> = mean
|rec − real| in model units ([-1, 1]).</p>
${last ? `<table><tr><th>latest (iter ${last.iter})</th>${DIRECTIONS.map((d) => `<th>${ARROW[d]}</th>`).join('')}<th>healthy</th><th>meaning</th></tr>${rows}</table>` : '<p>No measurement yet.</p>'}
${warning}
<p>Cycle-error heat map scale (|rec − real|, channel mean, model units):<br>${heatLegendSvg(o.heatMax)}</p>`;
}

/** Directions whose diversity has been below the collapse threshold for the last `patience` measurements. */
function collapseStreak(history: readonly LogPoint[]): string[] {
  const measured = history.filter((p) => p.metrics && 'diversity_AtoB' in p.metrics);
  const tail = measured.slice(-THRESHOLDS.patience);
  if (tail.length < THRESHOLDS.patience) return [];
  return DIRECTIONS.filter((d) => tail.every((p) => (p.metrics?.[`diversity_${d}`] ?? 1) < THRESHOLDS.collapse)).map(
    (d) => ARROW[d],
  );
}
