// Whole-network peer: one resnet_9blocks generator forward (ngf 64, instance
// norm, batch 1) on ours, on onnxruntime-node's WebGPU EP (its own Dawn, on
// whatever Vulkan adapter it picks: lavapipe is the only one here) and CPU EP,
// and on PyTorch CPU when installed. Every side runs exactly our weights: the
// peers get our own ONNX export (exportOnnx, eval mode) of a seeded network,
// torch a .pth we write. Outputs are compared before anything is timed.
//
// A run is input upload → forward → output back on the host, on every side:
// `session.run` takes and returns host data, so ours uploads the input and
// reads the output back too (a readback is also what synchronises ours).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { nn, noGrad, type Variable, variable } from '@cg/autograd';

const { fusionEnabled, setFusion } = nn;

import { defineD, defineG, exportOnnx, hostStateDict, type StateDict, writePth } from '@cg/cyclegan';
import { type Device, Rng, Tensor, tidy } from '@cg/tensor-core';
import { countDispatches } from './dispatch_counter.js';
import { median } from './harness.js';
import { loadOrt, type OrtSession } from './peer_ort.js';
import { probeTorch, runTorch } from './torch.js';

export interface NetworkOptions {
  size: number;
  runs: number;
  warmup: number;
  /** Load the peers (ORT, torch); false = ours only. */
  peers: boolean;
}

export interface NetworkSide {
  name: string;
  status: 'ok' | 'error' | 'skipped';
  message?: string;
  medianMs?: number;
  minMs?: number;
  samplesMs?: number[];
  warmupMs?: number[];
  /** Same process, runs interleaved with ours (torch runs alone in a child process). */
  interleaved: boolean;
  /** max |this − ours| over the output, after warm-up. */
  maxAbsDiffVsOurs?: number;
  /** ours median / this median: above 1, this side is faster than ours. */
  oursOverThis?: number;
  /** Conv FLOPs of the forward / median time (set by run.ts). */
  gflops?: number;
  /** gflops over the FMA ceiling of this run (set by run.ts). */
  fractionOfFmaCeiling?: number;
}

export interface NetworkResult {
  id: string;
  shapes: string;
  outputMaxAbs: number | null;
  sides: NetworkSide[];
  notes: string[];
  /** 1-minute load average before and after (set by run.ts): other processes share these cores. */
  loadAverage1m?: number[];
}

interface Runner {
  side: NetworkSide;
  run(): Promise<Float32Array>;
  release(): Promise<void> | void;
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Number.POSITIVE_INFINITY;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= m)) m = d; // NaN shows as NaN
  }
  return m;
}

const errText = (e: unknown) => (e instanceof Error ? e.message : String(e)).split('\n')[0].slice(0, 200);

