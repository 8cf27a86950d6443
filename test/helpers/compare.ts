import { expect } from 'vitest';

/** Seeded uniform values in [lo, hi) (mulberry32), so failures reproduce. */
export function randomArray(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  let a = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = lo + (hi - lo) * (((t ^ (t >>> 14)) >>> 0) / 4294967296);
  }
  return out;
}

/**
 * Max error relative to the reference's magnitude: |got - want| / (atol + rtol·max|want|).
 * Passes when every element is within the f32 tolerance of its reference.
 */
export function expectClose(
  got: ArrayLike<number>,
  want: ArrayLike<number>,
  { rtol = 1e-4, atol = 1e-5, label = '' }: { rtol?: number; atol?: number; label?: string } = {},
): number {
  expect(got.length, `${label} length`).toBe(want.length);
  let scale = 0;
  for (let i = 0; i < want.length; i++) scale = Math.max(scale, Math.abs(want[i]));
  let worst = 0;
  let worstAt = -1;
  for (let i = 0; i < want.length; i++) {
    const g = got[i];
    const err = Math.abs(g - want[i]);
    if (!Number.isFinite(g) && Number.isFinite(want[i])) {
      throw new Error(`${label}: element ${i} is ${g}, want ${want[i]}`);
    }
    const tol = atol + rtol * Math.max(scale, Math.abs(want[i]));
    if (err / tol > worst) {
      worst = err / tol;
      worstAt = i;
    }
  }
  if (worst > 1) {
    throw new Error(
      `${label}: element ${worstAt} is ${got[worstAt]}, want ${want[worstAt]} (error ${worst.toFixed(2)}× tolerance rtol=${rtol} atol=${atol})`,
    );
  }
  return worst;
}

/** Reads a tensor back and disposes it: the last use of a kernel's output in a test. */
export async function readAndDispose(t: { toArray(): Promise<Float32Array>; dispose(): void }): Promise<Float32Array> {
  const a = await t.toArray();
  t.dispose();
  return a;
}

/** Σ a[i]·b[i] in float64. */
export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/**
 * Checks a float64 reference backward against central differences along one
 * seeded random direction v per parameter (JAX's check_grads idea): for
 * L(p) = <f(p), r>, (L(p + εv) − L(p − εv)) / 2ε must equal Σ <∇L, v>, where
 * `grads` is the reference backward with dy = r.
 */
export function checkDirectional(
  f: (params: Float64Array[]) => Float64Array,
  params: Float64Array[],
  r: Float64Array,
  grads: Float64Array[],
  seed: number,
): void {
  const eps = 1e-6;
  const vs = params.map((p, i) => Float64Array.from(randomArray(p.length, seed + 101 * i)));
  const at = (sign: number) => params.map((p, i) => p.map((x, j) => x + sign * eps * vs[i][j]));
  const numeric = (dot(f(at(1)), r) - dot(f(at(-1)), r)) / (2 * eps);
  const analytic = grads.reduce((s, g, i) => s + dot(g, vs[i]), 0);
  const scale = grads.reduce((s, g) => s + g.reduce((a, b) => a + Math.abs(b), 0), 0);
  expect(Math.abs(numeric - analytic), `numeric ${numeric} vs analytic ${analytic}`).toBeLessThanOrEqual(
    1e-6 * scale + 1e-9,
  );
}
