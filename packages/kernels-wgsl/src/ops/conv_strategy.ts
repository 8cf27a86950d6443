import { ArgumentError, type Device } from '@cg/tensor-core';

/**
 * How the convolution family and matmul tile their GEMMs, chosen per adapter.
 *
 * - `register`: no workgroup memory, no barriers. A workgroup owns a fixed
 *   block of output rows (output channels); each invocation keeps a large
 *   register block of outputs (16×8 for the gather convolution, 32×16 for
 *   matmul) and reads every operand as few times as possible. Measured on
 *   lavapipe (2-core AVX-512 host): each loaded element costs ~1 ns per
 *   invocation (~10 FMAs), uniform address or not, while FMAs and spilled
 *   sums are cheap, so reuse per load is everything; barriers cost a
 *   coroutine switch per invocation group. Where the device has subgroups
 *   (useSubgroups), operands that every lane of a workgroup needs (weights,
 *   the weight gradient's dy values) are loaded once per 8 lanes and shared
 *   by subgroupBroadcast. docs/ARCHITECTURE.md §4.
 * - `workgroup-tiled`: classic 64×64 output tiles staged through workgroup
 *   memory in K-slices of 16, 16×16 invocations with 4×4 outputs each. What
 *   real GPUs reward; ~3 GFLOP/s on lavapipe, 3–5× slower than `register`.
 *
 * Precedence: an op's `strategy` option, then `setConvStrategy()`, then the
 * `CG_CONV_STRATEGY` environment variable (Node only), then the adapter.
 */
export type ConvStrategy = 'register' | 'workgroup-tiled';

export const CONV_STRATEGIES: readonly ConvStrategy[] = ['register', 'workgroup-tiled'];

let override: ConvStrategy | null = null;

/** Forces one strategy for every later call (`'auto'` restores the per-adapter choice). */
export function setConvStrategy(strategy: ConvStrategy | 'auto'): void {
  override = strategy === 'auto' ? null : checkStrategy(strategy, 'setConvStrategy');
}

function checkStrategy(s: string, where: string): ConvStrategy {
  if (!(CONV_STRATEGIES as readonly string[]).includes(s)) {
    throw new ArgumentError(`${where}: unknown conv strategy "${s}" (expected ${CONV_STRATEGIES.join(' | ')} or auto)`);
  }
  return s as ConvStrategy;
}

function envStrategy(): ConvStrategy | null {
  const v = env()?.CG_CONV_STRATEGY;
  if (!v || v === 'auto') return null;
  return checkStrategy(v, 'CG_CONV_STRATEGY');
}

/** The strategy an op on `device` uses, honouring the explicit choice `requested` first. */
export function convStrategy(device: Device, requested?: ConvStrategy): ConvStrategy {
  if (requested) return checkStrategy(requested, 'conv strategy option');
  return override ?? envStrategy() ?? (device.adapter.isSoftware ? 'register' : 'workgroup-tiled');
}

/**
 * Form of the register gather convolution's inner block:
 * - `named`: the row segment and weights in named WGSL values (one load site
 *   each), weights read as vec4 or shared by subgroupBroadcast; 16×8 tiles.
 *   With subgroups, 2–5× faster on lavapipe than `compact` (commit 1764c81).
 * - `compact`: the row segment and weights loaded by small loops into private
 *   arrays, no subgroups; the form before 2026-12 (16×16 tiles, 4×32 for
 *   few channels), which SwiftShader compiles in a fraction of a second.
 */
export type RegisterForm = 'named' | 'compact';

export const REGISTER_FORMS: readonly RegisterForm[] = ['named', 'compact'];

/**
 * Switches for experiments, benches and tests (mutable, like dispatchBudget):
 * `subgroups: false` keeps the register kernels off their subgroup variant
 * even where the device has the feature (`CG_CONV_SUBGROUPS=0` does the same);
 * `registerForm` forces a form of the gather kernel (`CG_CONV_REGISTER=named|compact`
 * does the same; `null` is the per-adapter choice, registerForm()).
 */
export const convTuning: { subgroups: boolean; registerForm: RegisterForm | null } = {
  subgroups: true,
  registerForm: null,
};

