/**
 * Tiled, layer-by-layer inference for images larger than any GPU binding or
 * memory budget (the 1024×768 photo whose first 64-channel activation alone
 * is 192 MiB). The generator is flattened into steps (plan.ts); every full
 * activation lives on the host, one Float32Array per channel plane. A
 * convolution step cuts its output into a grid of tiles sized by the budget,
 * gathers each tile's input with its halo straight from the host activation
 * (the pad module before it becomes reflect/replicate/zero indexing, so no
 * padded activation exists), runs the ordinary kernel (K.conv2d /
 * K.convTranspose2d, unpadded) on the tile and copies the output back, while
 * merging per-tile per-channel moments in float64 (Chan's formula). Norms,
 * activations, dropout, residual adds and U-Net concatenations then run on
 * the host over the whole activation, with whole-image statistics, so the
 * result equals the whole-image forward up to float rounding.
 */
import { nn } from '@cg/autograd';
import * as K from '@cg/kernels-wgsl';
import { ArgumentError, type Device, StepPacer, Tensor as T, type Tensor } from '@cg/tensor-core';
import { DataError } from '../errors.js';
import { formatBytes } from '../format.js';
import { convWork, planNetwork, type Step, tiledHostBytes } from './plan.js';
import {
  convInputRange,
  convTransposeInputRange,
  type FillMode,
  type Range,
  sourceIndex,
  splitRange,
} from './tile_math.js';

/**
 * A full activation in host memory, one Float32Array per channel plane, so no
 * single array has to hold C·H·W floats (a 256-channel plane stack of a large
 * photo passes 2 GiB).
 */
export interface HostActivation {
  C: number;
  H: number;
  W: number;
  planes: Float32Array[];
}

/** Per-channel count, mean and sum of squared deviations (Chan et al.'s parallel variance). */
export interface ChannelMoments {
  count: number;
  mean: Float64Array;
  m2: Float64Array;
}

export interface TiledOptions {
  /**
   * GPU bytes the tiles of one layer may hold at once (input tile with halo,
   * output tile, its readback copy, the kernel's temporaries); the generator's
   * weights stay resident and come on top. Default: twice
   * min(maxStorageBufferBindingSize, maxBufferSize). translateAnySize also
   * takes the whole-image path only if that path's tensors fit it, when given.
   */
  maxGpuBytes?: number;
  /**
   * Largest single GPU buffer of a tile; default min(maxStorageBufferBindingSize,
   * maxBufferSize) / 2. translateAnySize's whole-image path needs every tensor
   * within it (default there: maxStorageBufferBindingSize itself).
   */
  maxBindingBytes?: number;
  /** At least this many tiles per layer (tests use it to force tiling of small images). */
  minTiles?: number;
  /**
   * Host bytes the activations may take at once (an upper bound is computed
   * from the plan before anything runs); a larger image is refused with an
   * ArgumentError instead of exhausting the process or the browser tab.
   */
  maxHostBytes?: number;
  /** The image's name (its path), for the refusal message. */
  name?: string;
  /** Called after every tile with the convolution multiply-adds done so far and in all. */
  onProgress?: (done: number, total: number) => void;
}

export interface TiledReport {
  /** Largest storage-pool bytes (live + pooled) seen after any tile's kernel, weights included. */
  peakGpuBytes: number;
  /** Storage bytes live when the run started (the generator's weights, and anything else the caller holds). */
  residentBytes: number;
  /** Per layer that ran on the GPU: tile grid and the planned bytes of one tile. */
  layers: { kind: 'conv' | 'convT'; out: [number, number, number]; tiles: [number, number]; tileBytes: number }[];
}

// The pool rounds a request up by at most 25 % (pool.ts buckets).
const POOL_SLACK = 1.25;

interface Budget {
  total: number;
  binding: number;
  minTiles: number;
}

function budgetFor(device: Device, o: TiledOptions): Budget {
  const lim = device.limits;
  const maxBind = Math.min(lim.maxStorageBufferBindingSize, lim.maxBufferSize);
  const total = o.maxGpuBytes ?? 2 * maxBind;
  const binding = Math.min(o.maxBindingBytes ?? Math.floor(maxBind / 2), maxBind, total);
  if (!(total > 0 && binding > 0)) {
    throw new ArgumentError(`tiled: maxGpuBytes and maxBindingBytes must be positive (got ${total}, ${binding})`);
  }
  return { total, binding, minTiles: Math.max(1, o.minTiles ?? 1) };
}

