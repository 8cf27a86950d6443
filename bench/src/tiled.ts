// Any-size inference rows: the tiled executor against the whole-image forward
// on the same image and weights (the halo and host-pass overhead, runs
// interleaved), then photo sizes only tiles can run, with the time, the peak
// GPU bytes and the host bytes the plan allows. resnet_9blocks at a small ngf,
// so the photo sizes finish on a software adapter.
import { planNetwork, ResnetGenerator, type RgbImage, tiledHostBytes, translateAnySize } from '@cg/cyclegan';
import { type Device, Rng } from '@cg/tensor-core';
import { median } from './harness.js';

export interface TiledRow {
  id: string;
  width: number;
  height: number;
  ngf: number;
  /** maxGpuBytes given to the tiled run (the whole-image run has no budget). */
  budgetBytes: number;
  wholeMs: number[];
  tiledMs: number[];
  /** median tiled / median whole − 1, when both ran. */
  overhead: number | null;
  peakGpuBytes: number;
  hostBytesBound: number;
  tilesPerLayer: number[];
  maxAbsDiff: number | null;
}

/** A photo-like test image: smooth structure plus noise, so the norms see real statistics. */
function photo(width: number, height: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  let s = 12345;
  for (let i = 0; i < data.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const p = Math.floor(i / 3);
    const x = p % width;
    const y = Math.floor(p / width);
    data[i] = (128 + 90 * Math.sin(x / 37 + (i % 3)) * Math.cos(y / 23) + (s >>> 27)) & 255;
  }
  return { width, height, channels: 3, data };
}

export interface TiledCase {
  width: number;
  height: number;
  ngf: number;
  budgetMiB: number;
  /** Also run the whole-image forward (only where it fits) and compare. */
  whole: boolean;
  runs: number;
}

export async function runTiledCase(device: Device, c: TiledCase): Promise<TiledRow> {
  const net = new ResnetGenerator(
    { input_nc: 3, output_nc: 3, ngf: c.ngf, norm: 'instance', n_blocks: 9 },
    { device, rng: new Rng(7) },
  );
  try {
    const image = photo(c.width, c.height);
    const o = { multiple: 4, input_nc: 3, eval: true };
    const budget = c.budgetMiB * 2 ** 20;
    // Compile every pipeline either path needs before anything is timed.
    const small = photo(64, 48);
    await translateAnySize(net, small, o);
    await translateAnySize(net, small, { ...o, forceTiled: true, minTiles: 2 });
    const wholeMs: number[] = [];
    const tiledMs: number[] = [];
    let peak = 0;
    let tiles: number[] = [];
    let diff: number | null = null;
    for (let r = 0; r < c.runs; r++) {
      let ref: Float32Array | null = null;
      if (c.whole) {
        const t0 = performance.now();
        const w = await translateAnySize(net, image, o);
        wholeMs.push(performance.now() - t0);
        if (w.tiled) throw new Error(`${c.width}×${c.height} did not fit whole; run it without whole`);
        ref = w.data;
      }
      const t0 = performance.now();
      const t = await translateAnySize(net, image, { ...o, forceTiled: true, maxGpuBytes: budget });
      tiledMs.push(performance.now() - t0);
      peak = Math.max(peak, t.report?.peakGpuBytes ?? 0);
      tiles = t.report?.layers.map((l) => l.tiles[0] * l.tiles[1]) ?? [];
      if (ref) {
        let m = 0;
        for (let i = 0; i < ref.length; i++) m = Math.max(m, Math.abs(ref[i] - t.data[i]));
        diff = Math.max(diff ?? 0, m);
      }
    }
    const W = Math.ceil(c.width / 4) * 4;
    const H = Math.ceil(c.height / 4) * 4;
    return {
      id: `tiled ${c.width}×${c.height} ngf ${c.ngf}`,
      width: c.width,
      height: c.height,
      ngf: c.ngf,
      budgetBytes: budget,
      wholeMs,
      tiledMs,
      overhead: wholeMs.length ? median(tiledMs) / median(wholeMs) - 1 : null,
      peakGpuBytes: peak,
      hostBytesBound: tiledHostBytes(planNetwork(net), [3, H, W]),
      tilesPerLayer: tiles,
      maxAbsDiff: diff,
    };
  } finally {
    net.dispose();
  }
}

export const TILED_TITLE =
  'any-size inference: resnet_9blocks (instance norm, eval), the tiled executor vs the whole-image forward on the same\n' +
  'image (runs interleaved); s/MP = seconds per megapixel; peak GPU = storage pool bytes, weights included';

export function formatTiled(r: TiledRow): string {
  const mp = (r.width * r.height) / 1e6;
  const sMP = (ms: number[]) => (ms.length ? `${(median(ms) / 1000 / mp).toFixed(2)} s/MP` : '—');
  const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
  return [
    r.id.padEnd(28),
    `budget ${mib(r.budgetBytes)}`.padEnd(18),
    `whole ${sMP(r.wholeMs)}`.padEnd(20),
    `tiled ${sMP(r.tiledMs)} (${(median(r.tiledMs) / 1000).toFixed(1)} s)`.padEnd(30),
    `overhead ${r.overhead === null ? '—' : `${(100 * r.overhead).toFixed(0)} %`}`.padEnd(15),
    `peak GPU ${mib(r.peakGpuBytes)}`.padEnd(22),
    `host ≤ ${mib(r.hostBytesBound)}`.padEnd(20),
    `max tiles/layer ${Math.max(...r.tilesPerLayer, 0)}`,
    r.maxAbsDiff === null ? '' : `  |Δ| ${r.maxAbsDiff.toExponential(1)}`,
  ].join(' ');
}
