// Timing: warm-up, then interleaved timed runs of ours and the peer, each
// ended by a GPU sync, so machine noise (a 2-core CPU rasterizer here) hits
// both sides alike. Wall-clock from the first enqueue to "GPU idle".

/** One side of a comparison (ours or the peer) for the whole run. */
export interface Side {
  name: string;
  /** Submits everything recorded and waits until the GPU has finished it. */
  sync(): Promise<void>;
  /** Tensors alive on this side now (to catch leaks between runs). */
  liveTensors(): number;
}

/** What one pass produced: freed after it was timed, read back once for the cross-check. */
export interface StepOutput {
  free(): void;
  /** The result in our layout (NCHW / PyTorch weight layout); absent when it must not be compared. */
  read?(): Promise<Float32Array>;
}

/** A case made ready on one side: inputs uploaded, nothing run yet. */
export interface Prepared {
  /** Records one pass. */
  step(): StepOutput | Promise<StepOutput>;
  /** Frees the inputs. */
  dispose(): void;
  /** Shown beside the number (e.g. how the peer had to be measured). */
  note?: string;
}

/** Why a side has no number for a case. */
export class Skip extends Error {}

export interface Timing {
  medianMs: number;
  minMs: number;
  maxMs: number;
  samplesMs: number[];
  warmupMs: number[];
  /** Live tensors after the last run minus before preparing (0 = no leak). */
  leaked: number;
  /** Live tensors grew between timed runs (a per-run leak). */
  grewDuringRuns: boolean;
}

export type SideResult =
  | ({ status: 'ok'; note?: string } & Timing)
  | { status: 'skipped'; reason: string }
  | { status: 'error'; message: string };

export interface PairOptions {
  /** Timed runs per side; null = adaptive (≥ minRuns, more for fast cases). */
  runs: number | null;
  minRuns: number;
  maxRuns: number;
  warmup: number;
  /** Adaptive mode aims at about this much timed wall-clock per case (both sides). */
  targetMs: number;
  /** Compare ours' result against the peer's once after warm-up. */
  check: boolean;
}

export interface PairResult {
  ours: SideResult;
  peer: SideResult | null;
  /** max |ours − peer| / max |peer|; null when not compared. */
  checkRelErr: number | null;
  checkNote?: string;
  runs: number;
}

interface Entry {
  side: Side;
  prep: Prepared;
  liveBefore: number;
  liveAfterWarmup: number;
  warmupMs: number[];
  samples: number[];
  grew: boolean;
  failed: string | null;
}

/** Times one pass up to GPU idle; frees its output unless the caller keeps it. */
async function timeOnce(e: Entry, keep?: (out: StepOutput) => void): Promise<number> {
  const t0 = performance.now();
  const out = await e.prep.step();
  await e.side.sync();
  const ms = performance.now() - t0;
  if (keep) keep(out);
  else out.free();
  return ms;
}

function errorMessage(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  return msg.split('\n')[0].slice(0, 300);
}

/** Prepares a case on one side; a missing kernel or an unsupported case comes back as 'skipped'. */
async function prepare(
  side: Side,
  make: () => Prepared | Promise<Prepared>,
): Promise<{ entry: Entry } | { result: SideResult }> {
  const liveBefore = side.liveTensors();
  try {
    const prep = await make();
    return {
      entry: { side, prep, liveBefore, liveAfterWarmup: 0, warmupMs: [], samples: [], grew: false, failed: null },
    };
  } catch (err) {
    if (err instanceof Skip) return { result: { status: 'skipped', reason: err.message } };
    return { result: { status: 'error', message: `prepare: ${errorMessage(err)}` } };
  }
}

