/**
 * Index math of the tiled executor, one axis at a time (rows and columns are
 * independent). Pure functions, tested against direct host convolutions
 * (test/tiled/tile_math.test.ts).
 */

/** How a layer fills coordinates outside its input: PyTorch's padding modes. */
export type FillMode = 'zeros' | 'reflect' | 'replicate';

/**
 * The input index that padded coordinate `q` (−pad ≤ q < n + pad) reads, or
 * −1 for a zero. Reflect mirrors without repeating the edge (PyTorch's
 * ReflectionPad2d, which needs pad < n); replicate clamps.
 */
export function sourceIndex(q: number, n: number, mode: FillMode): number {
  if (q >= 0 && q < n) return q;
  if (mode === 'zeros') return -1;
  if (mode === 'replicate') return q < 0 ? 0 : n - 1;
  if (n === 1) return 0;
  // Reflection is periodic with period 2(n − 1); fold once into [0, 2(n − 1)).
  const period = 2 * (n - 1);
  let r = q % period;
  if (r < 0) r += period;
  return r < n ? r : period - r;
}

/** Half-open range [start, end). */
export interface Range {
  start: number;
  end: number;
}

/**
 * Input coordinates (in the unpadded input's frame, possibly outside it) that
 * the outputs [o0, o1) of a stride-s, k-tap convolution with padding p read:
 * output o reads o·s − p … o·s − p + k − 1.
 */
export function convInputRange(o0: number, o1: number, k: number, s: number, p: number): Range {
  return { start: o0 * s - p, end: (o1 - 1) * s - p + k };
}

/**
 * The input rows a transposed convolution's outputs [o0, o1) depend on, and
 * where those outputs sit in the unpadded transposed convolution of that
 * input tile. Output o of convTranspose(stride s, padding p, k taps) receives
 * x[i]·w[t] for o = i·s − p + t, i.e. i from ⌈(o + p − k + 1)/s⌉ to
 * ⌊(o + p)/s⌋. The tile starts at ⌊(o0 + p − k + 1)/s⌋ (one row early when
 * not exact: harmless, its contributions are real ones) and ends late enough
 * that the tile's own output (length (n − 1)·s + k) covers o1 − 1 even when
 * k < s. Rows outside [0, H) are zero-filled by the caller (they are absent
 * from the true input, so they must add nothing).
 *
 * `offset`: tile output index t holds global output o = t − offset, so the
 * wanted outputs are t = o0 + offset … o1 − 1 + offset.
 */
export function convTransposeInputRange(
  o0: number,
  o1: number,
  k: number,
  s: number,
  p: number,
): Range & { offset: number } {
  const start = Math.floor((o0 + p - k + 1) / s);
  let end = Math.floor((o1 - 1 + p) / s) + 1;
  // The tile's output must reach t = o1 − 1 + p − start·s.
  const tMax = o1 - 1 + p - start * s;
  const need = start + 1 + Math.max(0, Math.ceil((tMax + 1 - k) / s));
  if (end < need) end = need;
  return { start, end, offset: p - start * s };
}

/** Cuts [0, n) into `parts` contiguous ranges whose sizes differ by at most one. */
export function splitRange(n: number, parts: number): Range[] {
  const m = Math.max(1, Math.min(parts, n));
  const out: Range[] = [];
  for (let i = 0; i < m; i++) out.push({ start: Math.floor((i * n) / m), end: Math.floor(((i + 1) * n) / m) });
  return out;
}
