import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { F, nn, type Variable, variable } from '@cg/autograd';
import * as K from '@cg/kernels-wgsl';
import { type Device, sizeOf, Tensor } from '@cg/tensor-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectClose, randomArray } from '../helpers/compare.js';
import { testDevice } from '../helpers/device.js';

/**
 * Whole-module gradient checks: the official CycleGAN ResnetBlock and a tiny
 * PatchGAN (NLayerDiscriminator, ndf 4, n_layers 2, instance norm), built
 * from our nn modules, against a float64 CPU forward composed from the
 * kernels' references. With L = Σ module(x)·R:
 *  - forward: GPU vs float64 (rtol 3e-4 of max magnitude: long f32 sums);
 *  - gradient of x and of every parameter vs central differences of the
 *    float64 forward, element by element (within 3e-4 of max(|this
 *    gradient|, |the module's largest gradient|)), and along one random
 *    direction per tensor (|⟨g,v⟩ − FD| ≤ 3e-4 · Σ max(|g_i|, floor)·|v_i|).
 * The layer list below is the single description both sides are built from.
 */

type Arr = Float64Array;

type Layer =
  | { kind: 'pad'; p: number }
  | { kind: 'conv'; key: string; cin: number; cout: number; k: number; stride: number; padding: number }
  | { kind: 'norm' }
  | { kind: 'relu' }
  | { kind: 'leakyRelu'; slope: number };

interface ModuleSpec {
  name: string;
  /** The prefix of the official state_dict keys (`conv_block`, `model`). */
  prefix: string;
  layers: Layer[];
  residual: boolean;
  xShape: number[];
}

/** Official ResnetBlock: [pad 1, conv 3×3, IN, ReLU, pad 1, conv 3×3, IN]; out = x + block(x). */
function resnetBlockSpec(dim: number, xShape: number[]): ModuleSpec {
  return {
    name: `ResnetBlock(${dim})`,
    prefix: 'conv_block',
    residual: true,
    xShape,
    layers: [
      { kind: 'pad', p: 1 },
      { kind: 'conv', key: '1', cin: dim, cout: dim, k: 3, stride: 1, padding: 0 },
      { kind: 'norm' },
      { kind: 'relu' },
      { kind: 'pad', p: 1 },
      { kind: 'conv', key: '5', cin: dim, cout: dim, k: 3, stride: 1, padding: 0 },
      { kind: 'norm' },
    ],
  };
}

/** Official NLayerDiscriminator with instance norm (so every conv has a bias). */
function patchGanSpec(inputNc: number, ndf: number, nLayers: number, xShape: number[]): ModuleSpec {
  const layers: Layer[] = [];
  const conv = (cin: number, cout: number, stride: number) =>
    layers.push({ kind: 'conv', key: String(layers.length), cin, cout, k: 4, stride, padding: 1 });
  conv(inputNc, ndf, 2);
  layers.push({ kind: 'leakyRelu', slope: 0.2 });
  let mult = 1;
  for (let n = 1; n < nLayers; n++) {
    const prev = mult;
    mult = Math.min(2 ** n, 8);
    conv(ndf * prev, ndf * mult, 2);
    layers.push({ kind: 'norm' }, { kind: 'leakyRelu', slope: 0.2 });
  }
  const prev = mult;
  mult = Math.min(2 ** nLayers, 8);
  conv(ndf * prev, ndf * mult, 1);
  layers.push({ kind: 'norm' }, { kind: 'leakyRelu', slope: 0.2 });
  conv(ndf * mult, 1, 1);
  return {
    name: `NLayerDiscriminator(ndf ${ndf}, n_layers ${nLayers})`,
    prefix: 'model',
    residual: false,
    xShape,
    layers,
  };
}

const SPECS: ModuleSpec[] = [resnetBlockSpec(4, [2, 4, 9, 7]), patchGanSpec(3, 4, 2, [2, 3, 19, 17])];

// ---- our module, from the spec ----------------------------------------------------------

class Wrapped extends nn.Module {
  constructor(
    prefix: string,
    readonly inner: nn.Module,
    private readonly residual: boolean,
  ) {
    super();
    this.registerModule(prefix, inner);
  }
  forward(x: Variable): Variable {
    const y = this.inner.forward(x);
    return this.residual ? F.add(x, y) : y;
  }
}

