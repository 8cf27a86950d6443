import { diagnosticsSection } from './diagnostics/report_section.js';
import { DataError } from './errors.js';
import { escapeHtml, lineChart } from './svg_chart.js';

/** One logged point of training: the losses (and optional diagnostics) at a global iteration. */
export interface LogPoint {
  iter: number;
  epoch: number;
  losses: Record<string, number>;
  metrics?: Record<string, number>;
}

export interface ReportSample {
  label: string;
  /** PNG bytes, embedded as a data URL so the report is one self-contained file. */
  png: Uint8Array;
  caption?: string;
  /** Cycle-error heat maps of the same images (PNG), shown beside the grid. */
  heatMap?: Uint8Array;
}

export interface ReportInput {
  title: string;
  options: Record<string, unknown>;
  history: readonly LogPoint[];
  samples: readonly ReportSample[];
  summary?: Record<string, string | number>;
  /** Extra charts (e.g. diagnostics), each a title and the metric keys to plot. */
  metricCharts?: readonly { title: string; keys: readonly string[] }[];
  /** Set when training ran the failure-mode diagnostics: adds their explanation, latest values and heat-map scale. */
  diagnostics?: { heatMax: number; probeSize: number };
}

/**
 * Reads a saved history.json. It only feeds the report's charts, so a caller may carry on without it:
 * throws a DataError naming the file rather than a bare SyntaxError.
 */
export function parseHistory(bytes: Uint8Array, source: string): LogPoint[] {
  let points: unknown;
  try {
    points = JSON.parse(new TextDecoder().decode(bytes));
  } catch (e) {
    throw new DataError(`${source}: unreadable (${(e as Error).message})`);
  }
  const valid = (p: unknown): p is LogPoint =>
    typeof p === 'object' &&
    p !== null &&
    typeof (p as LogPoint).iter === 'number' &&
    typeof (p as LogPoint).losses === 'object';
  if (!Array.isArray(points) || !points.every(valid)) throw new DataError(`${source}: not a list of logged points`);
  return points;
}

export function pngDataUrl(png: Uint8Array): string {
  let s = '';
  for (let i = 0; i < png.length; i += 0x8000) s += String.fromCharCode(...png.subarray(i, i + 0x8000));
  return `data:image/png;base64,${btoa(s)}`;
}

/** Small grids (e.g. 32-pixel demo images) are shown at 2× so their pixels can be seen; read from the PNG header. */
function zoom(png: Uint8Array): string {
  if (png.length < 24) return '';
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  const [w, h] = [view.getUint32(16), view.getUint32(20)];
  return h < 400 && w < 400 ? ` width="${2 * w}" height="${2 * h}"` : '';
}

function seriesOf(
  history: readonly LogPoint[],
  pick: (p: LogPoint) => Record<string, number> | undefined,
  keys: readonly string[],
) {
  return keys.map((k) => ({
    name: k,
    points: history.flatMap((p) => {
      const v = pick(p)?.[k];
      return v === undefined ? [] : [[p.iter, v] as [number, number]];
    }),
  }));
}

/** A self-contained HTML report: loss curves as SVG, sample grids, summary and options. */
export function renderReport(r: ReportInput): string {
  const lossKeys = [...new Set(r.history.flatMap((p) => Object.keys(p.losses)))];
  const gKeys = lossKeys.filter((k) => !k.startsWith('D_'));
  const dKeys = lossKeys.filter((k) => k.startsWith('D_'));
  const charts = [
    lineChart(
      'Generator losses',
      seriesOf(r.history, (p) => p.losses, gKeys),
    ),
    lineChart(
      'Discriminator losses',
      seriesOf(r.history, (p) => p.losses, dKeys),
    ),
    ...(r.metricCharts ?? []).map((c) =>
      lineChart(
        c.title,
        seriesOf(r.history, (p) => p.metrics, c.keys),
      ),
    ),
  ];
  const summary = Object.entries(r.summary ?? {})
    .map(([k, v]) => `<tr><th>${escapeHtml(k)}</th><td>${escapeHtml(String(v))}</td></tr>`)
    .join('');
  const options = Object.entries(r.options)
    .map(([k, v]) => `<tr><th>${escapeHtml(k)}</th><td>${escapeHtml(JSON.stringify(v))}</td></tr>`)
    .join('');
  const samples = r.samples
    .map(
      (s) =>
        `<figure><img src="${pngDataUrl(s.png)}" alt="${escapeHtml(s.label)}"${zoom(s.png)}>${
          s.heatMap
            ? ` <img src="${pngDataUrl(s.heatMap)}" alt="cycle-error heat maps" title="|rec_A − real_A| beside rec_A, |rec_B − real_B| beside rec_B"${zoom(s.heatMap)}>`
            : ''
        }<figcaption>${escapeHtml(s.label)}${
          s.caption ? `<br><small>${escapeHtml(s.caption)}</small>` : ''
        }</figcaption></figure>`,
    )
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(r.title)}</title>
<style>
body{font-family:sans-serif;margin:24px;max-width:1400px;color:#222}
table{border-collapse:collapse;font-size:13px}th,td{border:1px solid #ddd;padding:3px 8px;text-align:left}
figure{display:inline-block;margin:8px;vertical-align:top}img{image-rendering:pixelated;max-width:100%}
.charts svg{margin:6px;border:1px solid #eee}
</style></head><body>
<h1>${escapeHtml(r.title)}</h1>
${summary ? `<h2>Summary</h2><table>${summary}</table>` : ''}
<h2>Curves</h2><div class="charts">${charts.join('\n')}</div>
${r.diagnostics ? diagnosticsSection(r.history, r.diagnostics) : ''}
<h2>Samples</h2>
<p>Rows of each grid: real_A, fake_B, rec_A, real_B, fake_A, rec_B (columns: images of the batch).${
    r.samples.some((s) => s.heatMap)
      ? ' Beside it, the cycle-error heat maps of the same images, level with their reconstructions: |rec_A − real_A| beside rec_A, |rec_B − real_B| beside rec_B (channel mean, coloured by the scale above): bright where the round trip loses detail.'
      : ''
  }</p>
${samples}
<h2>Options</h2><table>${options}</table>
</body></html>
`;
}
