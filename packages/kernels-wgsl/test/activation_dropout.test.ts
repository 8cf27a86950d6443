import type { Device } from '@cg/tensor-core';
import { ArgumentError, ShapeError, sizeOf, Tensor, tidy } from '@cg/tensor-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { expectClose, randomArray } from '../../../test/helpers/compare.js';
import { testDevice } from '../../../test/helpers/device.js';
import {
  leakyReluBackward,
  reluBackward,
  sigmoidBackward,
  tanhBackward,
  unaryBackward,
  unaryBackwardRef,
} from '../src/ops/activation_backward.js';
import { dropout, dropoutBackward, dropoutMaskRef } from '../src/ops/dropout.js';
import { defaultParam, UNARY_GRAD_OPS, UNARY_OPS, type UnaryGradOp } from '../src/ops/elementwise_records.js';
import { unaryRef } from '../src/ops/unary.js';

let device: Device;
beforeAll(async () => {
  device = await testDevice();
});

// Awkward sizes: one element, primes, non-multiples of the workgroup, and > 10^6.
const SHAPES: number[][] = [[1], [7], [2, 3, 5], [3, 1, 13, 17], [4099], [1_000_003]];

interface GradCase {
  /** The parameter p (the record's default when absent). */
  p?: number;
  /** Input range of x (default [-3, 3]). */
  domain?: [number, number];
  /** Keep finite-difference samples this far from a kink of the forward. */
  kinkMargin?: number;
}

/**
 * The backward kernel of every record with a `grad` is checked; only ops
 * that need another domain, a kink margin or a parameter have a row.
 */
const CASES: Partial<Record<UnaryGradOp, GradCase>> = {
  abs: { kinkMargin: 1e-2 },
  sqrt: { domain: [0.25, 4] },
  log: { domain: [0.25, 4] },
  exp: { domain: [-5, 5] },
  relu: { kinkMargin: 1e-2 },
  leakyRelu: { p: 0.2, kinkMargin: 1e-2 },
  tanh: { domain: [-4, 4] },
  sigmoid: { domain: [-8, 8] },
  gelu: { domain: [-8, 8] },
  silu: { domain: [-12, 12] },
  scale: { p: -1.75 },
  addScalar: { p: 0.625 },
};

const savedKind = (op: UnaryGradOp) => UNARY_OPS[op].grad.saved;

/** The tensor op's backward reads: x itself, the f32 forward output y, or nothing. */
function savedFor(op: UnaryGradOp, x: Float32Array, p: number): Float32Array | null {
  const kind = savedKind(op);
  if (kind === 'none') return null;
  return kind === 'x' ? x : Float32Array.from(unaryRef(op, x, p));
}

/** Seeded doubles in [lo, hi) at least `margin` away from 0. */
function awayFromZero(n: number, seed: number, lo: number, hi: number, margin: number): Float64Array {
  const raw = randomArray(n, seed, lo, hi);
  return Float64Array.from(raw, (v) => (Math.abs(v) < margin ? (v < 0 ? -margin : margin) * 2 : v));
}

/**
 * Central difference of L(x) = Σ dy·f(x) along v, against Σ dx·v from the
 * reference backward. Both in float64.
 */
function fdCheck(op: UnaryGradOp, c: Required<GradCase>, n: number, seed: number): void {
  const x = awayFromZero(n, seed, c.domain[0], c.domain[1], c.kinkMargin);
  const dy = Float64Array.from(randomArray(n, seed + 1, -2, 2));
  const v = Float64Array.from(randomArray(n, seed + 2, -1, 1));
  const h = 1e-6;
  const L = (s: number) => {
    const y = unaryRef(
      op,
      x.map((xi, i) => xi + s * v[i]),
      c.p,
    );
    let acc = 0;
    for (let i = 0; i < n; i++) acc += dy[i] * y[i];
    return acc;
  };
  const fd = (L(h) - L(-h)) / (2 * h);
  const kind = savedKind(op);
  const saved = kind === 'none' ? null : kind === 'x' ? x : unaryRef(op, x, c.p);
  const dx = unaryBackwardRef(op, dy, saved, c.p);
  let an = 0;
  let mag = 0;
  for (let i = 0; i < n; i++) {
    an += dx[i] * v[i];
    mag += Math.abs(dx[i] * v[i]);
  }
  expect(Math.abs(fd - an), `${op} n=${n}: fd ${fd} vs analytic ${an}`).toBeLessThanOrEqual(1e-7 * (mag + 1));
}

