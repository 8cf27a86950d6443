// Live loss curves on a canvas: one line per loss, iterations on x.
import type { LossPoint } from './protocol.js';

export const LOSS_COLORS: Record<string, string> = {
  D_A: '#d62728',
  G_A: '#1f77b4',
  cycle_A: '#2ca02c',
  idt_A: '#9467bd',
  D_B: '#ff7f0e',
  G_B: '#17becf',
  cycle_B: '#8c564b',
  idt_B: '#e377c2',
};

export function drawLossChart(canvas: HTMLCanvasElement, points: readonly LossPoint[]): void {
  const dpr = window.devicePixelRatio || 1;
  const cssW = canvas.clientWidth || 560;
  const cssH = canvas.clientHeight || 260;
  canvas.width = Math.round(cssW * dpr);
  canvas.height = Math.round(cssH * dpr);
  const ctx = canvas.getContext('2d');
  if (!ctx) return;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, cssW, cssH);
  const pad = { l: 44, r: 10, t: 10, b: 24 };
  const w = cssW - pad.l - pad.r;
  const h = cssH - pad.t - pad.b;
  const names = Object.keys(points[0]?.losses ?? {});
  let yMax = 0;
  for (const p of points) for (const n of names) if (Number.isFinite(p.losses[n])) yMax = Math.max(yMax, p.losses[n]);
  yMax = yMax > 0 ? niceCeil(yMax) : 1;
  const xMin = points[0]?.iter ?? 0;
  const xMax = Math.max(xMin + 1, points.at(-1)?.iter ?? 1);
  const x = (i: number) => pad.l + ((i - xMin) / (xMax - xMin)) * w;
  const y = (v: number) => pad.t + h - (Math.min(v, yMax) / yMax) * h;

  ctx.strokeStyle = '#ccc';
  ctx.fillStyle = '#555';
  ctx.font = '11px system-ui, sans-serif';
  ctx.lineWidth = 1;
  for (let k = 0; k <= 4; k++) {
    const v = (yMax * k) / 4;
    ctx.beginPath();
    ctx.moveTo(pad.l, y(v));
    ctx.lineTo(pad.l + w, y(v));
    ctx.stroke();
    ctx.fillText(v.toPrecision(2), 4, y(v) + 4);
  }
  ctx.fillText(`iter ${xMin}`, pad.l, cssH - 6);
  const right = `iter ${xMax}`;
  ctx.fillText(right, pad.l + w - ctx.measureText(right).width, cssH - 6);

  ctx.lineWidth = 1.5;
  for (const n of names) {
    ctx.strokeStyle = LOSS_COLORS[n] ?? '#000';
    ctx.beginPath();
    points.forEach((p, i) => {
      const v = p.losses[n];
      if (!Number.isFinite(v)) return;
      if (i === 0) ctx.moveTo(x(p.iter), y(v));
      else ctx.lineTo(x(p.iter), y(v));
    });
    if (points.length === 1) {
      ctx.arc(x(points[0].iter), y(points[0].losses[n]), 2, 0, 2 * Math.PI);
    }
    ctx.stroke();
  }
}

function niceCeil(v: number): number {
  const e = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * e) return m * e;
  return 10 * e;
}