/** The generator forward on every side; prints nothing (run.ts formats the result). */
export async function runNetwork(device: Device, o: NetworkOptions): Promise<NetworkResult> {
  const h = o.size;
  const dims = [1, 3, h, h];
  const id = `network G fwd @${h}`;
  const notes: string[] = [];
  const rng = new Rng(11);
  const x = new Float32Array(3 * h * h);
  for (let i = 0; i < x.length; i++) x[i] = rng.random() * 2 - 1;

  // networks.define_G as the official train.py builds it (init normal 0.02), then eval mode for the export's semantics.
  const net = generator(device, 'resnet_9blocks', 64);
  net.eval();
  const sd = await hostStateDict(net);

  // Ours as configured (CG_FUSION, on by default) and, interleaved, with fusion the other way (nn/fusion.ts).
  const fused = fusionEnabled();
  const forward = (fusion: boolean) => async () => {
    setFusion(fusion);
    try {
      const y = tidy(() => noGrad(() => net.forward(variable(Tensor.fromArray(device, x, dims))).data));
      try {
        return await y.toArray();
      } finally {
        y.dispose();
      }
    } finally {
      setFusion(null);
    }
  };
  const perForward = (fusion: boolean) =>
    withFusion(fusion, () =>
      dispatchesOf(device, () => tidy(() => noGrad(() => net.forward(variable(Tensor.zeros(device, dims))).data))),
    );
  notes.push(
    `ours: fusion ${fused ? 'on' : 'off'} (CG_FUSION); dispatches per forward: fused ${perForward(true)}, unfused ${perForward(false)}`,
  );
  const runners: Runner[] = [
    {
      side: { name: 'ours (WebGPU)', status: 'ok', interleaved: true },
      run: forward(fused),
      release: () => net.dispose(),
    },
    {
      side: { name: `ours, fusion ${fused ? 'off' : 'on'}`, status: 'ok', interleaved: true },
      run: forward(!fused),
      release: () => {},
    },
  ];
  const failed: NetworkSide[] = [];
  if (o.peers) {
    try {
      const { ort, version } = loadOrt();
      const model = exportOnnx(sd, { mode: 'eval' });
      notes.push(`onnxruntime-node ${version} (resolved from test/package.json), model = our ONNX export, eval mode`);
      for (const [name, ep] of [
        ['ORT WebGPU EP', 'webgpu'],
        ['ORT CPU EP', 'cpu'],
      ] as const) {
        const side: NetworkSide = { name, status: 'ok', interleaved: true };
        let session: OrtSession;
        try {
          session = await ort.InferenceSession.create(model, { executionProviders: [ep] });
        } catch (e) {
          failed.push({ ...side, status: 'error', message: `session: ${errText(e)}` });
          continue;
        }
        runners.push({
          side,
          async run() {
            const r = await session.run({ input: new ort.Tensor('float32', x, dims) });
            return r.output.data as Float32Array;
          },
          release: () => session.release(),
        });
      }
      notes.push(`ORT CPU EP with its default intra-op threads (${cpus().length} cores here)`);
    } catch (e) {
      failed.push({ name: 'ORT', status: 'error', interleaved: true, message: errText(e) });
    }
  }

  let reference: Float32Array | null = null;
  try {
    // Warm-up (the first includes pipeline compilation / session set-up work), then the cross-check.
    const outputs = new Map<Runner, Float32Array>();
    for (const r of runners) {
      r.side.warmupMs = [];
      for (let w = 0; w < Math.max(1, o.warmup); w++) {
        try {
          const t0 = performance.now();
          const y = await r.run();
          r.side.warmupMs.push(performance.now() - t0);
          if (w === 0) outputs.set(r, y);
        } catch (e) {
          r.side.status = 'error';
          r.side.message = `run: ${errText(e)}`;
          break;
        }
      }
    }
    reference = outputs.get(runners[0]) ?? null;
    if (reference) {
      for (const r of runners.slice(1)) {
        const y = outputs.get(r);
        if (y) r.side.maxAbsDiffVsOurs = maxAbsDiff(y, reference);
      }
    }
    // Interleaved timed runs, the order reversed every round (ABC, CBA, …) so drifts hit every side alike.
    const live = () => runners.filter((r) => r.side.status === 'ok');
    for (const r of live()) r.side.samplesMs = [];
    for (let k = 0; k < o.runs; k++) {
      const order = k % 2 === 0 ? live() : live().reverse();
      for (const r of order) {
        try {
          const t0 = performance.now();
          await r.run();
          r.side.samplesMs?.push(performance.now() - t0);
        } catch (e) {
          r.side.status = 'error';
          r.side.message = `run: ${errText(e)}`;
        }
      }
    }
  } finally {
    for (const r of runners) {
      try {
        await r.release();
      } catch {
        // A failed session may not release; the process exits anyway.
      }
    }
  }

  const sides = [...runners.map((r) => r.side), ...failed];
  if (o.peers) sides.push(await torchForward(o, sd, x, reference));
  for (const s of sides) {
    if (s.status === 'ok' && s.samplesMs?.length) {
      s.medianMs = median(s.samplesMs);
      s.minMs = Math.min(...s.samplesMs);
    }
  }
  const ours = sides[0].medianMs;
  for (const s of sides.slice(1)) if (ours && s.medianMs) s.oursOverThis = ours / s.medianMs;
  let outputMaxAbs: number | null = null;
  if (reference) outputMaxAbs = reference.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  return {
    id,
    shapes: `resnet_9blocks ngf 64, instance norm, eval; x [${dims.join(',')}]; our weights on every side`,
    outputMaxAbs,
    sides,
    notes,
  };
}