/**
 * Runs a generator layer by layer over a host image `[C, H, W]` (already
 * padded to the generator's multiple), each layer tile by tile on the GPU,
 * and returns the output activation. Equal to `net.forward` up to float
 * rounding: the halos make every tile's convolution exact, and norms use
 * whole-image statistics (merged per tile in float64). The net's train/eval
 * mode decides batch norm and dropout as in the whole-image path; batch
 * norm's running statistics are not updated (the whole-image path in train
 * mode does update them; its output does not depend on them).
 */
export async function runTiled(
  net: nn.Module,
  input: HostActivation,
  options: TiledOptions = {},
): Promise<{ output: HostActivation; report: TiledReport }> {
  const params = net.parameters();
  if (params.length === 0) throw new ArgumentError('tiled: the network has no parameters to find its device by');
  const device = params[0].device;
  const budget = budgetFor(device, options);
  const steps = planNetwork(net);
  const shape = [input.C, input.H, input.W];
  const hostBytes = tiledHostBytes(steps, shape);
  if (options.maxHostBytes !== undefined && hostBytes > options.maxHostBytes) {
    // A DataError: the image is the problem, so a folder batch goes on with the next one.
    throw new DataError(
      `${options.name ?? 'tiled'}: a ${input.W}×${input.H} image needs up to ${formatBytes(hostBytes)} of host memory for this generator's activations, ` +
        `over the ${formatBytes(options.maxHostBytes)} budget (maxHostBytes, --max_host_memory); translate a smaller image or raise the budget`,
    );
  }
  device.trimPool();
  const m0 = device.memory();
  const report: TiledReport = { peakGpuBytes: m0.liveBytes + m0.pooledBytes, residentBytes: m0.liveBytes, layers: [] };
  const progress = { done: 0, total: convWork(steps, shape), report: options.onProgress };
  const ex = new Executor(device, budget, report, progress);
  const output = materialize(await ex.run(steps, { act: input, owned: false, moments: null }));
  options.onProgress?.(progress.total, progress.total);
  return { output: output.act, report };
}

type TileCost = (th: number, tw: number) => { largest: number; total: number };

interface Progress {
  done: number;
  total: number;
  report: TiledOptions['onProgress'];
}

interface Flow {
  act: HostActivation;
  /** False while the activation is also someone else's (a residual's skip input): copy before changing it. */
  owned: boolean;
  /** Whole-image per-channel moments of `act`, when the step that made it collected them. */
  moments: ChannelMoments | null;
  /**
   * A norm and/or activation not yet applied to `act`: the next convolution
   * applies it while gathering its tiles, so the network's IN→ReLU chains cost
   * no pass of their own over the activation.
   */
  pending?: Pending;
}

/** y = v·scale[c] + shift[c], then v > 0 ? v : slope·v: ReLU is slope 0, no activation slope 1. */
interface Pending {
  scale: Float64Array;
  shift: Float64Array;
  slope: number;
}

class Executor {
  constructor(
    private readonly device: Device,
    private readonly budget: Budget,
    private readonly report: TiledReport,
    private readonly progress: Progress,
  ) {}

  /** Fastest conv rate measured on a tile so far (multiply-adds per ms), for the pacer's first guess per layer. */
  private macsPerMs = 0;

  /** Credits `share` of a layer's `work` multiply-adds to the progress callback. */
  private advance(work: number, share: number): void {
    const p = this.progress;
    p.done = Math.min(p.total, p.done + work * share);
    p.report?.(p.done, p.total);
  }

  private sample(): void {
    const m = this.device.memory();
    this.report.peakGpuBytes = Math.max(this.report.peakGpuBytes, m.liveBytes + m.pooledBytes);
  }

  async run(steps: Step[], flow: Flow): Promise<Flow> {
    let f = flow;
    for (const step of steps) f = await this.step(step, f);
    return f;
  }

