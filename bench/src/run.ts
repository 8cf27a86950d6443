// `pnpm bench [--filter a,b] [--runs N] [--warmup N] [--no-peer] [--no-check] [--quick] [--big]`
//
// Runs every case on our kernels and on tfjs-backend-webgpu (same adapter,
// same process), then the whole-network peer (generator forward vs
// onnxruntime-node WebGPU/CPU and torch CPU) and the training step; prints
// tables and writes bench/results/bench-<time>.json and bench/results/latest.json.
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { allCases, type BenchCase, resnetFlops } from './cases.js';
import { measurePair, type PairOptions, type PairResult, type SideResult } from './harness.js';
import {
  FUSION_NETS,
  type FusionRow,
  formatFusionRow,
  type NetworkResult,
  runFusionComparison,
  runNetwork,
} from './network.js';
import { loadOurs, type Ours } from './ours.js';
import { loadTfjs, type TfjsPeer } from './peer_tfjs.js';
import { formatTiled, runTiledCase, TILED_TITLE, type TiledCase, type TiledRow } from './tiled.js';
import { runTrainStep, type TrainStepResult } from './train_step.js';

interface Cli {
  filters: string[];
  budgetS: number;
  modelSize: number;
  runs: number | null;
  warmup: number;
  peer: boolean;
  check: boolean;
  quick: boolean;
  big: boolean;
  trainIters: number | null;
  /** --train-sizes: replaces the default training-step sizes. */
  trainSizes: number[] | null;
}

const USAGE = `usage: pnpm bench [options]
  --filter a,b   only cases whose name contains one of these (case-insensitive)
  --runs N       timed runs per side (default: adaptive, 5..15 depending on case speed)
  --warmup N     warm-up runs per side (default 1; fast cases get one more)
  --model-size N input size of the whole-generator cases (default 64; 256 is the real one, ~99 GFLOP forward)
  --budget S     past S seconds (default 300), slow cases after it get 3 runs instead of 5, so a loaded machine still finishes
  --no-peer      ours only (tfjs, onnxruntime and torch are not loaded)
  --no-check     skip the ours-vs-tfjs result comparison
  --quick        3 timed runs, no extra warm-up, no whole-generator, network or training rows (a smoke run)
  --big          also the 256² network forward and the 128² training step (several minutes more on lavapipe)
  --train-iters N timed training steps per size (default 3 at 64², 2 at 128²; one warm-up step before)
  --train-sizes L training-step sizes, e.g. 64,128,256 (default 64, and 128 with --big)
  --list         print the case names and exit

The fma ceiling rows run whenever a GFLOP/s row does (they are what %fma divides by).
Network rows: --filter network; training rows: --filter train; both skipped by --quick.
Any-size rows (tiled vs whole image, and with --big 2048×1536 and 4032×3024): only with --filter tiled.
Fused vs unfused whole networks (forward and forward+backward GFLOP/s): only with --filter fusion.`;

/**
 * Where both paths run, 16 MiB tiles against the whole image (the overhead);
 * with --big, photo sizes only tiles can hold at a practical budget.
 */
function tiledPlan(big: boolean): TiledCase[] {
  const both = { ngf: 8, budgetMiB: 16, whole: true };
  return [
    { ...both, width: 512, height: 384, runs: 3 },
    { ...both, width: 1024, height: 768, runs: 2 },
    ...(big
      ? [
          { width: 2048, height: 1536, ngf: 8, budgetMiB: 64, whole: false, runs: 1 },
          { width: 4032, height: 3024, ngf: 8, budgetMiB: 64, whole: false, runs: 1 },
        ]
      : []),
  ];
}