describe('backward kernels generated from the records', () => {
  for (const op of UNARY_GRAD_OPS) {
    const row = CASES[op] ?? {};
    const c: Required<GradCase> = {
      p: row.p ?? defaultParam(op),
      domain: row.domain ?? [-3, 3],
      kinkMargin: row.kinkMargin ?? 0,
    };
    describe(`${op}Backward`, () => {
      for (const n of [1, 7, 30, 1000]) {
        it(`reference vs central differences n=${n}`, () => fdCheck(op, c, n, 17 + n));
      }
      for (const shape of SHAPES) {
        it(`GPU vs reference ${JSON.stringify(shape)}`, async () => {
          const n = sizeOf(shape);
          const x = randomArray(n, shape.length * 7 + shape[0], c.domain[0], c.domain[1]);
          const dy = randomArray(n, n + 5, -2, 2);
          const saved = savedFor(op, x, c.p);
          const got = await tidy(() =>
            unaryBackward(
              op,
              Tensor.fromArray(device, dy, shape),
              saved && Tensor.fromArray(device, saved, shape),
              c.p,
            ),
          );
          expect(got.shape).toEqual(shape);
          expectClose(await got.toArray(), unaryBackwardRef(op, dy, saved, c.p), {
            rtol: 4e-6,
            atol: 1e-7,
            label: `${op}Backward`,
          });
          got.dispose();
        });
      }
      if (savedKind(op) !== 'none') {
        it('names the op and both shapes on a shape mismatch', () => {
          tidy(() => {
            const dy = Tensor.zeros(device, [2, 3]);
            const s = Tensor.zeros(device, [3, 2]);
            expect(() => unaryBackward(op, dy, s, c.p)).toThrow(ShapeError);
            expect(() => unaryBackward(op, dy, s, c.p)).toThrow(
              new RegExp(`${op}Backward: dy \\[2,3\\] and ${savedKind(op)} \\[3,2\\]`),
            );
          });
        });
      }
    });
  }

  it('every row names an op with a gradient', () => {
    expect(Object.keys(CASES).filter((op) => !(UNARY_GRAD_OPS as string[]).includes(op))).toEqual([]);
  });

  it('known values, including the kinks (gradient 0 / slope at x = 0, as PyTorch)', async () => {
    const x = [-2, -0, 0, 0.5, 3];
    const dy = [10, 20, 30, 40, 50];
    const t = (a: number[]) => Tensor.fromArray(device, a, [a.length]);
    const out = await Promise.all(
      tidy(() => [
        reluBackward(t(dy), t(x)),
        leakyReluBackward(t(dy), t(x)),
        leakyReluBackward(t(dy), t(x), 0.5),
        tanhBackward(t([2, 3]), t([0.5, -1])),
        sigmoidBackward(t([2, 3]), t([0.5, 1])),
        unaryBackward('gelu', t(dy), t(x)),
      ]).map(async (r) => {
        const a = Array.from(await r.toArray());
        r.dispose();
        return a;
      }),
    );
    expect(out[0]).toEqual([0, 0, 0, 40, 50]);
    // The default slope is PyTorch's 0.01.
    expectClose(out[1], [0.1, 0.2, 0.3, 40, 50], { rtol: 1e-6, label: 'leakyRelu default slope' });
    expect(out[2]).toEqual([5, 10, 15, 40, 50]);
    expect(out[3]).toEqual([1.5, 0]);
    expect(out[4]).toEqual([0.5, 0]);
    // gelu'(x) = Φ(x) + x·φ(x), from Python's math.erfc; gelu'(0) = 1/2.
    expectClose(out[5], [10 * -0.0852318010781969, 10, 15, 40 * 0.8674951246561629, 50 * 1.011945647204184], {
      rtol: 1e-6,
      label: 'gelu',
    });
  });
});

