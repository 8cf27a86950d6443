// `pnpm bench [--filter a,b] [--runs N] [--warmup N] [--no-peer] [--no-check] [--quick]`
//
// Runs every case on our kernels and on tfjs-backend-webgpu (same adapter,
// same process), prints a table and writes bench/results/bench-<time>.json
// and bench/results/latest.json.
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { allCases, type BenchCase } from './cases.js';
import { measurePair, type PairOptions, type PairResult, type SideResult } from './harness.js';
import { loadOurs, type Ours } from './ours.js';
import { loadTfjs, type TfjsPeer } from './peer_tfjs.js';

interface Cli {
  filters: string[];
  budgetS: number;
  modelSize: number;
  runs: number | null;
  warmup: number;
  peer: boolean;
  check: boolean;
  quick: boolean;
}

const USAGE = `usage: pnpm bench [options]
  --filter a,b   only cases whose name contains one of these (case-insensitive)
  --runs N       timed runs per side (default: adaptive, 5..15 depending on case speed)
  --warmup N     warm-up runs per side (default 1; fast cases get one more)
  --model-size N input size of the whole-generator cases (default 64; 256 is the real one, ~99 GFLOP forward)
  --budget S     past S seconds (default 300), slow cases after it get 3 runs instead of 5, so a loaded machine still finishes
  --no-peer      ours only (tfjs is not loaded)
  --no-check     skip the ours-vs-tfjs result comparison
  --quick        3 timed runs, no extra warm-up, no whole-generator cases (a smoke run; numbers are rough)
  --list         print the case names and exit`;

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
  return { ...cli, quick, list };
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
  fractionOfCeiling: number | null;
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
  ['%ceil', 5, 'right'],
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
    r.fractionOfCeiling === null ? '' : `${(100 * r.fractionOfCeiling).toFixed(0)}%`,
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

// ---- main ------------------------------------------------------------------------

async function main(): Promise<void> {
  const cli = parseArgs(process.argv.slice(2));
  let cases = allCases(cli.modelSize);
  if (cli.quick) cases = cases.filter((c) => !c.heavy);
  if (cli.filters.length) {
    cases = cases.filter((c) => cli.filters.some((f) => `${c.group} ${c.id}`.toLowerCase().includes(f)));
  }
  if (cli.list) {
    for (const c of cases) console.log(`${c.id}  [${c.group}/${c.pass}]  ${c.shapes}`);
    return;
  }
  if (!cases.length) throw new Error(`no case matches --filter ${cli.filters.join(',')} (see --list)`);

  const started = Date.now();
  const loadBefore = loadavg();
  const ours: Ours = await loadOurs();
  let peer: TfjsPeer | null = null;
  let peerError: string | null = null;
  if (cli.peer) {
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
          : (peerError ?? 'off (--no-peer)')
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
    console.log(line(COLS.map((c) => c[0])));
    const rows: Row[] = [];
    let ceiling: number | null = null;
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
        fractionOfCeiling: c.flops && c.group !== 'matmul' && oursRate !== null && ceiling ? oursRate / ceiling : null,
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

    const seconds = (Date.now() - started) / 1000;
    if (reduced) console.log(`${reduced} cases ran after the --budget of ${cli.budgetS} s (slow ones 3 times only)`);
    const skipped = rows.filter((r) => r.ours.status === 'skipped').length;
    console.log(
      `\n${rows.length} cases in ${seconds.toFixed(0)} s${skipped ? `; ${skipped} skipped on our side (kernel not implemented yet)` : ''}` +
        `; matmul ceiling ${ceiling === null ? 'not measured' : `${ceiling.toFixed(2)} GFLOP/s`}`,
    );

    const timestamp = new Date(started).toISOString();
    const report = {
      schema: 1,
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
        'wall-clock from first enqueue to GPU idle (ours: device.sync(); tfjs: submit + queue.onSubmittedWorkDone()); ' +
        'warm-up then interleaved ABBA runs; median and min; rate at the median; speedup = peer/ours',
      matmulCeilingGflops: ceiling,
      cases: rows,
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