/** Median of the samples (NaN for none). */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function finish(e: Entry): SideResult {
  try {
    e.prep.dispose();
  } catch {
    // Inputs of a failed side may already be gone; the leak count below tells.
  }
  if (e.failed) return { status: 'error', message: e.failed };
  const s = e.samples;
  return {
    status: 'ok',
    ...(e.prep.note ? { note: e.prep.note } : {}),
    medianMs: median(s),
    minMs: Math.min(...s),
    maxMs: Math.max(...s),
    samplesMs: s.map((x) => Math.round(x * 1000) / 1000),
    warmupMs: e.warmupMs.map((x) => Math.round(x * 1000) / 1000),
    leaked: e.side.liveTensors() - e.liveBefore,
    grewDuringRuns: e.grew,
  };
}

async function guarded(e: Entry, fn: () => Promise<void>): Promise<void> {
  if (e.failed) return;
  try {
    await fn();
  } catch (err) {
    e.failed = errorMessage(err);
  }
}

function relErr(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Number.POSITIVE_INFINITY;
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= diff)) diff = d; // NaN propagates as a failure
    const m = Math.abs(b[i]);
    if (m > scale) scale = m;
  }
  return diff / (scale || 1);
}

/**
 * Measures one case on ours and (optionally) the peer: warm-up on both, then
 * `runs` rounds that alternate which side goes first (ABBA), so slow drifts
 * of the machine do not favour either side.
 */
export async function measurePair(
  ours: { side: Side; make: () => Prepared | Promise<Prepared> },
  peer: { side: Side; make: () => Prepared | Promise<Prepared> } | null,
  opts: PairOptions,
): Promise<PairResult> {
  const po = await prepare(ours.side, ours.make);
  const pp = peer ? await prepare(peer.side, peer.make) : null;
  const entries: Entry[] = [];
  if ('entry' in po) entries.push(po.entry);
  if (pp && 'entry' in pp) entries.push(pp.entry);

  // The first warm-up pass of each side is kept and read back for the cross-check.
  const kept = new Map<Entry, StepOutput>();
  for (let w = 0; w < Math.max(opts.warmup, opts.check ? 1 : 0); w++) {
    for (const e of entries) {
      await guarded(e, async () => {
        e.warmupMs.push(await timeOnce(e, w === 0 && opts.check ? (out) => kept.set(e, out) : undefined));
      });
    }
  }
  let checkRelErr: number | null = null;
  let checkNote: string | undefined;
  const [eo, ep] = [po, pp].map((p) => (p && 'entry' in p ? p.entry : null));
  const [ko, kp] = [eo && kept.get(eo), ep && kept.get(ep)];
  if (ko?.read && kp?.read && !eo?.failed && !ep?.failed) {
    try {
      checkRelErr = relErr(await ko.read(), await kp.read());
    } catch (err) {
      checkNote = `check failed: ${errorMessage(err)}`;
    }
  }
  for (const out of kept.values()) out.free();

  // One more warm-up for fast cases: the first includes pipeline compilation, so it says little about speed.
  const estimate = () => entries.reduce((t, e) => t + (e.failed ? 0 : (e.warmupMs.at(-1) ?? 0)), 0);
  if (opts.runs === null && estimate() < opts.targetMs / 4) {
    for (const e of entries) await guarded(e, async () => void e.warmupMs.push(await timeOnce(e)));
  }
  for (const e of entries) e.liveAfterWarmup = e.side.liveTensors();

  let runs = opts.runs ?? opts.minRuns;
  if (opts.runs === null) {
    const per = estimate();
    if (per > 0) runs = Math.max(opts.minRuns, Math.min(opts.maxRuns, Math.floor(opts.targetMs / per)));
  }
  for (let r = 0; r < runs; r++) {
    const order = r % 2 === 0 ? entries : [...entries].reverse();
    for (const e of order) {
      await guarded(e, async () => {
        e.samples.push(await timeOnce(e));
        if (e.side.liveTensors() !== e.liveAfterWarmup) e.grew = true;
      });
    }
  }

  const result = (p: typeof po | null, e: Entry | null): SideResult | null => {
    if (!p) return null;
    if ('result' in p) return p.result;
    return finish(e as Entry);
  };
  return { ours: result(po, eo) as SideResult, peer: result(pp, ep), checkRelErr, checkNote, runs };
}