  private async step(step: Step, f: Flow): Promise<Flow> {
    switch (step.kind) {
      case 'conv':
        return this.conv(step, f);
      case 'convT':
        return this.convT(step.conv, f);
      case 'residual': {
        // x is read twice (the body's input and the add), so its pending steps are applied once here.
        const x = materialize(f);
        const body = await this.run(step.body, { ...x, owned: false });
        const out = body.owned ? body.act : cloneActivation(body.act);
        addInto(out, x.act, body.pending);
        return { act: out, owned: true, moments: null };
      }
      case 'skipConcat': {
        const h = materialize(await this.run(step.head, f));
        const b = materialize(await this.run(step.body, { ...h, owned: false }));
        const skip = h.owned ? h.act.planes : h.act.planes.map((q) => q.slice());
        const inner = b.act.planes.map((q) => (skip.includes(q) ? q.slice() : q));
        const act = { C: h.act.C + b.act.C, H: b.act.H, W: b.act.W, planes: [...skip, ...inner] };
        return { act, owned: true, moments: null };
      }
      case 'norm': {
        const x = materialize(f);
        return { ...x, moments: null, pending: { ...(await normalizer(step.norm, x)), slope: 1 } };
      }
      case 'relu':
        return withActivation(f, 0);
      case 'leakyRelu':
        return withActivation(f, step.slope);
      case 'tanh':
        return mapInPlace(materialize(f), () => Math.tanh);
      case 'sigmoid':
        return mapInPlace(materialize(f), () => (v) => 1 / (1 + Math.exp(-v)));
      case 'dropout':
        return dropoutStep(step.dropout, materialize(f));
    }
  }

  /**
   * Smallest grid (rows × columns of tiles) whose tiles fit the budget, and
   * how many tiles may be on the GPU at once (`depth`): two when the layer
   * needs several tiles anyway and two fit, so the host gathers and scatters
   * one tile while the GPU runs the next.
   */
  private grid(outH: number, outW: number, cost: TileCost): { ny: number; nx: number; bytes: number; depth: number } {
    const whole = cost(outH, outW);
    const oneTile = whole.largest <= this.budget.binding && whole.total <= this.budget.total;
    if (oneTile && this.budget.minTiles <= 1) return { ny: 1, nx: 1, bytes: whole.total, depth: 1 };
    try {
      return { ...this.gridAt(outH, outW, cost, 2), depth: 2 };
    } catch {
      return { ...this.gridAt(outH, outW, cost, 1), depth: 1 };
    }
  }

  private gridAt(outH: number, outW: number, cost: TileCost, depth: number) {
    let ny = 1;
    let nx = 1;
    // A layer smaller than minTiles pixels (a U-Net's bottleneck) gets one tile per pixel at most.
    const minTiles = Math.min(this.budget.minTiles, outH * outW);
    const fits = () => {
      const c = cost(Math.ceil(outH / ny), Math.ceil(outW / nx));
      return c.largest <= this.budget.binding && depth * c.total <= this.budget.total && ny * nx >= minTiles;
    };
    while (!fits()) {
      const th = Math.ceil(outH / ny);
      const tw = Math.ceil(outW / nx);
      if (th === 1 && tw === 1) {
        const c = cost(1, 1);
        throw new ArgumentError(
          `tiled: one output pixel of a layer needs ${c.total} GPU bytes (largest buffer ${c.largest}), ` +
            `more than maxGpuBytes ${this.budget.total} / maxBindingBytes ${this.budget.binding}; raise the budget`,
        );
      }
      if (th >= tw) ny++;
      else nx++;
    }
    return { ny, nx, bytes: cost(Math.ceil(outH / ny), Math.ceil(outW / nx)).total };
  }