function parseArgs(argv: string[]): Cli & { list: boolean } {
  const cli = {
    filters: [] as string[],
    budgetS: 300,
    modelSize: 64,
    runs: null as number | null,
    warmup: 1,
    peer: true,
    check: true,
  };
  let quick = false;
  let list = false;
  let big = false;
  let trainIters: number | null = null;
  let trainSizes: number[] | null = null;
  const intArg = (name: string, v: string | undefined, min: number) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new Error(`${name} needs an integer ≥ ${min}, got ${v ?? 'nothing'}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const [flag, inline] = a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const value = () => inline ?? argv[++i];
    switch (flag) {
      case '--filter':
        cli.filters.push(
          ...(value() ?? '')
            .split(',')
            .map((s) => s.trim().toLowerCase())
            .filter(Boolean),
        );
        break;
      case '--runs':
        cli.runs = intArg('--runs', value(), 1);
        break;
      case '--warmup':
        cli.warmup = intArg('--warmup', value(), 0);
        break;
      case '--model-size':
        cli.modelSize = intArg('--model-size', value(), 4);
        if (cli.modelSize % 4) throw new Error('--model-size must be a multiple of 4');
        break;
      case '--budget':
        cli.budgetS = intArg('--budget', value(), 1);
        break;
      case '--no-peer':
        cli.peer = false;
        break;
      case '--no-check':
        cli.check = false;
        break;
      case '--quick':
        quick = true;
        break;
      case '--big':
        big = true;
        break;
      case '--train-iters':
        trainIters = intArg('--train-iters', value(), 1);
        break;
      case '--train-sizes':
        trainSizes = (value() ?? '').split(',').map((v) => intArg('--train-sizes', v.trim(), 4));
        break;
      case '--list':
        list = true;
        break;
      case '--':
        break;
      case '-h':
      case '--help':
        console.log(USAGE);
        process.exit(0);
        break;
      default:
        throw new Error(`unknown option ${a}\n${USAGE}`);
    }
  }
  if (quick) cli.runs ??= 3;
  return { ...cli, quick, big, trainIters, trainSizes, list };
}

// ---- formatting -------------------------------------------------------------------

const f1 = (x: number) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));

function msCell(r: SideResult | null): string {
  if (!r) return '—';
  if (r.status === 'skipped') return 'skipped';
  if (r.status === 'error') return 'error';
  return `${f1(r.medianMs)} (${f1(r.minMs)})`;
}

/** GFLOP/s or GB/s at the median. */
function rate(c: BenchCase, r: SideResult | null): number | null {
  if (r?.status !== 'ok') return null;
  if (c.flops) return c.flops / (r.medianMs * 1e6);
  if (c.bytes) return c.bytes / (r.medianMs * 1e6);
  return null;
}

const unit = (c: BenchCase) => (c.flops ? 'GFLOP/s' : c.bytes ? 'GB/s' : '');

interface Row {
  id: string;
  group: string;
  pass: string;
  shapes: string;
  flops: number | null;
  bytes: number | null;
  runs: number;
  ours: SideResult;
  peer: SideResult | null;
  oursRate: number | null;
  peerRate: number | null;
  rateUnit: string;
  /** peer median / ours median: above 1 means ours is faster. */
  speedup: number | null;
  /** peer min / ours min: the same ratio from each side's best run (less sensitive to load spikes). */
  speedupMin: number | null;
  /** Our GFLOP/s over our best matmul GFLOP/s in this run. */
  fractionOfMatmul: number | null;
  /** Our GFLOP/s over the adapter's FMA ceiling (the best fma ceiling row) in this run. */
  fractionOfFmaCeiling: number | null;
  checkRelErr: number | null;
  checkNote?: string;
}

const COLS = [
  ['case', 44, 'left'],
  ['ours ms med (min)', 17, 'right'],
  ['tfjs ms med (min)', 17, 'right'],
  ['ours', 6, 'right'],
  ['tfjs', 6, 'right'],
  ['unit', 7, 'left'],
  ['speed-up', 8, 'right'],
  ['%mm', 4, 'right'],
  ['%fma', 4, 'right'],
  ['n', 2, 'right'],
  ['1st run s', 11, 'right'],
  ['check', 13, 'left'],
] as const;

function line(cells: string[]): string {
  return cells
    .map((s, i) => {
      const [, w, align] = COLS[i];
      const t = s.length > w ? `${s.slice(0, w - 1)}…` : s;
      return align === 'left' ? t.padEnd(w) : t.padStart(w);
    })
    .join('  ')
    .trimEnd();
}

const CHECK_TOL = 1e-3;

const pct = (f: number | null | undefined) => (f === null || f === undefined ? '' : `${(100 * f).toFixed(0)}%`);

/** First warm-up pass in seconds, ours/tfjs: pipeline compilation (lavapipe JIT) plus one run. */
function firstRun(r: Row): string {
  const first = (x: SideResult | null) =>
    x?.status === 'ok' && x.warmupMs.length ? (x.warmupMs[0] / 1000).toFixed(2) : '–';
  return r.peer ? `${first(r.ours)}/${first(r.peer)}` : first(r.ours);
}

function rowCells(r: Row, checking: boolean): string[] {
  let check = '';
  if (r.checkRelErr !== null) {
    check = `${r.checkRelErr <= CHECK_TOL ? 'ok' : 'MISMATCH'} ${r.checkRelErr.toExponential(0)}`;
  } else if (r.checkNote) check = 'check failed';
  else if (checking && r.ours.status === 'ok' && r.peer?.status === 'ok') check = 'n/a';
  return [
    r.id,
    msCell(r.ours),
    msCell(r.peer),
    r.oursRate === null ? '' : f1(r.oursRate),
    r.peerRate === null ? '' : f1(r.peerRate),
    r.oursRate === null && r.peerRate === null ? '' : r.rateUnit,
    r.speedup === null ? '' : `${r.speedup.toFixed(2)}×`,
    pct(r.fractionOfMatmul),
    pct(r.fractionOfFmaCeiling),
    String(r.runs),
    firstRun(r),
    check,
  ];
}

function explain(r: Row): string[] {
  const out: string[] = [];
  for (const [who, s] of [
    ['ours', r.ours],
    ['tfjs', r.peer],
  ] as const) {
    if (!s) continue;
    if (s.status === 'skipped') out.push(`${who}: skipped (${s.reason})`);
    if (s.status === 'error') out.push(`${who}: ERROR ${s.message}`);
    if (s.status === 'ok' && (s.leaked !== 0 || s.grewDuringRuns)) {
      out.push(
        `${who}: LEAK — ${s.leaked} tensors left after the case${s.grewDuringRuns ? ', count grew between runs' : ''}`,
      );
    }
  }
  if (r.checkNote) out.push(r.checkNote);
  return out.map((s) => `    ↳ ${s}`);
}

// ---- whole-network and training sections -----------------------------------------

const networkId = (h: number) => `network G fwd @${h}`;
const trainId = (h: number) => `train step @${h}`;

const NETWORK_TITLE =
  'whole network: resnet_9blocks ngf 64 generator forward, batch 1, our weights on every side (our ONNX export for ORT,\n' +
  'a .pth for torch); one run = input upload + forward + output on the host, for ours too (its readback is its sync)';

const NET_COLS = [
  ['side', 34, 'left'],
  ['ms med (min)', 17, 'right'],
  ['n', 2, 'right'],
  ['1st run s', 9, 'right'],
  ['ours÷this', 9, 'right'],
  ['GFLOP/s', 7, 'right'],
  ['%fma', 4, 'right'],
  ['max|Δ| vs ours', 14, 'right'],
] as const;

function cellsLine(cols: readonly (readonly [string, number, string])[], cells: string[]): string {
  return cells
    .map((s, i) => {
      const [, w, align] = cols[i];
      const t = s.length > w ? `${s.slice(0, w - 1)}…` : s;
      return align === 'left' ? t.padEnd(w) : t.padStart(w);
    })
    .join('  ')
    .trimEnd();
}

function printNetwork(r: NetworkResult): void {
  console.log(`  ${r.id}: ${r.shapes}; max |ours| = ${r.outputMaxAbs?.toExponential(2) ?? '?'}`);
  console.log(
    `  ${cellsLine(
      NET_COLS,
      NET_COLS.map((c) => c[0]),
    )}`,
  );
  for (const s of r.sides) {
    if (s.status !== 'ok' || s.medianMs === undefined) {
      const what = s.status === 'skipped' ? 'skipped' : 'ERROR';
      console.log(`  ${cellsLine(NET_COLS, [s.name, what])}`);
      console.log(`      ↳ ${s.message ?? ''}`);
      continue;
    }
    console.log(
      `  ${cellsLine(NET_COLS, [
        s.name + (s.interleaved ? '' : ' *'),
        `${f1(s.medianMs)} (${f1(s.minMs ?? s.medianMs)})`,
        String(s.samplesMs?.length ?? 0),
        s.warmupMs?.length ? (s.warmupMs[0] / 1000).toFixed(2) : '–',
        s.oursOverThis === undefined ? '' : `${s.oursOverThis.toFixed(2)}×`,
        s.gflops === undefined ? '' : f1(s.gflops),
        pct(s.fractionOfFmaCeiling),
        s.maxAbsDiffVsOurs === undefined ? '' : s.maxAbsDiffVsOurs.toExponential(1),
      ])}`,
    );
  }
  for (const n of r.notes) console.log(`      ${n}`);
  if (r.loadAverage1m)
    console.log(`      load average (1 min) ${r.loadAverage1m.map((l) => l.toFixed(2)).join(' → ')}`);
  if (r.sides.some((s) => !s.interleaved && s.status === 'ok')) {
    console.log('      * ran alone in a child process after the others (not interleaved)');
  }
  console.log('      ours÷this = ours ms / this ms: above 1× this side is faster; GFLOP/s counts the convs only');
}

const TRAIN_TITLE =
  'training step: CycleGANModel.optimizeParameters (official defaults: 2× resnet_9blocks ngf 64, 2× basic D, instance\n' +
  'norm, lsgan, identity 0.5, batch 1); one warm-up step, then timed steps, each waited for as the trainer waits (StepPacer); fresh device';

const TRAIN_COLS = [
  ['case', 16, 'left'],
  ['s/iter med (min)', 16, 'right'],
  ['n', 2, 'right'],
  ['1st s', 6, 'right'],
  ['encode ms', 9, 'right'],
  ['dispatches', 10, 'right'],
  ['submits', 7, 'right'],
  ['peak MiB (live)', 15, 'right'],
  ['torch s/iter', 12, 'right'],
  ['ours÷torch', 10, 'right'],
] as const;

const trainLine = (cells: string[]) => cellsLine(TRAIN_COLS, cells);

function printTrain(r: TrainStepResult): void {
  if (r.status !== 'ok' || r.sPerIter === undefined) {
    console.log(trainLine([r.id, 'ERROR']));
    console.log(`    ↳ ${r.message ?? ''}`);
    return;
  }
  const t = r.torch;
  const min = Math.min(...r.samples.map((s) => s.totalMs)) / 1000;
  console.log(
    trainLine([
      r.id,
      `${f1(r.sPerIter)} (${f1(min)})`,
      String(r.samples.length),
      r.warmup.length ? (r.warmup[0].totalMs / 1000).toFixed(1) : '–',
      f1(r.encodeMs ?? 0),
      String(r.dispatchesPerStep),
      String(r.submitsPerStep),
      `${((r.peakBytes ?? 0) / 2 ** 20).toFixed(0)} (${((r.peakLiveBytes ?? 0) / 2 ** 20).toFixed(0)})`,
      t?.status === 'ok' ? f1(t.sPerIter) : t ? t.status : '—',
      r.oursOverTorch === undefined ? '' : `${r.oursOverTorch.toFixed(2)}×`,
    ]),
  );
  if (t && t.status !== 'ok') console.log(`    ↳ torch: ${t.message}`);
  if (t?.status === 'ok') console.log(`    ↳ torch ${t.version}, ${t.threads} threads, child process, after ours`);
  const losses = Object.entries(r.losses ?? {})
    .map(([k, v]) => `${k} ${v.toFixed(3)}`)
    .join(', ');
  if (r.loadAverage1m)
    console.log(`    ↳ load average (1 min) ${r.loadAverage1m.map((l) => l.toFixed(2)).join(' → ')}`);
  console.log(
    `    ↳ encode = until optimizeParameters returns (GPU already busy on the same cores); live after: ${((r.liveBytesAfter ?? 0) / 2 ** 20).toFixed(0)} MiB; losses: ${losses}`,
  );
}

// ---- main ------------------------------------------------------------------------

async function main(): Promise<void> {
  const cli = parseArgs(process.argv.slice(2));
  const matches = (name: string) => !cli.filters.length || cli.filters.some((f) => name.toLowerCase().includes(f));
  const all = allCases(cli.modelSize);
  let cases = all.filter((c) => c.group !== 'ceiling' && !(cli.quick && c.heavy) && matches(`${c.group} ${c.id}`));
  // Whole-network and training rows: heavy, so not under --quick; the bigger sizes only with --big.
  const networkSizes = cli.quick ? [] : [128, ...(cli.big ? [256] : [])].filter((h) => matches(networkId(h)));
  const trainSizes = (cli.trainSizes ?? (cli.quick ? [] : [64, ...(cli.big ? [128] : [])])).filter((h) =>
    matches(trainId(h)),
  );
  // Any-size rows only when a filter names them: they take minutes.
  const tiledCases = cli.filters.some((f) => 'tiled'.includes(f) || f.includes('tiled')) ? tiledPlan(cli.big) : [];
  // Whole-network GFLOP/s, fused against unfused, forward and forward+backward (--filter fusion).
  const fusionNets = cli.filters.some((f) => 'fusion'.includes(f) || f.includes('fusion'))
    ? Object.values(FUSION_NETS)
    : [];
  // The FMA ceiling runs whenever something is reported as a fraction of it.
  const ceilings = all.filter((c) => c.group === 'ceiling');
  if (cases.some((c) => c.flops) || networkSizes.length || ceilings.some((c) => matches(`${c.group} ${c.id}`))) {
    cases = [...ceilings, ...cases];
  }
  if (cli.list) {
    for (const c of cases) console.log(`${c.id}  [${c.group}/${c.pass}]  ${c.shapes}`);
    for (const h of networkSizes) console.log(`${networkId(h)}  [network]  ours vs ORT WebGPU/CPU EP vs torch CPU`);
    for (const h of trainSizes) console.log(`${trainId(h)}  [train]  CycleGANModel.optimizeParameters vs torch CPU`);
    return;
  }
  if (cli.list) for (const c of tiledCases) console.log(`tiled ${c.width}×${c.height} ngf ${c.ngf}  [tiled]`);
  if (!cases.length && !networkSizes.length && !trainSizes.length && !tiledCases.length && !fusionNets.length) {
    throw new Error(`no case matches --filter ${cli.filters.join(',')} (see --list)`);
  }

  const started = Date.now();
  const loadBefore = loadavg();
  const ours: Ours = await loadOurs();
  let peer: TfjsPeer | null = null;
  let peerError: string | null = null;
  if (cli.peer && cases.some((c) => c.peer)) {
    try {
      peer = await loadTfjs();
    } catch (e) {
      peerError = (e as Error).message;
    }
  }

  try {
    const a = ours.device.adapter;
    console.log(
      `adapter: ${a.description || a.architecture || a.vendor} (${a.backend}, ${a.featureLevel}${a.isSoftware ? ', software' : ''})`,
    );
    console.log(
      `node ${process.version}, ${cpus().length}× ${cpus()[0]?.model ?? '?'}; peer: ${
        peer
          ? `tfjs-backend-webgpu ${peer.version} (${peer.adapter.description || peer.adapter.architecture})`
          : (peerError ?? (cli.peer ? 'tfjs not needed by the selected cases' : 'off (--no-peer)'))
      }`,
    );
    console.log(
      `load average ${loadBefore.map((l) => l.toFixed(2)).join(' ')} (other processes skew absolute times; ratios less)`,
    );
    console.log(
      `runs: ${cli.runs ?? 'adaptive 5..15'}, warm-up ${cli.warmup}; median of interleaved runs, GPU synchronised; speed-up = tfjs ms / ours ms\n`,
    );

    const opts: PairOptions = {
      runs: cli.runs,
      minRuns: 5,
      maxRuns: 15,
      warmup: cli.warmup,
      targetMs: 6000,
      check: cli.check,
    };
    if (cases.length) console.log(line(COLS.map((c) => c[0])));
    const rows: Row[] = [];
    let ceiling: number | null = null;
    let fmaCeiling: number | null = null;
    let reduced = 0;
    for (const c of cases) {
      if (cli.runs === null && (Date.now() - started) / 1000 > cli.budgetS) {
        if (!reduced) console.log(`    (past the ${cli.budgetS} s budget: slow cases from here on get 3 runs)`);
        reduced++;
        opts.minRuns = 3; // fast cases stay adaptive (up to 15 runs): they cost little
      }
      const pr: PairResult = await measurePair(
        { side: ours, make: () => c.ours(ours) },
        peer && c.peer ? { side: peer, make: () => c.peer?.(peer) ?? Promise.reject(new Error('no peer')) } : null,
        opts,
      );
      const oursRate = rate(c, pr.ours);
      const peerRate = rate(c, pr.peer);
      if (c.group === 'matmul' && oursRate !== null) ceiling = Math.max(ceiling ?? 0, oursRate);
      if (c.group === 'ceiling' && oursRate !== null) fmaCeiling = Math.max(fmaCeiling ?? 0, oursRate);
      const oursMs = pr.ours.status === 'ok' ? pr.ours.medianMs : null;
      const peerMs = pr.peer?.status === 'ok' ? pr.peer.medianMs : null;
      const row: Row = {
        id: c.id,
        group: c.group,
        pass: c.pass,
        shapes: c.shapes,
        flops: c.flops ?? null,
        bytes: c.bytes ?? null,
        runs: pr.runs,
        ours: pr.ours,
        peer: pr.peer,
        oursRate,
        peerRate,
        rateUnit: unit(c),
        speedup: oursMs !== null && peerMs !== null ? peerMs / oursMs : null,
        speedupMin: pr.ours.status === 'ok' && pr.peer?.status === 'ok' ? pr.peer.minMs / pr.ours.minMs : null,
        fractionOfMatmul:
          c.flops && c.group !== 'matmul' && c.group !== 'ceiling' && oursRate !== null && ceiling
            ? oursRate / ceiling
            : null,
        // The ceiling rows get theirs once both have run (below).
        fractionOfFmaCeiling:
          c.flops && c.group !== 'ceiling' && oursRate !== null && fmaCeiling ? oursRate / fmaCeiling : null,
        checkRelErr: pr.checkRelErr,
        ...(pr.checkNote ? { checkNote: pr.checkNote } : {}),
      };
      rows.push(row);
      console.log(line(rowCells(row, cli.check)));
      for (const s of explain(row)) console.log(s);
      if (pr.ours.status === 'error' && (await ours.recoverIfBroken())) {
        console.log('    ↳ ours: device was broken by that error; continuing on a fresh device');
      }
    }

    for (const r of rows) {
      if (r.group === 'ceiling' && r.oursRate !== null && fmaCeiling) r.fractionOfFmaCeiling = r.oursRate / fmaCeiling;
    }
    if (reduced) console.log(`${reduced} cases ran after the --budget of ${cli.budgetS} s (slow ones 3 times only)`);
    const skipped = rows.filter((r) => r.ours.status === 'skipped').length;
    if (rows.length) {
      console.log(
        `\n${rows.length} cases in ${((Date.now() - started) / 1000).toFixed(0)} s${skipped ? `; ${skipped} skipped on our side (kernel not implemented yet)` : ''}` +
          `; fma ceiling ${fmaCeiling === null ? 'not measured' : `${fmaCeiling.toFixed(2)} GFLOP/s`}` +
          `; best matmul ${ceiling === null ? 'not measured' : `${ceiling.toFixed(2)} GFLOP/s`}`,
      );
    }

    const network: NetworkResult[] = [];
    for (const h of networkSizes) {
      if (!network.length) console.log(`\n${NETWORK_TITLE}`);
      const load0 = loadavg()[0];
      const r = await runNetwork(ours.device, {
        size: h,
        runs: cli.runs ?? (h >= 256 ? 3 : 5),
        warmup: cli.warmup,
        peers: cli.peer,
      });
      const flops = resnetFlops(h, 64, 9).fwd;
      for (const side of r.sides) {
        if (side.medianMs === undefined) continue;
        side.gflops = flops / (side.medianMs * 1e6);
        if (fmaCeiling) side.fractionOfFmaCeiling = side.gflops / fmaCeiling;
      }
      r.loadAverage1m = [load0, loadavg()[0]];
      network.push(r);
      printNetwork(r);
    }

    const training: TrainStepResult[] = [];
    if (trainSizes.length) {
      ours.device.trimPool(); // the kernel cases' pooled buffers are host memory on lavapipe
      console.log(`\n${TRAIN_TITLE}`);
      console.log(trainLine(TRAIN_COLS.map((c) => c[0])));
    }
    for (const h of trainSizes) {
      const load0 = loadavg()[0];
      const r = await runTrainStep({
        size: h,
        iters: cli.trainIters ?? (h >= 128 ? 2 : 3),
        warmup: 1,
        torch: cli.peer,
      });
      r.loadAverage1m = [load0, loadavg()[0]];
      training.push(r);
      printTrain(r);
    }
    const fusion: FusionRow[] = [];
    if (fusionNets.length) {
      console.log(
        '\nfusion: whole networks, fused vs unfused (nn.setFusion), runs alternating; GFLOP/s counts the convs',
      );
      fusion.push(
        ...(await runFusionComparison(ours.device, {
          nets: fusionNets,
          runs: cli.runs ?? 5,
          warmup: cli.warmup,
          log: (l) => console.log(l),
        })),
      );
      for (const r of fusion) console.log(formatFusionRow(r));
    }
    const tiled: TiledRow[] = [];
    for (const c of tiledCases) {
      if (!tiled.length) console.log(`\n${TILED_TITLE}`);
      ours.device.trimPool();
      const r = await runTiledCase(ours.device, { ...c, runs: cli.runs ?? c.runs });
      tiled.push(r);
      console.log(formatTiled(r));
    }
    const seconds = (Date.now() - started) / 1000;
    if (network.length || training.length || tiled.length) console.log(`\ntotal ${seconds.toFixed(0)} s`);

    const timestamp = new Date(started).toISOString();
    const report = {
      schema: 2,
      timestamp,
      seconds,
      node: process.version,
      platform: `${process.platform}-${process.arch}`,
      cpu: { model: cpus()[0]?.model ?? '', cores: cpus().length },
      loadAverage: { before: loadBefore, after: loadavg() },
      adapter: { ours: ours.device.adapter, tfjs: peer ? { ...peer.adapter, version: peer.version } : null },
      peerError,
      tfjsGradientsRegisteredByBench: peer?.gradients ?? [],
      options: { ...cli, list: undefined, minRuns: 5, maxRuns: 15, targetMs: opts.targetMs, casesOverBudget: reduced },
      method:
        'kernels: wall-clock from first enqueue to GPU idle (ours: device.sync(); tfjs: submit + queue.onSubmittedWorkDone()); ' +
        'warm-up then interleaved ABBA runs; median and min; rate at the median; speedup = peer/ours; ' +
        'fractionOfFmaCeiling = GFLOP/s / best fma ceiling row. network: upload + forward + host output on every side, ' +
        'ours/ORT interleaved, torch in a child process after; oursOverThis = ours ms / peer ms. ' +
        'trainingStep: optimizeParameters then device.fence() per step, fresh device, medians; oursOverTorch = ours s / torch s',
      fmaCeilingGflops: fmaCeiling,
      matmulBestGflops: ceiling,
      cases: rows,
      network,
      trainingStep: training,
      fusion,
      tiled,
    };
    const dir = join(dirname(fileURLToPath(import.meta.url)), '..', 'results');
    mkdirSync(dir, { recursive: true });
    const json = `${JSON.stringify(report, null, 2)}\n`;
    const file = join(dir, `bench-${timestamp.replace(/:/g, '-')}.json`);
    writeFileSync(file, json);
    writeFileSync(join(dir, 'latest.json'), json);
    console.log(`wrote ${file} and results/latest.json`);
  } finally {
    ours.release();
    peer?.release();
  }
}

main().then(
  () => {
    // Both devices are released; if something native still holds the loop, do not hang a CI job.
    setTimeout(() => {
      console.error('bench: event loop still busy 10 s after finishing; exiting');
      process.exit(0);
    }, 10_000).unref();
  },
  (e: unknown) => {
    console.error(`bench: ${(e as Error).message ?? e}`);
    process.exitCode = 1;
    setTimeout(() => process.exit(1), 2000).unref();
  },
);
