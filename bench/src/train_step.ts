// The official training iteration (CycleGANModel.optimizeParameters with the
// official defaults: resnet_9blocks ngf 64, basic D, instance norm, lsgan,
// lambda_identity 0.5, batch 1) on a fresh device per image size, so the
// device's peak-bytes counter covers this model alone.
//
// Per step: `encode` = wall time until optimizeParameters returns (it records
// GPU work and returns; the device submits every 128 dispatches, so the GPU
// already runs meanwhile, and on lavapipe it runs on the same 2 cores as this
// JS thread), `total` = until the GPU is done, waited for as the trainer waits (a StepPacer per
// fusion mode, so the host sleeps through the step instead of dawn.node polling on a core).
import { nn } from '@cg/autograd';
import { CycleGANModel, DEFAULT_TRAIN_OPTIONS } from '@cg/cyclegan';
import { Rng, StepPacer } from '@cg/tensor-core';
import { requestDevice } from '@cg/tensor-core/node';
import { countDispatches } from './dispatch_counter.js';
import { median } from './harness.js';
import { probeTorch, runTorch } from './torch.js';

export interface TrainStepOptions {
  size: number;
  iters: number;
  warmup: number;
  /** Run torch_step.py too (when torch is installed). */
  torch: boolean;
  /**
   * 'alternate': the same model steps with fusion on and off in turn (nn.setFusion; ABBA order after
   * `warmup` steps of each), reported side by side. Default: as the environment says (CG_FUSION).
   */
  fusion?: 'env' | 'alternate';
}

/** The same statistics for the unfused steps of a `fusion: 'alternate'` run. */
export interface UnfusedSteps {
  warmup: StepSample[];
  samples: StepSample[];
  sPerIter: number;
  encodeMs: number;
  dispatchesPerStep: number;
  submitsPerStep: number;
  /** unfused s/iter over fused s/iter (medians): above 1, fusion is faster. */
  unfusedOverFused: number;
  /** Median of the per-pair ratios (each unfused step over the fused step next to it). */
  pairedUnfusedOverFused: number;
}

export interface StepSample {
  totalMs: number;
  encodeMs: number;
  dispatches: number;
  submits: number;
}

export interface TrainStepResult {
  id: string;
  shapes: string;
  status: 'ok' | 'error';
  message?: string;
  warmup: StepSample[];
  samples: StepSample[];
  /** Medians over the timed steps. */
  sPerIter?: number;
  encodeMs?: number;
  dispatchesPerStep?: number;
  submitsPerStep?: number;
  /** Storage-pool high-water mark (live + pooled bytes) on this fresh device, after all steps. */
  peakBytes?: number;
  /** Highest live storage bytes (without the pool's idle buffers). */
  peakLiveBytes?: number;
  /** Live storage bytes after the last step (parameters, Adam moments, pools, losses, visuals). */
  liveBytesAfter?: number;
  pipelinesCompiled?: number;
  losses?: Record<string, number>;
  torch?:
    | { status: 'ok'; sPerIter: number; seconds: number[]; warmupS: number[]; threads: number; version: string }
    | { status: 'skipped' | 'error'; message: string };
  /** ours s/iter over torch s/iter: above 1, torch is faster. */
  oursOverTorch?: number;
  /** Whether the steps above ran fused (nn/fusion.ts). */
  fused?: boolean;
  /** With fusion 'alternate': the unfused steps, interleaved with the fused ones above. */
  unfused?: UnfusedSteps;
  /** 1-minute load average before and after (set by run.ts): other processes share these cores. */
  loadAverage1m?: number[];
}

function batch(size: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  const x = new Float32Array(3 * size * size);
  for (let i = 0; i < x.length; i++) x[i] = rng.random() * 2 - 1;
  return x;
}