  private async conv(step: Extract<Step, { kind: 'conv' }>, f: Flow): Promise<Flow> {
    const x = f.act;
    const { conv, fill, pads } = step;
    const [O, C, kH, kW] = conv.weight.shape;
    const [sH, sW] = conv.stride;
    const [pl, pr, pt, pb] = pads;
    const Ho = Math.floor((x.H + pt + pb - kH) / sH) + 1;
    const Wo = Math.floor((x.W + pl + pr - kW) / sW) + 1;
    const work = Ho * Wo * kH * kW * C * O;
    const wBytes = 4 * conv.weight.data.size;
    const cost = (th: number, tw: number) => {
      const inB = 4 * C * ((th - 1) * sH + kH) * ((tw - 1) * sW + kW);
      const outB = 4 * O * th * tw;
      // Output twice: once in the pool, once as the readback copy; the weights once more for packing.
      return { largest: Math.max(inB, outB), total: POOL_SLACK * (inB + outB) + outB + POOL_SLACK * wBytes };
    };
    const g = this.grid(Ho, Wo, cost);
    this.report.layers.push({ kind: 'conv', out: [O, Ho, Wo], tiles: [g.ny, g.nx], tileBytes: Math.round(g.bytes) });
    const out = emptyActivation(O, Ho, Wo);
    const moments = emptyMoments(O);
    const inFlight = new InFlight(g.depth);
    const pacer = new StepPacer(this.device);
    for (const rows of splitRange(Ho, g.ny)) {
      const inRows = convInputRange(rows.start, rows.end, kH, sH, pt);
      for (const cols of splitRange(Wo, g.nx)) {
        const inCols = convInputRange(cols.start, cols.end, kW, sW, pl);
        const tile = gatherTile(x, inRows, inCols, fill, f.pending);
        const tileWork = (work * (rows.end - rows.start) * (cols.end - cols.start)) / (Ho * Wo);
        const y = this.onGpu(pacer, tileWork, tile, [1, C, inRows.end - inRows.start, inCols.end - inCols.start], (t) =>
          K.conv2d(t, conv.weight.data, conv.bias?.data ?? null, { stride: [sH, sW], padding: 0 }),
        );
        await inFlight.add(y, (yv) => {
          scatterTile(yv, rows.end - rows.start, cols.end - cols.start, 0, 0, rows, cols, out, moments);
          this.advance(work, ((rows.end - rows.start) * (cols.end - cols.start)) / (Ho * Wo));
        });
      }
    }
    await inFlight.drain();
    this.device.trimPool();
    return { act: out, owned: true, moments };
  }

  private async convT(conv: nn.ConvTranspose2d, f: Flow): Promise<Flow> {
    const x = f.act;
    const [C, O, kH, kW] = conv.weight.shape;
    const [sH, sW] = conv.stride;
    const [pH, pW] = conv.padding;
    const [oH, oW] = conv.outputPadding;
    const Ho = (x.H - 1) * sH - 2 * pH + kH + oH;
    const Wo = (x.W - 1) * sW - 2 * pW + kW + oW;
    const work = x.H * x.W * kH * kW * C * O;
    const wBytes = 4 * conv.weight.data.size;
    const cost = (th: number, tw: number) => {
      const r = convTransposeInputRange(0, th, kH, sH, pH);
      const c = convTransposeInputRange(0, tw, kW, sW, pW);
      const inH = r.end - r.start + 1;
      const inW = c.end - c.start + 1;
      const inB = 4 * C * inH * inW;
      const outB = 4 * O * ((inH - 1) * sH + kH) * ((inW - 1) * sW + kW);
      return { largest: Math.max(inB, outB), total: POOL_SLACK * (inB + outB) + outB + POOL_SLACK * wBytes };
    };
    const g = this.grid(Ho, Wo, cost);
    this.report.layers.push({ kind: 'convT', out: [O, Ho, Wo], tiles: [g.ny, g.nx], tileBytes: Math.round(g.bytes) });
    const out = emptyActivation(O, Ho, Wo);
    const moments = emptyMoments(O);
    const inFlight = new InFlight(g.depth);
    const pacer = new StepPacer(this.device);
    for (const rows of splitRange(Ho, g.ny)) {
      const inRows = convTransposeInputRange(rows.start, rows.end, kH, sH, pH);
      for (const cols of splitRange(Wo, g.nx)) {
        const inCols = convTransposeInputRange(cols.start, cols.end, kW, sW, pW);
        const tile = gatherTile(x, inRows, inCols, 'zeros', f.pending);
        const th = inRows.end - inRows.start;
        const tw = inCols.end - inCols.start;
        const tileWork = (work * (rows.end - rows.start) * (cols.end - cols.start)) / (Ho * Wo);
        const y = this.onGpu(pacer, tileWork, tile, [1, C, th, tw], (t) =>
          K.convTranspose2d(t, conv.weight.data, conv.bias?.data ?? null, { stride: [sH, sW], padding: 0 }),
        );
        const yH = (th - 1) * sH + kH;
        const yW = (tw - 1) * sW + kW;
        await inFlight.add(y, (yv) => {
          scatterTile(yv, yH, yW, rows.start + inRows.offset, cols.start + inCols.offset, rows, cols, out, moments);
          this.advance(work, ((rows.end - rows.start) * (cols.end - cols.start)) / (Ho * Wo));
        });
      }
    }
    await inFlight.drain();
    this.device.trimPool();
    return { act: out, owned: true, moments };
  }

