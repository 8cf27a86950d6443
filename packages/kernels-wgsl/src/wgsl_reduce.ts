/**
 * The one map-reduce of every reducing kernel (sum, mean, losses, norms,
 * the image metrics): each invocation Kahan-sums a strided run of the
 * input (`kahanAdd`), then the workgroup combines the runs
 * (`workgroupReduce`). Error grows with log(n), not n.
 *
 * Barrier discipline (a driver bug on Mesa's GL backend punished a slip,
 * scripts/repro/gl-compat-planemoments.mjs): every write to the scratch
 * array is separated from every read of it by a workgroupBarrier(), the
 * result is read before a final barrier so a second call may overwrite the
 * scratch, and every barrier sits in uniform control flow, so call the
 * function from every invocation of the workgroup (mask the result, not
 * the call).
 */

export interface WorkgroupReduceOptions {
  /** Invocations per workgroup (a power of two); `lid` must be the local invocation index. */
  wg: number;
  /** WGSL function name, `fn name(lid: u32, v: type) -> type`. Default `treeSum`. */
  name?: string;
  /** WGSL type of the values. Default `f32`. */
  type?: string;
  /** WGSL expression merging two values (associative). Default `a + b`. */
  merge?: (a: string, b: string) => string;
  /**
   * tree: log2(wg) barrier-separated halving steps, the usual GPU reduction.
   * serial: one barrier, invocation 0 folds the wg values in order, a second
   * barrier publishes them (on lavapipe each barrier in a loop costs a coroutine
   * level: faster to compile, no slower to run; channel_norm.ts).
   */
  how?: 'tree' | 'serial';
}

/**
 * WGSL for `fn name(lid, v)`: every invocation gets the merge of all the
 * workgroup's `v` (and its workgroup scratch array `name_part`).
 */
export function workgroupReduce(o: WorkgroupReduceOptions): string {
  const name = o.name ?? 'treeSum';
  const type = o.type ?? 'f32';
  const merge = o.merge ?? ((a, b) => `${a} + ${b}`);
  const part = `${name}_part`;
  if (!Number.isInteger(Math.log2(o.wg)) || o.wg < 1) {
    throw new RangeError(`workgroupReduce: wg must be a power of two (got ${o.wg})`);
  }
  const fold =
    (o.how ?? 'tree') === 'tree'
      ? `for (var h = ${o.wg / 2}u; h > 0u; h = h >> 1u) {
    if (lid < h) { ${part}[lid] = ${merge(`${part}[lid]`, `${part}[lid + h]`)}; }
    workgroupBarrier();
  }`
      : `if (lid == 0u) {
    var t = ${part}[0];
    for (var j = 1u; j < ${o.wg}u; j++) { t = ${merge('t', `${part}[j]`)}; }
    ${part}[0] = t;
  }
  workgroupBarrier();`;
  return /* wgsl */ `
var<workgroup> ${part}: array<${type}, ${o.wg}>;
fn ${name}(lid: u32, v: ${type}) -> ${type} {
  ${part}[lid] = v;
  workgroupBarrier();
  ${fold}
  let total = ${part}[0];
  workgroupBarrier();
  return total;
}`;
}

/** `workgroupReduce` for an f32 sum: `fn name(lid: u32, v: f32) -> f32`. */
export function workgroupSum(wg: number, name = 'treeSum'): string {
  return workgroupReduce({ wg, name });
}

/**
 * WGSL statement: Kahan-adds `value` to the running sum `s` with
 * compensation `c` (both `var`s). Same operations, in the same order, as the
 * textbook loop: y = v − c; t = s + y; c = (t − s) − y; s = t.
 */
export function kahanAdd(s: string, c: string, value: string): string {
  return `{ let kahan_y = (${value}) - ${c}; let kahan_t = ${s} + kahan_y; ${c} = (kahan_t - ${s}) - kahan_y; ${s} = kahan_t; }`;
}
