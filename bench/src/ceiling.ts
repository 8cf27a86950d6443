// The adapter's compute ceiling: a kernel that does nothing but vec4 FMAs, so
// every GFLOP/s row can be read as a fraction of what this adapter can do at all.
//
// Each invocation runs CHAINS independent vec4 accumulators through
// `a = fma(a, m, c)`, unrolled UNROLL times per loop trip. m and c are
// uniforms and the trip count too, so LLVM can neither fold nor shorten the
// recurrence (no fast-math: it may not reassociate), and the final sum is
// stored, so nothing is dead. Independent chains hide the FMA latency; on
// lavapipe one invocation is one SIMD lane, so each vec4 chain costs 4 vector
// registers per SIMD group. One vec4 FMA = 8 FLOP.
import { runKernel } from '@cg/kernels-wgsl';
import { Tensor } from '@cg/tensor-core';
import type { BenchCase } from './cases.js';
import type { Prepared } from './harness.js';

const WORKGROUP = 64;
const GROUPS = 4096;
const UNROLL = 32;
/** FMAs per chain and invocation at 4 chains; fewer chains get proportionally more, so each case does the same work. */
const FMAS_AT_4 = 1536;
const M = 0.9999;
const C = 1e-4;

function wgsl(chains: number): string {
  const names = Array.from({ length: chains }, (_, j) => `a${j}`);
  const init = names.map((a, j) => `  var ${a} = s + vec4f(${(0.1 * j).toFixed(1)});`).join('\n');
  const body = Array.from({ length: UNROLL }, () => names.map((a) => `    ${a} = fma(${a}, m, c);`).join('\n')).join(
    '\n',
  );
  return `
@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let i = gid.x;
  let s = vec4f(f32(i % 64u) * 0.001) + vec4f(0.0, 0.01, 0.02, 0.03);
  let m = vec4f(u.m);
  let c = vec4f(u.c);
${init}
  for (var k = 0u; k < u.trips; k++) {
${body}
  }
  out[i] = ${names.join(' + ')};
}`;
}

/** What invocation i must have written: the same recurrence on the CPU in f32 (two roundings per step vs fma's one). */
function expected(i: number, chains: number, steps: number): number[] {
  const out = [0, 0, 0, 0];
  const m = Math.fround(M);
  const c = Math.fround(C);
  for (let j = 0; j < chains; j++) {
    for (let l = 0; l < 4; l++) {
      let a = Math.fround(Math.fround((i % 64) * 0.001) + Math.fround(0.01 * l) + Math.fround(0.1 * j));
      for (let k = 0; k < steps; k++) a = Math.fround(Math.fround(a * m) + c);
      out[l] += a;
    }
  }
  return out;
}

function ceilingCase(chains: number): BenchCase {
  const trips = (FMAS_AT_4 * 4) / chains / UNROLL;
  const n = WORKGROUP * GROUPS;
  const fmas = n * chains * trips * UNROLL;
  return {
    id: `fma ceiling ${chains}×vec4 chains`,
    group: 'ceiling',
    pass: 'forward',
    shapes: `${GROUPS} workgroups × ${WORKGROUP} invocations, ${chains} vec4 chains × ${trips} trips × ${UNROLL} unrolled fma; 8 FLOP per vec4 fma`,
    flops: 8 * fmas,
    async ours(o): Promise<Prepared> {
      const out = Tensor.empty(o.device, [n * 4]);
      const step = () => {
        runKernel({
          op: 'fmaCeiling',
          key: `c${chains}u${UNROLL}`,
          decl: {
            inputs: [],
            outputs: [{ name: 'out', type: 'vec4f' }],
            uniforms: { m: 'f32', c: 'f32', trips: 'u32' },
          },
          wgsl: () => wgsl(chains),
          inputs: [],
          outputs: [out],
          uniforms: { m: M, c: C, trips },
          workgroups: [GROUPS],
        });
        // The output is reused: nothing to free, and allocation is not what this row times.
        return { free: () => {} };
      };
      // One untimed pass, read back and checked, so the row proves the FMAs were really done.
      step();
      await o.sync();
      await verify(out, chains, trips * UNROLL);
      return { note: 'output verified against a CPU recurrence before timing', step, dispose: () => out.dispose() };
    },
  };
}

async function verify(out: Tensor, chains: number, steps: number): Promise<void> {
  const got = await out.toArray();
  for (const i of [0, 1, 63, 64, 12345, out.size / 4 - 1]) {
    const want = expected(i, chains, steps);
    for (let l = 0; l < 4; l++) {
      const g = got[4 * i + l];
      if (!(Math.abs(g - want[l]) <= 1e-3 * Math.abs(want[l]))) {
        throw new Error(`fmaCeiling: invocation ${i} lane ${l} wrote ${g}, expected ${want[l]}`);
      }
    }
  }
}

/**
 * The ceiling cases, 2 to 4 chains; the best of them is the ceiling. On lavapipe here (2026-12-01) 2 chains
 * win by 2× (~75–80 GFLOP/s, vs ~40 for 3 and 4: more chains cost registers, LLVM spills); 1 chain is
 * latency-bound (~43).
 */
export function ceilingCases(): BenchCase[] {
  return [ceilingCase(2), ceilingCase(3), ceilingCase(4)];
}