  /** Uploads a tile, runs one kernel on it and downloads the result; nothing stays on the GPU. */
  private async onGpu(
    pacer: StepPacer,
    work: number,
    tile: Float32Array,
    shape: number[],
    kernel: (t: Tensor) => Tensor,
  ): Promise<Float32Array> {
    const t = T.fromArray(this.device, tile, shape);
    let y: Tensor;
    try {
      y = kernel(t);
      this.sample();
    } finally {
      t.dispose();
    }
    try {
      // The tiles of a layer cost the same: sleep through most of one instead of letting dawn.node poll.
      // The first tile of a layer guesses from the fastest rate seen so far, which errs on the short side.
      const t0 = performance.now();
      const guess = this.macsPerMs > 0 ? work / this.macsPerMs : 0;
      const data = await pacer.wait(() => y.toArray(), guess);
      this.macsPerMs = Math.max(this.macsPerMs, work / Math.max(performance.now() - t0, 1e-3));
      return data;
    } finally {
      y.dispose();
    }
  }
}

/**
 * At most `depth` tiles between upload and scatter. Scatters run in launch
 * order (each waits for the one before), so the moments merge in the same
 * order on every run and the output does not depend on timing.
 */
class InFlight {
  private tail: Promise<void> = Promise.resolve();
  private readonly waiting: Promise<void>[] = [];

  constructor(private readonly depth: number) {}

  /** Queues `scatter(result)` after the earlier tiles' scatters; waits while `depth` tiles are out. */
  async add(result: Promise<Float32Array>, scatter: (y: Float32Array) => void): Promise<void> {
    const prev = this.tail;
    this.tail = Promise.all([prev, result]).then(([, y]) => scatter(y));
    // Awaited below or by drain(); this only keeps an early failure from being reported as unhandled.
    this.tail.catch(() => {});
    this.waiting.push(this.tail);
    if (this.waiting.length >= this.depth) await this.waiting.shift();
  }

  async drain(): Promise<void> {
    this.waiting.length = 0;
    await this.tail;
  }
}

export function emptyActivation(C: number, H: number, W: number): HostActivation {
  const planes: Float32Array[] = [];
  for (let c = 0; c < C; c++) planes.push(new Float32Array(H * W));
  return { C, H, W, planes };
}

function cloneActivation(a: HostActivation): HostActivation {
  return { ...a, planes: a.planes.map((p) => p.slice()) };
}

function emptyMoments(C: number): ChannelMoments {
  return { count: 0, mean: new Float64Array(C), m2: new Float64Array(C) };
}

/**
 * The `[1, C, rows, cols]` tile of `x` for input coordinates `rows` × `cols`
 * (which may reach outside the image), filled as the layer's padding says.
 */
export function gatherTile(
  x: HostActivation,
  rows: Range,
  cols: Range,
  fill: FillMode,
  pending?: Pending,
): Float32Array {
  const th = rows.end - rows.start;
  const tw = cols.end - cols.start;
  const rowSrc = Int32Array.from({ length: th }, (_, i) => sourceIndex(rows.start + i, x.H, fill));
  // Columns inside the image form one run [inLo, inHi) copied as a block; only the few halo
  // columns outside it (at most the kernel's reach) need their source looked up.
  const inLo = Math.min(tw, Math.max(0, -cols.start));
  const inHi = Math.max(inLo, Math.min(tw, x.W - cols.start));
  const border: number[] = [];
  const borderSrc: number[] = [];
  for (let j = 0; j < tw; j++) {
    if (j >= inLo && j < inHi) continue;
    const s = sourceIndex(cols.start + j, x.W, fill);
    if (s < 0) continue; // zero padding: stays 0
    border.push(j);
    borderSrc.push(s);
  }
  const out = new Float32Array(x.C * th * tw);
  for (let c = 0; c < x.C; c++) {
    const plane = x.planes[c];
    for (let i = 0; i < th; i++) {
      const r = rowSrc[i];
      if (r < 0) continue;
      const dst = (c * th + i) * tw;
      const src = r * x.W;
      if (inHi > inLo) out.set(plane.subarray(src + cols.start + inLo, src + cols.start + inHi), dst + inLo);
      for (let k = 0; k < border.length; k++) out[dst + border[k]] = plane[src + borderSrc[k]];
    }
    // Zero padding pads the transformed activation: only values taken from the image are transformed.
    if (pending) transformTileRows(out, c, th, tw, rowSrc, inLo, inHi, border, pending);
  }
  return out;
}