function env(): Record<string, string | undefined> | undefined {
  // Read without importing node:process so this module stays browser-safe.
  return (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
}

/**
 * The register gather kernel's form on `device`: `compact` on SwiftShader,
 * `named` everywhere else. SwiftShader's compiler stalls on the named form
 * for some shapes. Measured in Chromium 156, 2026-12 (SwiftShader WebGPU,
 * createComputePipelineAsync one at a time, 2 loaded cores): for a resnet
 * ngf-2 generator at 32², the named 3×3 s2 2→4 conv (4×16 tile, 33 named row
 * values) ran over 150 s without finishing and the GPU process dropped the
 * instance, which timed out the web app's first translation (its other 12
 * named conv pipelines took 0.05–0.3 s: the trigger is that shape); the compact
 * form compiles each of its 13 conv pipelines in 0.07–0.9 s (3.3 s for all
 * 26 with weight packing). For ngf 16 at 64² the named form took 0.2–0.5 s
 * per conv pipeline (3.9 s in all), the compact one 0.3–0.7 s (6.8 s). The
 * browser suite's compile-ahead (28 pipelines) then takes 1.7–2.9 s.
 */
export function registerForm(device: Device): RegisterForm {
  if (convTuning.registerForm) return checkForm(convTuning.registerForm, 'convTuning.registerForm');
  const v = env()?.CG_CONV_REGISTER;
  if (v && v !== 'auto') return checkForm(v, 'CG_CONV_REGISTER');
  const a = device.adapter;
  return /swiftshader/i.test(`${a.vendor} ${a.architecture} ${a.description}`) ? 'compact' : 'named';
}

function checkForm(f: string, where: string): RegisterForm {
  if (!(REGISTER_FORMS as readonly string[]).includes(f)) {
    throw new ArgumentError(`${where}: unknown register form "${f}" (expected ${REGISTER_FORMS.join(' | ')} or auto)`);
  }
  return f as RegisterForm;
}

/**
 * Whether the register gather convolution may share weight loads through
 * subgroupBroadcast: the device must have been created with the `subgroups`
 * feature, and subgroups must hold at least 8 invocations (the kernel spreads
 * each weight block over lanes 0..7). On lavapipe (subgroups of 8) one lane
 * load plus 8 broadcasts costs about a sixth of 8 lane loads, and an
 * invocation's weight loads are the same in every lane of a workgroup.
 */
export function useSubgroups(device: Device): boolean {
  if (!convTuning.subgroups) return false;
  if (env()?.CG_CONV_SUBGROUPS === '0') return false;
  const gpu = device.gpu as GPUDevice & { adapterInfo?: { subgroupMinSize?: number } };
  return gpu.features.has('subgroups') && (gpu.adapterInfo?.subgroupMinSize ?? 0) >= 8;
}

/** Register tile of the gather convolution: TM output channels × TN output pixels per invocation. */
export interface RegisterTile {
  tm: number;
  tn: number;
}

/**
 * TM is 16 (8 for 7-wide kernels, 4 for few channels, e.g. a 64→3 head,
 * which spends its registers on 16 pixels instead); TN is 8, or the largest
 * power of two ≤ the row length (at least 4), so nearby image sizes share a
 * pipeline. Measured on a loaded lavapipe (3×3 256→256 at 32², subgroup
 * weights, interleaved): 16×16 was 5–25 % faster than 16×8 but compiled ~4×
 * longer (10+ s per pipeline: every row value is a load site); 8×8 was
 * 5–15 % slower.
 */
export function registerTile(
  outChannels: number,
  taps: number,
  rowLength: number,
  form: RegisterForm = 'named',
): RegisterTile {
  if (form === 'compact') return compactTile(outChannels, taps, rowLength);
  const tm = outChannels >= 16 && taps < 7 ? 16 : outChannels > 4 ? 8 : 4;
  const tn = Math.min(tm === 4 ? 16 : 8, Math.max(4, 2 ** Math.floor(Math.log2(Math.max(1, rowLength)))));
  return { tm, tn };
}

/**
 * The `compact` form's tiles (as before 2026-12): 16×16 (TM 8 for 7-wide
 * kernels, 4×32 for few channels); TN a power of two ≤ the row length.
 */
function compactTile(outChannels: number, taps: number, rowLength: number): RegisterTile {
  let tm = outChannels >= 16 && taps < 7 ? 16 : outChannels > 4 ? 8 : 4;
  const tn = Math.min(tm === 4 ? 32 : 16, Math.max(4, 2 ** Math.floor(Math.log2(Math.max(1, rowLength)))));
  if (tn <= 4 && outChannels >= 16) tm = 16;
  return { tm, tn };
}

/**
 * Register tile of the weight-gradient reduction: an invocation owns CI input
 * channels and KHB kernel rows and accumulates TM output channels × CI·KHB
 * rows × kW taps, stepping R output pixels at a time, so each gradient value
 * it loads feeds CI·KHB·kW FMAs and each activation value up to TM·kW.
 */
export interface WeightGradTile {
  tm: number;
  r: number;
  khb: number;
  ci: number;
}

/**
 * The plain (no subgroups) variant's tile; the subgroup variant narrows it (conv2d.ts,
 * registerWeightGradTile). Measured on lavapipe: 8–12 GFLOP/s for 3×3, 4×4 s2 and 7×7 shapes
 * (16,8,3,2 / 16,4,4,2 / 16,4,4,1).
 */
export function weightGradTile(
  outChannels: number,
  inChannels: number,
  kH: number,
  kW: number,
  outW: number,
): WeightGradTile {
  const tm = outChannels >= 16 ? 16 : outChannels >= 8 ? 8 : Math.max(1, outChannels);
  const r = kW >= 4 || outW < 8 ? 4 : 8;
  const khb = kH <= 4 ? kH : Math.ceil(kH / 2);
  const ci = inChannels >= 64 && kH <= 4 ? 2 : 1;
  return { tm, r, khb, ci };
}

/** Tile of the workgroup-memory GEMM: per workgroup BM × BN outputs, K staged in BK slices, 4×4 outputs per invocation. */
export interface TiledTile {
  bm: number;
  bn: number;
  bk: number;
  wgx: number;
  wgy: number;
}

/** K slice of every tiled GEMM (split-K chunks are multiples of it). */
export const TILED_BK = 16;

/**
 * 64×64 tiles; few output rows (a 64→3 head, a 1-channel critic) get a
 * flatter tile instead of leaving most of a 64-row tile idle.
 */
export function tiledTile(M: number): TiledTile {
  if (M <= 4) return { bm: 4, bn: 256, bk: TILED_BK, wgx: 64, wgy: 1 };
  if (M <= 16) return { bm: 16, bn: 128, bk: TILED_BK, wgx: 32, wgy: 4 };
  return { bm: 64, bn: 64, bk: TILED_BK, wgx: 16, wgy: 16 };
}

/**
 * Work budget per dispatch: a single dispatch must not run for more than
 * ~2 s on a slow adapter (some drivers reset the device). At the ~2 GFLOP/s
 * floor measured on lavapipe, 1.5 GFLOP keeps us near 0.75 s; larger jobs
 * are cut into several dispatches. Mutable so tests can force the cut.
 */
export const dispatchBudget = { maxFlops: 1.5e9 };