describe('dropout', () => {
  const maskValues = async (shape: number[], p: number, seed: number) => {
    const x = Tensor.zeros(device, shape);
    const { y, mask } = dropout(x, p, seed);
    const m = await mask.toArray();
    for (const t of [x, y, mask]) t.dispose();
    return m;
  };

  for (const shape of SHAPES) {
    it(`y = x·mask and the mask matches the CPU hash ${JSON.stringify(shape)}`, async () => {
      const n = sizeOf(shape);
      const x = randomArray(n, n, -3, 3);
      const p = 0.35;
      const seed = 1234 + n;
      const xt = Tensor.fromArray(device, x, shape);
      const { y, mask } = dropout(xt, p, seed);
      expect(y.shape).toEqual(shape);
      expect(mask.shape).toEqual(shape);
      const m = await mask.toArray();
      const yv = await y.toArray();
      const want = dropoutMaskRef(n, p, seed);
      const scale = Math.fround(1 / (1 - p));
      for (let i = 0; i < n; i++) {
        if (m[i] !== want[i]) throw new Error(`mask[${i}] = ${m[i]}, CPU hash says ${want[i]}`);
        if (m[i] !== 0 && m[i] !== scale) throw new Error(`mask[${i}] = ${m[i]} is neither 0 nor ${scale}`);
        if (yv[i] !== Math.fround(x[i] * m[i])) throw new Error(`y[${i}] = ${yv[i]}, want x·mask = ${x[i] * m[i]}`);
      }
      for (const t of [xt, y, mask]) t.dispose();
    });
  }

  it('is deterministic per seed', async () => {
    const a = await maskValues([3, 5, 7, 11], 0.5, 7);
    const b = await maskValues([3, 5, 7, 11], 0.5, 7);
    expect(b).toEqual(a);
  });

  it('different seeds give independent masks (agreement ≈ p² + (1−p)²), all 53 bits of the seed count', async () => {
    const n = 200_003;
    const p = 0.5;
    const seeds = [0, 1, 2, 2 ** 40, 2 ** 40 + 2 ** 32];
    const masks = [];
    for (const s of seeds) masks.push(await maskValues([n], p, s));
    const sigma = Math.sqrt(0.25 / n);
    for (let a = 0; a < seeds.length; a++) {
      for (let b = a + 1; b < seeds.length; b++) {
        let agree = 0;
        for (let i = 0; i < n; i++) if (masks[a][i] === masks[b][i]) agree++;
        expect(Math.abs(agree / n - 0.5), `seeds ${seeds[a]} and ${seeds[b]}`).toBeLessThan(5 * sigma);
      }
    }
  });

  for (const p of [0.1, 0.5, 0.9]) {
    it(`drops a fraction ≈ p = ${p}, without correlation between neighbours or along the tensor`, async () => {
      const n = 1_000_003;
      const m = await maskValues([n], p, 99);
      let dropped = 0;
      let pairs = 0;
      const blocks = 10;
      const perBlock = new Array<number>(blocks).fill(0);
      for (let i = 0; i < n; i++) {
        if (m[i] === 0) {
          dropped++;
          perBlock[Math.floor((i * blocks) / n)]++;
          if (i + 1 < n && m[i + 1] === 0) pairs++;
        }
      }
      // 5 standard deviations of a binomial proportion: a false alarm ~1 in 10^6.
      const tol = (q: number, k: number) => 5 * Math.sqrt((q * (1 - q)) / k);
      expect(Math.abs(dropped / n - p)).toBeLessThan(tol(p, n));
      expect(Math.abs(pairs / (n - 1) - p * p)).toBeLessThan(tol(p * p, n - 1) * 2);
      for (const d of perBlock) expect(Math.abs(d / (n / blocks) - p)).toBeLessThan(tol(p, n / blocks));
    });
  }

  it('p = 0 keeps everything unscaled; p = 1 drops everything (as PyTorch)', async () => {
    const x = randomArray(1001, 3, -1, 1);
    const xt = Tensor.fromArray(device, x, [1001]);
    const keep = dropout(xt, 0, 5);
    const drop = dropout(xt, 1, 5);
    expect(await keep.y.toArray()).toEqual(x);
    expect(Array.from(await keep.mask.toArray()).every((v) => v === 1)).toBe(true);
    expect(Array.from(await drop.y.toArray()).every((v) => v === 0)).toBe(true);
    expect(Array.from(await drop.mask.toArray()).every((v) => v === 0)).toBe(true);
    for (const t of [xt, keep.y, keep.mask, drop.y, drop.mask]) t.dispose();
  });

  it('rejects p outside [0, 1] and non-integer seeds', () => {
    tidy(() => {
      const x = Tensor.zeros(device, [4]);
      for (const p of [-0.1, 1.5, Number.NaN]) expect(() => dropout(x, p, 1)).toThrow(ArgumentError);
      expect(() => dropout(x, 0.5, 1.5)).toThrow(/dropout: seed must be a safe integer/);
    });
  });

  describe('dropoutBackward', () => {
    it('reference (x·mask) vs central differences', () => {
      const n = 500;
      const p = 0.3;
      const mask = dropoutMaskRef(n, p, 3);
      const x = Float64Array.from(randomArray(n, 1, -2, 2));
      const dy = Float64Array.from(randomArray(n, 2, -2, 2));
      const v = Float64Array.from(randomArray(n, 3, -1, 1));
      const h = 1e-6;
      const L = (s: number) => {
        let acc = 0;
        for (let i = 0; i < n; i++) acc += dy[i] * (x[i] + s * v[i]) * mask[i];
        return acc;
      };
      const fd = (L(h) - L(-h)) / (2 * h);
      let an = 0;
      for (let i = 0; i < n; i++) an += dy[i] * mask[i] * v[i];
      expect(Math.abs(fd - an)).toBeLessThan(1e-7 * (Math.abs(an) + 1));
    });

    for (const shape of SHAPES) {
      it(`GPU dx = dy·mask ${JSON.stringify(shape)}`, async () => {
        const n = sizeOf(shape);
        const dy = randomArray(n, n + 11, -2, 2);
        const x = Tensor.fromArray(device, randomArray(n, 4), shape);
        const { y, mask } = dropout(x, 0.2, 77);
        const dyt = Tensor.fromArray(device, dy, shape);
        const dx = dropoutBackward(dyt, mask);
        expect(dx.shape).toEqual(shape);
        const m = dropoutMaskRef(n, 0.2, 77);
        const got = await dx.toArray();
        for (let i = 0; i < n; i++) {
          if (got[i] !== Math.fround(dy[i] * m[i])) throw new Error(`dx[${i}] = ${got[i]}, want ${dy[i] * m[i]}`);
        }
        for (const t of [x, y, mask, dyt, dx]) t.dispose();
      });
    }

    it('checks shapes', () => {
      tidy(() => {
        expect(() => dropoutBackward(Tensor.zeros(device, [2, 3]), Tensor.zeros(device, [6]))).toThrow(
          /dropoutBackward: dy \[2,3\] and mask \[6\] must have the same shape/,
        );
      });
    });
  });
});