/** Applies the pending scale, shift and slope to channel c's values that came from the image. */
function transformTileRows(
  out: Float32Array,
  c: number,
  th: number,
  tw: number,
  rowSrc: Int32Array,
  inLo: number,
  inHi: number,
  border: readonly number[],
  p: Pending,
): void {
  const a = p.scale[c];
  const b = p.shift[c];
  const slope = p.slope;
  for (let i = 0; i < th; i++) {
    if (rowSrc[i] < 0) continue;
    const row = (c * th + i) * tw;
    for (let j = row + inLo; j < row + inHi; j++) {
      const v = out[j] * a + b;
      out[j] = v > 0 ? v : slope * v;
    }
    for (let k = 0; k < border.length; k++) {
      const j = row + border[k];
      const v = out[j] * a + b;
      out[j] = v > 0 ? v : slope * v;
    }
  }
}

/** The flow with its pending norm/activation applied (in place when the activation is ours). */
function materialize(f: Flow): Flow {
  const p = f.pending;
  if (!p) return f;
  const act = f.owned ? f.act : emptyActivation(f.act.C, f.act.H, f.act.W);
  for (let c = 0; c < act.C; c++) {
    const x = f.act.planes[c];
    const y = act.planes[c];
    const a = p.scale[c];
    const b = p.shift[c];
    const slope = p.slope;
    for (let i = 0; i < x.length; i++) {
      const v = x[i] * a + b;
      y[i] = v > 0 ? v : slope * v;
    }
  }
  return { act, owned: true, moments: null };
}

/** ReLU (slope 0) or LeakyReLU after whatever is pending, itself left pending. */
function withActivation(f: Flow, slope: number): Flow {
  // A pending norm without an activation takes this one; anything else is applied first.
  const base = f.pending?.slope === 1 ? f : materialize(f);
  const C = base.act.C;
  const pending = base.pending ?? { scale: new Float64Array(C).fill(1), shift: new Float64Array(C), slope: 1 };
  return { ...base, moments: null, pending: { ...pending, slope } };
}

/** out += x, where out's values still need `pending` (the block's last norm) applied first. */
function addInto(out: HostActivation, x: HostActivation, pending: Pending | undefined): void {
  for (let c = 0; c < out.C; c++) {
    const y = out.planes[c];
    const xs = x.planes[c];
    if (!pending) {
      for (let i = 0; i < y.length; i++) y[i] = xs[i] + y[i];
      continue;
    }
    const a = pending.scale[c];
    const b = pending.shift[c];
    const slope = pending.slope;
    for (let i = 0; i < y.length; i++) {
      const v = y[i] * a + b;
      y[i] = xs[i] + (v > 0 ? v : slope * v);
    }
  }
}

/**
 * Writes the window rows × cols of the global output from a `[1, O, yH, yW]`
 * kernel result whose element (t0, u0) is global (rows.start, cols.start),
 * and merges the window's per-channel moments into `m`.
 */