function buildModule(spec: ModuleSpec): nn.Module {
  const layers = spec.layers.map((l): nn.Module => {
    switch (l.kind) {
      case 'pad':
        return new nn.ReflectionPad2d(l.p);
      case 'conv':
        return new nn.Conv2d(l.cin, l.cout, l.k, { stride: l.stride, padding: l.padding, bias: true });
      case 'norm':
        // The official norm layer: InstanceNorm2d(affine=False, track_running_stats=False).
        return new nn.InstanceNorm2d(convChannelsBefore(spec, l), { affine: false });
      case 'relu':
        return new nn.ReLU();
      case 'leakyRelu':
        return new nn.LeakyReLU(l.slope);
      default:
        throw new Error(`unknown layer ${JSON.stringify(l)}`);
    }
  });
  return new Wrapped(spec.prefix, new nn.Sequential(...layers), spec.residual);
}

function convChannelsBefore(spec: ModuleSpec, layer: Layer): number {
  const i = spec.layers.indexOf(layer);
  for (let j = i - 1; j >= 0; j--) {
    const l = spec.layers[j];
    if (l.kind === 'conv') return l.cout;
  }
  return spec.xShape[1];
}

// ---- the float64 forward, from the kernels' references --------------------------------

interface Host {
  data: Arr;
  shape: number[];
}

function forwardRef(spec: ModuleSpec, x: Host, params: Map<string, Host>): Host {
  let h = x;
  for (const l of spec.layers) {
    switch (l.kind) {
      case 'pad':
        h = K.reflectionPad2dRef(h.data, h.shape, [l.p, l.p, l.p, l.p]);
        break;
      case 'conv': {
        const w = params.get(`${spec.prefix}.${l.key}.weight`)!;
        const b = params.get(`${spec.prefix}.${l.key}.bias`)!;
        h = K.conv2dRef(h.data, h.shape, w.data, w.shape, b.data, { stride: l.stride, padding: l.padding });
        break;
      }
      case 'norm': {
        const r = K.instanceNorm2dRef(h.data, h.shape, null, null, 1e-5);
        h = { data: r.data, shape: r.shape };
        break;
      }
      case 'relu':
        h = { data: K.unaryRef('relu', h.data), shape: h.shape };
        break;
      case 'leakyRelu':
        h = { data: K.unaryRef('leakyRelu', h.data, l.slope), shape: h.shape };
        break;
    }
  }
  if (spec.residual) h = { data: Float64Array.from(h.data, (v, i) => v + x.data[i]), shape: h.shape };
  return h;
}

// ---- the checks ---------------------------------------------------------------------------------

const RTOL = 3e-4;
const FD_EPS = 1e-6;
const errors: Record<string, Record<string, number>> = {};

let device: Device;
beforeAll(async () => {
  device = await testDevice();
  nn.setDefaultDevice(device);
});

afterAll(() => {
  const file = resolve(dirname(fileURLToPath(import.meta.url)), '../../test-artifacts/gradcheck-errors.json');
  mkdirSync(dirname(file), { recursive: true });
  let previous: Record<string, unknown> = {};
  try {
    previous = JSON.parse(readFileSync(file, 'utf8'));
  } catch {}
  writeFileSync(file, `${JSON.stringify({ ...previous, modules: errors }, null, 1)}\n`);
});

const maxAbs = (a: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
};

/** max|got − want| / max(max|want|, floor). */
function relErr(got: ArrayLike<number>, want: ArrayLike<number>, floor = 0): number {
  let worst = 0;
  for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]));
  const scale = Math.max(maxAbs(want), floor);
  return scale === 0 ? worst : worst / scale;
}

const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
};