export async function runTrainStep(o: TrainStepOptions): Promise<TrainStepResult> {
  const h = o.size;
  const shape = [1, 3, h, h];
  const result: TrainStepResult = {
    id: `train step @${h}`,
    shapes:
      'CycleGANModel.optimizeParameters: 2× resnet_9blocks ngf 64, 2× basic D ndf 64, instance norm, lsgan, idt 0.5, batch 1',
    status: 'ok',
    warmup: [],
    samples: [],
  };
  const device = await requestDevice();
  const counter = countDispatches(device);
  let model: CycleGANModel | null = null;
  try {
    model = new CycleGANModel(device, { ...DEFAULT_TRAIN_OPTIONS, seed: 0 });
    const input = { A: batch(h, 21), B: batch(h, 22), shapeA: shape, shapeB: shape };
    await device.sync();
    const m = model;
    const pacers = new Map<boolean | null, StepPacer>();
    const step = async (fusion: boolean | null): Promise<StepSample> => {
      const pacer = pacers.get(fusion) ?? new StepPacer(device);
      pacers.set(fusion, pacer);
      nn.setFusion(fusion);
      try {
        const [d0, s0] = [counter.dispatches, counter.submits];
        const t0 = performance.now();
        m.optimizeParameters(input);
        const t1 = performance.now();
        await pacer.wait();
        const t2 = performance.now();
        return {
          totalMs: t2 - t0,
          encodeMs: t1 - t0,
          dispatches: counter.dispatches - d0,
          submits: counter.submits - s0,
        };
      } finally {
        nn.setFusion(null);
      }
    };
    const unfused = { warmup: [] as StepSample[], samples: [] as StepSample[] };
    if (o.fusion === 'alternate') {
      result.fused = true;
      for (let i = 0; i < o.warmup; i++) {
        result.warmup.push(await step(true));
        unfused.warmup.push(await step(false));
      }
      for (let i = 0; i < o.iters; i++) {
        const order = i % 2 === 0 ? [true, false] : [false, true];
        for (const f of order) (f ? result.samples : unfused.samples).push(await step(f));
      }
    } else {
      result.fused = nn.fusionEnabled();
      for (let i = 0; i < o.warmup + o.iters; i++)
        (i < o.warmup ? result.warmup : result.samples).push(await step(null));
    }
    const mem = device.memory();
    const pick = (f: (s: StepSample) => number) => median(result.samples.map(f));
    if (unfused.samples.length) {
      const u = (f: (s: StepSample) => number) => median(unfused.samples.map(f));
      result.unfused = {
        ...unfused,
        sPerIter: u((s) => s.totalMs) / 1000,
        encodeMs: u((s) => s.encodeMs),
        dispatchesPerStep: u((s) => s.dispatches),
        submitsPerStep: u((s) => s.submits),
        unfusedOverFused: u((s) => s.totalMs) / pick((s) => s.totalMs),
        pairedUnfusedOverFused: median(unfused.samples.map((s, i) => s.totalMs / result.samples[i].totalMs)),
      };
    }
    Object.assign(result, {
      sPerIter: pick((s) => s.totalMs) / 1000,
      encodeMs: pick((s) => s.encodeMs),
      dispatchesPerStep: pick((s) => s.dispatches),
      submitsPerStep: pick((s) => s.submits),
      peakBytes: mem.peakBytes,
      peakLiveBytes: mem.peakLiveBytes,
      liveBytesAfter: mem.liveBytes,
      pipelinesCompiled: mem.pipelinesCompiled,
      // Read back after timing: proves the steps computed something finite.
      losses: await model.getCurrentLosses(),
    });
  } catch (e) {
    result.status = 'error';
    result.message = (e instanceof Error ? e.message : String(e)).split('\n')[0].slice(0, 300);
  } finally {
    model?.dispose();
    counter.restore();
    device.release();
  }

  if (o.torch) {
    const probe = await probeTorch();
    if ('missing' in probe) result.torch = { status: 'skipped', message: probe.missing };
    else {
      try {
        const r = await runTorch<{ seconds: number[]; warmup_s: number[]; threads: number; torch: string }>(
          ['train', `--size=${h}`, `--iters=${o.iters}`, `--warmup=${o.warmup}`],
          3600,
        );
        result.torch = {
          status: 'ok',
          sPerIter: median(r.seconds),
          seconds: r.seconds,
          warmupS: r.warmup_s,
          threads: r.threads,
          version: r.torch,
        };
        if (result.sPerIter) result.oursOverTorch = result.sPerIter / result.torch.sPerIter;
      } catch (e) {
        result.torch = { status: 'error', message: `torch_step.py: ${(e as Error).message.split('\n')[0]}` };
      }
    }
  }
  return result;
}