function scatterTile(
  y: Float32Array,
  yH: number,
  yW: number,
  t0: number,
  u0: number,
  rows: Range,
  cols: Range,
  out: HostActivation,
  m: ChannelMoments,
): void {
  const h = rows.end - rows.start;
  const w = cols.end - cols.start;
  const nB = h * w;
  const nA = m.count;
  const n = nA + nB;
  for (let c = 0; c < out.C; c++) {
    const plane = out.planes[c];
    let sum = 0;
    for (let i = 0; i < h; i++) {
      const src = (c * yH + t0 + i) * yW + u0;
      const row = y.subarray(src, src + w);
      plane.set(row, (rows.start + i) * out.W + cols.start);
      for (let j = 0; j < w; j++) sum += row[j];
    }
    const meanB = sum / nB;
    let m2B = 0;
    for (let i = 0; i < h; i++) {
      const src = (c * yH + t0 + i) * yW + u0;
      for (let j = 0; j < w; j++) {
        const d = y[src + j] - meanB;
        m2B += d * d;
      }
    }
    // Chan, Golub & LeVeque: merge (nA, meanA, M2A) with (nB, meanB, M2B).
    const delta = meanB - m.mean[c];
    m.mean[c] += (delta * nB) / n;
    m.m2[c] += m2B + (delta * delta * nA * nB) / n;
  }
  m.count = n;
}

/** Whole-image moments of an activation, for norms that follow a step that did not collect them. */
function momentsOf(a: HostActivation): ChannelMoments {
  const m = emptyMoments(a.C);
  m.count = a.H * a.W;
  for (let c = 0; c < a.C; c++) {
    const p = a.planes[c];
    let s = 0;
    for (let i = 0; i < p.length; i++) s += p[i];
    const mean = s / p.length;
    let q = 0;
    for (let i = 0; i < p.length; i++) q += (p[i] - mean) ** 2;
    m.mean[c] = mean;
    m.m2[c] = q;
  }
  return m;
}

/** Applies `perChannel(c)` to every element of channel c, in place when the activation is ours. */
function mapInPlace(f: Flow, perChannel: (c: number) => (v: number) => number): Flow {
  const act = f.owned ? f.act : cloneActivation(f.act);
  for (let c = 0; c < act.C; c++) {
    const g = perChannel(c);
    const p = act.planes[c];
    for (let i = 0; i < p.length; i++) p[i] = g(p[i]);
  }
  return { act, owned: true, moments: null };
}

/**
 * y = (x − mean)/√(var + eps)·weight + bias per channel. Batch statistics
 * (instance norm; batch norm in train mode or without running stats; batch 1
 * makes both the whole image's per-channel moments, biased variance) or the
 * running ones (batch norm in eval, instance norm with tracked stats in eval).
 */
async function normalizer(
  norm: nn.InstanceNorm2d | nn.BatchNorm2d,
  f: Flow,
): Promise<{ scale: Float64Array; shift: Float64Array }> {
  const C = f.act.C;
  const useRunning = norm.trackRunningStats && !norm.training;
  let mean: ArrayLike<number>;
  let variance: ArrayLike<number>;
  if (useRunning) {
    mean = await norm.getBuffer('running_mean')!.toArray();
    variance = await norm.getBuffer('running_var')!.toArray();
  } else {
    const m = f.moments ?? momentsOf(f.act);
    mean = m.mean;
    variance = m.m2.map((q) => q / m.count);
  }
  const weight = norm.weight ? await norm.weight.data.toArray() : null;
  const bias = norm.bias ? await norm.bias.data.toArray() : null;
  const scale = new Float64Array(C);
  const shift = new Float64Array(C);
  for (let c = 0; c < C; c++) {
    const w = weight ? weight[c] : 1;
    scale[c] = w / Math.sqrt(variance[c] + norm.eps);
    shift[c] = (bias ? bias[c] : 0) - mean[c] * scale[c];
  }
  return { scale, shift };
}

/**
 * Dropout exactly as the whole-image path: identity in eval; in train mode
 * the module draws its seed from its rng as its forward would, and the mask
 * is the kernel's counter-based hash of the flat [1, C, H, W] index
 * (K.dropoutMaskRef), so the same seed drops the same elements.
 */
function dropoutStep(d: nn.Dropout, f: Flow): Flow {
  if (!d.training || d.p === 0) return f;
  const rng = (d as unknown as { rng: { nextU32(): number } | null }).rng ?? nn.getDefaultRng();
  const seed = rng.nextU32();
  const { C, H, W } = f.act;
  const mask = K.dropoutMaskRef(C * H * W, d.p, seed);
  const act = f.owned ? f.act : cloneActivation(f.act);
  for (let c = 0; c < C; c++) {
    const p = act.planes[c];
    const off = c * H * W;
    for (let i = 0; i < p.length; i++) p[i] = Math.fround(p[i] * mask[off + i]);
  }
  return { act, owned: true, moments: null };
}