describe('whole-module gradient checks vs float64 finite differences', () => {
  SPECS.forEach((spec, row) => {
    it(spec.name, async () => {
      const module = buildModule(spec);
      // Random parameters (not the tiny official init), so every path carries signal.
      const host = new Map<string, { shape: number[]; data: Float32Array }>();
      let seed = 100 * row + 1;
      for (const [key, p] of module.namedParameters()) {
        const fanIn = sizeOf(p.shape.slice(1)) || 1;
        const a = key.endsWith('bias') ? 0.5 : 1.5 / Math.sqrt(fanIn);
        host.set(key, { shape: [...p.shape], data: randomArray(sizeOf(p.shape), seed++, -a, a) });
      }
      module.loadStateDict(host);
      const params = new Map([...host].map(([k, t]) => [k, { shape: t.shape, data: Float64Array.from(t.data) }]));

      const xf = randomArray(sizeOf(spec.xShape), 100 * row + 99, -1.5, 1.5);
      const x64: Host = { data: Float64Array.from(xf), shape: spec.xShape };
      const x = variable(Tensor.fromArray(device, xf, spec.xShape), { requiresGrad: true });
      try {
        const y = module.forward(x);
        const want = forwardRef(spec, x64, params);
        expect([...y.shape]).toEqual(want.shape);
        const got = await y.toArray();
        (errors[spec.name] ??= {}).forward = relErr(got, want.data);
        expectClose(got, want.data, { rtol: RTOL, atol: 1e-6, label: `${spec.name} forward` });

        const Rf = randomArray(y.size, 100 * row + 77);
        const R = Float64Array.from(Rf);
        const Rv = variable(Tensor.fromArray(device, Rf, y.shape));
        const L = F.sum(F.mul(y, Rv));
        L.backward();
        L.dispose();
        Rv.dispose();

        const lossAt = (xx: Host, pp: Map<string, Host>) => dot(forwardRef(spec, xx, pp).data, R);
        /** Every tensor we differentiate: x and each parameter, as (name, values, grad, loss with values replaced). */
        const targets: [string, Arr, Variable, (vals: Arr) => number][] = [
          ['x', x64.data, x, (vals) => lossAt({ data: vals, shape: spec.xShape }, params)],
        ];
        for (const [key, p] of module.namedParameters()) {
          const base = params.get(key)!;
          targets.push([
            key,
            base.data,
            p,
            (vals) => lossAt(x64, new Map([...params, [key, { data: vals, shape: base.shape }]])),
          ]);
        }

        // All gradients first, for one floor: a gradient that is exactly zero (a conv bias followed by
        // instance norm, which removes any per-channel constant) comes out of f32 arithmetic as rounding
        // residue of the size of the gradients flowing through the module, so every tolerance is relative
        // to at least the largest gradient magnitude in the module.
        const grads: Float32Array[] = [];
        const fds: Arr[] = [];
        for (const [name, vals, v, lossWith] of targets) {
          expect(v.grad, `${spec.name}: no gradient for ${name}`).not.toBeNull();
          grads.push(await v.grad!.toArray());
          // Elementwise central differences.
          const fd = new Float64Array(vals.length);
          const moved = Float64Array.from(vals);
          for (let i = 0; i < vals.length; i++) {
            moved[i] = vals[i] + FD_EPS;
            const lp = lossWith(moved);
            moved[i] = vals[i] - FD_EPS;
            const lm = lossWith(moved);
            moved[i] = vals[i];
            fd[i] = (lp - lm) / (2 * FD_EPS);
          }
          fds.push(fd);
        }
        const floor = Math.max(...fds.map(maxAbs));

        for (const [t, [name, vals, , lossWith]] of targets.entries()) {
          const g = grads[t];
          const fd = fds[t];
          errors[spec.name][`grad.${name}`] = relErr(g, fd, floor);
          expectClose(g, fd, { rtol: RTOL, atol: 1e-6 + RTOL * floor, label: `${spec.name} d${name}` });

          // Along a random direction: the scale is Σ|g_i·v_i|, floored like the elementwise check.
          const dir = Float64Array.from(randomArray(vals.length, 100 * row + 500 + t));
          const fdv =
            (lossWith(Float64Array.from(vals, (a, i) => a + FD_EPS * dir[i])) -
              lossWith(Float64Array.from(vals, (a, i) => a - FD_EPS * dir[i]))) /
            (2 * FD_EPS);
          let scale = 0;
          for (let i = 0; i < vals.length; i++) scale += Math.max(Math.abs(fd[i]), floor) * Math.abs(dir[i]);
          const dirErr = Math.abs(dot(g, dir) - fdv) / scale;
          errors[spec.name][`directional.${name}`] = dirErr;
          expect(
            dirErr,
            `${spec.name} <d${name}, v> = ${dot(g, dir)} vs finite differences ${fdv}`,
          ).toBeLessThanOrEqual(RTOL);
        }
      } finally {
        x.dispose();
        module.dispose();
      }
    });
  });
});