/** torch_step.py forward on our weights (.pth) and input; alone in a child process, after the others. */
async function torchForward(
  o: NetworkOptions,
  sd: StateDict,
  x: Float32Array,
  reference: Float32Array | null,
): Promise<NetworkSide> {
  const side: NetworkSide = { name: 'torch CPU', status: 'skipped', interleaved: false };
  const probe = await probeTorch();
  if ('missing' in probe) return { ...side, message: probe.missing };
  const dir = mkdtempSync(join(tmpdir(), 'cg-bench-'));
  try {
    const [weights, input, output] = ['G.pth', 'x.f32', 'y.f32'].map((f) => join(dir, f));
    writeFileSync(weights, writePth(sd));
    writeFileSync(input, new Uint8Array(x.buffer, x.byteOffset, x.byteLength));
    const r = await runTorch<{ seconds: number[]; warmup_s: number[]; threads: number; torch: string }>(
      [
        'forward',
        `--size=${o.size}`,
        `--runs=${o.runs}`,
        `--warmup=${Math.max(1, o.warmup)}`,
        `--weights=${weights}`,
        `--input=${input}`,
        `--output=${output}`,
      ],
      1800,
    );
    const b = readFileSync(output);
    const y = new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
    return {
      ...side,
      name: `torch ${r.torch} CPU (${r.threads} threads)`,
      status: 'ok',
      samplesMs: r.seconds.map((s) => s * 1000),
      warmupMs: r.warmup_s.map((s) => s * 1000),
      ...(reference ? { maxAbsDiffVsOurs: maxAbsDiff(y, reference) } : {}),
    };
  } catch (e) {
    return { ...side, status: 'error', message: `torch_step.py: ${errText(e)}` };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---- fused vs unfused, whole networks -----------------------------------------------

function withFusion<T>(on: boolean, fn: () => T): T {
  setFusion(on);
  try {
    return fn();
  } finally {
    setFusion(null);
  }
}

/** Dispatches recorded while `fn` runs (its result, a tensor, is disposed). */
function dispatchesOf(device: Device, fn: () => { dispose(): void }): number {
  const counter = countDispatches(device);
  try {
    fn().dispose();
    return counter.dispatches;
  } finally {
    counter.restore();
  }
}

interface NetLike {
  forward(x: Variable): Variable;
  zeroGrad(): void;
  dispose(): void;
}

/** A network of the comparison: how to build it and its input. */
export interface FusionNet {
  name: string;
  size: number;
  build(device: Device): NetLike;
}

export const FUSION_NETS: Record<string, FusionNet> = {
  resnet9: {
    name: 'resnet_9blocks ngf 64 G',
    size: 64,
    build: (device) => generator(device, 'resnet_9blocks', 64),
  },
  resnet6s: {
    name: 'resnet_6blocks ngf 32 G',
    size: 64,
    build: (device) => generator(device, 'resnet_6blocks', 32),
  },
  basicD: {
    name: 'basic PatchGAN D ndf 64',
    size: 64,
    build: (device) =>
      defineD(
        { input_nc: 3, ndf: 64, netD: 'basic', n_layers_D: 3, norm: 'instance', init_type: 'normal', init_gain: 0.02 },
        { device, rng: new Rng(8) },
      ),
  },
};

/** networks.define_G with the official train.py's init (normal, 0.02), seeded. */
function generator(device: Device, netG: string, ngf: number) {
  return defineG(
    {
      input_nc: 3,
      output_nc: 3,
      ngf,
      netG,
      norm: 'instance',
      use_dropout: false,
      init_type: 'normal',
      init_gain: 0.02,
    },
    { device, rng: new Rng(7) },
  );
}

/**
 * Conv FLOPs of one forward (2·N·Cout·Ho·Wo·Cin·kH·kW per conv; a transposed conv counted per input pixel,
 * as resnetFlops in cases.ts), by watching the conv modules' forwards in one unfused run, and the first
 * conv's share (its input gradient is never computed: the image is a constant).
 */
function convFlops(device: Device, net: NetLike, dims: number[]): { fwd: number; first: number } {
  const convs: number[] = [];
  const wrap = <T extends { prototype: { forward(x: Variable): Variable } }>(
    cls: T,
    per: (m: never, x: Variable, y: Variable) => number,
  ) => {
    const orig = cls.prototype.forward;
    cls.prototype.forward = function (this: never, x: Variable) {
      const y = orig.call(this, x);
      convs.push(per(this, x, y));
      return y;
    };
    return () => {
      cls.prototype.forward = orig;
    };
  };
  const undo = [
    wrap(nn.Conv2d, (m: nn.Conv2d, _x, y) => {
      const [cout, cin, kh, kw] = m.weight.shape;
      return 2 * y.shape[0] * cout * y.shape[2] * y.shape[3] * cin * kh * kw;
    }),
    wrap(nn.ConvTranspose2d, (m: nn.ConvTranspose2d, x) => {
      const [cin, cout, kh, kw] = m.weight.shape;
      return 2 * x.shape[0] * cin * x.shape[2] * x.shape[3] * cout * kh * kw;
    }),
  ];
  try {
    withFusion(false, () => tidy(() => noGrad(() => net.forward(variable(Tensor.zeros(device, dims))).data)).dispose());
  } finally {
    for (const u of undo) u();
  }
  return { fwd: convs.reduce((a, b) => a + b, 0), first: convs[0] ?? 0 };
}

export interface FusionRow {
  net: string;
  input: number[];
  pass: 'fwd' | 'fwd+bwd';
  gflop: number;
  fusedMs: number[];
  unfusedMs: number[];
  fusedMedianMs: number;
  unfusedMedianMs: number;
  fusedGflops: number;
  unfusedGflops: number;
  /** unfused median / fused median: above 1, fusion is faster. */
  speedup: number;
  /** Per-pair ratios unfused / fused (interleaved ABBA), their median: steadier on a shared machine. */
  pairedSpeedup: number;
  fusedDispatches: number;
  unfusedDispatches: number;
  /** max |fused − unfused| over the output after warm-up. */
  maxAbsDiff: number;
}

/**
 * Whole networks fused vs unfused, in one process on one device: forward (noGrad, as inference) and
 * forward + backward (from a fixed dy, as a training step's G pass), one warm-up per mode, then `runs`
 * timed pairs in ABBA order; GFLOP/s counts the convs only (3× the forward's less the first conv's
 * input gradient for fwd+bwd).
 */
export async function runFusionComparison(
  device: Device,
  o: { nets: FusionNet[]; runs: number; warmup: number; log?: (line: string) => void },
): Promise<FusionRow[]> {
  const rows: FusionRow[] = [];
  for (const spec of o.nets) {
    const net = spec.build(device);
    const dims = [1, 3, spec.size, spec.size];
    const rng = new Rng(11);
    const xs = new Float32Array(3 * spec.size * spec.size).map(() => rng.random() * 2 - 1);
    const xv = variable(Tensor.fromArray(device, xs, dims));
    try {
      const flops = convFlops(device, net, dims);
      const outShape = tidy(() => noGrad(() => net.forward(xv).data));
      const dy = Tensor.fromArray(
        device,
        new Float32Array(outShape.size).map(() => rng.random() * 2 - 1),
        outShape.shape,
      );
      outShape.dispose();
      const passes = {
        fwd: () => tidy(() => noGrad(() => net.forward(xv).data)),
        'fwd+bwd': () => {
          tidy(() => {
            const y = net.forward(xv);
            y.backward(dy);
            y.dispose();
          });
          net.zeroGrad();
          return { dispose() {} };
        },
      } as const;
      for (const pass of ['fwd', 'fwd+bwd'] as const) {
        const step = passes[pass];
        const time = async (fusion: boolean) => {
          const t0 = performance.now();
          withFusion(fusion, () => step().dispose());
          await device.sync();
          return performance.now() - t0;
        };
        const outputs = await Promise.all(
          [true, false]
            .map((f) => withFusion(f, () => tidy(() => noGrad(() => net.forward(xv).data))))
            .map(async (t) => {
              try {
                return await t.toArray();
              } finally {
                t.dispose();
              }
            }),
        );
        for (let w = 0; w < Math.max(1, o.warmup); w++) for (const f of [true, false]) await time(f);
        const fusedDispatches = withFusion(true, () => dispatchesOf(device, step));
        const unfusedDispatches = withFusion(false, () => dispatchesOf(device, step));
        await device.sync();
        const fusedMs: number[] = [];
        const unfusedMs: number[] = [];
        for (let k = 0; k < o.runs; k++) {
          const order = k % 2 === 0 ? [true, false] : [false, true];
          for (const f of order) (f ? fusedMs : unfusedMs).push(await time(f));
        }
        const gflop = (pass === 'fwd' ? flops.fwd : 3 * flops.fwd - flops.first) / 1e9;
        const fm = median(fusedMs);
        const um = median(unfusedMs);
        const row: FusionRow = {
          net: spec.name,
          input: dims,
          pass,
          gflop,
          fusedMs,
          unfusedMs,
          fusedMedianMs: fm,
          unfusedMedianMs: um,
          fusedGflops: gflop / (fm / 1000),
          unfusedGflops: gflop / (um / 1000),
          speedup: um / fm,
          pairedSpeedup: median(fusedMs.map((f, i) => unfusedMs[i] / f)),
          fusedDispatches,
          unfusedDispatches,
          maxAbsDiff: maxAbsDiff(outputs[0], outputs[1]),
        };
        rows.push(row);
        o.log?.(formatFusionRow(row));
      }
      dy.dispose();
    } finally {
      xv.dispose();
      net.dispose();
    }
  }
  return rows;
}

export function formatFusionRow(r: FusionRow): string {
  const ms = (v: number) => v.toFixed(0).padStart(6);
  return (
    `${`${r.net} @${r.input[2]} ${r.pass}`.padEnd(38)} ${r.gflop.toFixed(2).padStart(6)} GFLOP  ` +
    `fused ${ms(r.fusedMedianMs)} ms ${r.fusedGflops.toFixed(2).padStart(6)} GFLOP/s ${String(r.fusedDispatches).padStart(5)} disp  ` +
    `unfused ${ms(r.unfusedMedianMs)} ms ${r.unfusedGflops.toFixed(2).padStart(6)} GFLOP/s ${String(r.unfusedDispatches).padStart(5)} disp  ` +
    `unfused÷fused ${r.speedup.toFixed(3)} (paired ${r.pairedSpeedup.toFixed(3)})  max|Δ| ${r.maxAbsDiff.toExponential(1)}`
  );
}
