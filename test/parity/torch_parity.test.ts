import { readdirSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Adam, F, nn, type Variable, variable } from '@cg/autograd';
import { Rng, Tensor } from '@cg/tensor-core';
import { describe, expect, it } from 'vitest';
import { expectClose } from '../helpers/compare.js';
import { useNnDevice, writeArtifactAfterAll } from '../helpers/suite.js';

/**
 * PyTorch parity: every fixture in test/fixtures/torch (written by
 * test/fixtures/make_torch_fixtures.py) holds a module's constructor, its
 * state_dict, inputs, the output, and the gradients of L = Σ output·R with
 * respect to the input and every parameter, computed by PyTorch in float64
 * from float32 inputs. We load the same state into our module, run forward
 * and backward in f32 on the GPU and compare.
 *
 * Tolerance, relative to the largest magnitude of the expected tensor
 * (expectClose): 1e-4 for elementwise ops, pads, norms and losses; 3e-4
 * where an output element is a long f32 sum (convolutions, the ResNet block
 * and the PatchGAN). Adam: parameters within 2e-6 of max|p| after every
 * step (a step moves them by ~lr = 2e-4, so a wrong update shows), and the
 * total movement p_t − p_0 within 2% of its size.
 *
 * Max relative errors per case go to test-artifacts/parity-errors.json.
 */

interface HostJson {
  shape: number[];
  data: number[];
}

interface ModuleFixture {
  name: string;
  kind: 'module' | 'loss';
  module: { class: string; args: unknown[]; kwargs: Record<string, unknown> };
  train: boolean;
  stateDict: Record<string, HostJson>;
  inputs: HostJson[];
  targetConstant?: number;
  output: HostJson;
  R: HostJson;
  grads: { input: HostJson; params: Record<string, HostJson> };
  stateDictAfter?: Record<string, HostJson>;
}

interface AdamFixture {
  name: string;
  kind: 'adam';
  options: { lr: number; betas: [number, number]; eps: number; weight_decay: number };
  params0: Record<string, HostJson>;
  steps: { grads: Record<string, HostJson>; params: Record<string, HostJson> }[];
}

type Fixture = ModuleFixture | AdamFixture;

const here = dirname(fileURLToPath(import.meta.url));
const FIXTURES = resolve(here, '../fixtures/torch');
const ARTIFACT = resolve(here, '../../test-artifacts/parity-errors.json');

const fixtures: Fixture[] = readdirSync(FIXTURES)
  .filter((f) => f.endsWith('.json') && f !== 'manifest.json')
  .sort()
  .map((f) => JSON.parse(readFileSync(resolve(FIXTURES, f), 'utf8')) as Fixture);

const errors: Record<string, Record<string, number>> = {};

const getDevice = useNnDevice();
writeArtifactAfterAll(ARTIFACT, () => errors);

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

/**
 * Compares within rtol of max|want|. `floor` is the magnitude of the
 * quantities the result is computed from: a gradient that is exactly zero
 * (a conv bias followed by instance norm, which removes any per-channel
 * constant) comes out of f32 arithmetic as rounding residue of that size.
 */
function compare(
  caseName: string,
  what: string,
  got: ArrayLike<number>,
  want: ArrayLike<number>,
  rtol: number,
  floor = 0,
) {
  errors[caseName] ??= {};
  errors[caseName][what] = relErr(got, want, floor);
  expectClose(got, want, { rtol, atol: 1e-6 + rtol * floor, label: `${caseName} ${what}` });
}

const f32 = (t: HostJson) => Float32Array.from(t.data);
const toTensor = (t: HostJson) => Tensor.fromArray(getDevice(), f32(t), t.shape);
const hostMap = (sd: Record<string, HostJson>) =>
  new Map(Object.entries(sd).map(([k, t]) => [k, { shape: t.shape, data: f32(t) }]));

// ---- building our module from the PyTorch class and arguments ------------------------------

interface Built {
  module: nn.Module;
  forward: (x: Variable) => Variable;
}

const LONG_SUMS = new Set(['Conv2d', 'ConvTranspose2d', 'ResnetBlock', 'NLayerDiscriminator']);

function build(fx: ModuleFixture): Built {
  const { class: cls, args, kwargs } = fx.module;
  const a = args as number[];
  const plain = (module: nn.Module): Built => ({ module, forward: (x) => module.forward(x) });
  switch (cls) {
    case 'Conv2d':
      return plain(
        new nn.Conv2d(a[0], a[1], a[2], {
          stride: kwargs.stride as number,
          padding: kwargs.padding as number,
          bias: kwargs.bias as boolean,
        }),
      );
    case 'ConvTranspose2d':
      return plain(
        new nn.ConvTranspose2d(a[0], a[1], a[2], {
          stride: kwargs.stride as number,
          padding: kwargs.padding as number,
          outputPadding: kwargs.output_padding as number,
          bias: kwargs.bias as boolean,
        }),
      );
    case 'InstanceNorm2d':
      return plain(new nn.InstanceNorm2d(a[0], { affine: kwargs.affine as boolean }));
    case 'BatchNorm2d':
      return plain(new nn.BatchNorm2d(a[0]));
    case 'ReflectionPad2d':
      return plain(new nn.ReflectionPad2d(args[0] as number | [number, number, number, number]));
    case 'LeakyReLU':
      return plain(new nn.LeakyReLU(a[0]));
    case 'Tanh':
      return plain(new nn.Tanh());
    case 'ReLU':
      return plain(new nn.ReLU());
    case 'Sigmoid':
      return plain(new nn.Sigmoid());
    case 'Upsample':
      // Our Upsample is PyTorch's with align_corners=False (the only bilinear the fixtures use).
      expect(kwargs.align_corners ?? false).toBe(false);
      return plain(new nn.Upsample(kwargs.scale_factor as number, kwargs.mode as 'nearest' | 'bilinear'));
    case 'ResnetBlock':
      return resnetBlock(a[0]);
    case 'NLayerDiscriminator':
      return nLayerDiscriminator(a[0], kwargs.ndf as number, kwargs.n_layers as number);
    default:
      throw new Error(`parity: no builder for PyTorch class ${cls} (fixture ${fx.name})`);
  }
}

/** A container with one named child, so the state_dict keys get the official prefix. */
class Named extends nn.Module {
  constructor(
    name: string,
    readonly inner: nn.Module,
    private readonly residual = false,
  ) {
    super();
    this.registerModule(name, inner);
  }
  forward(x: Variable): Variable {
    const y = this.inner.forward(x);
    return this.residual ? F.add(x, y) : y;
  }
}

/** The official ResnetBlock: conv_block = [pad, conv, norm, relu, pad, conv, norm]; out = x + conv_block(x). */
function resnetBlock(dim: number): Built {
  const block = new nn.Sequential(
    new nn.ReflectionPad2d(1),
    new nn.Conv2d(dim, dim, 3, { padding: 0, bias: true }),
    new nn.InstanceNorm2d(dim, { affine: false }),
    new nn.ReLU(),
    new nn.ReflectionPad2d(1),
    new nn.Conv2d(dim, dim, 3, { padding: 0, bias: true }),
    new nn.InstanceNorm2d(dim, { affine: false }),
  );
  const module = new Named('conv_block', block, true);
  return { module, forward: (x) => module.forward(x) };
}

/** The official NLayerDiscriminator with instance norm (so every conv has a bias). */
function nLayerDiscriminator(inputNc: number, ndf: number, nLayers: number): Built {
  const layers: nn.Module[] = [
    new nn.Conv2d(inputNc, ndf, 4, { stride: 2, padding: 1, bias: true }),
    new nn.LeakyReLU(0.2),
  ];
  let mult = 1;
  for (let n = 1; n < nLayers; n++) {
    const prev = mult;
    mult = Math.min(2 ** n, 8);
    layers.push(
      new nn.Conv2d(ndf * prev, ndf * mult, 4, { stride: 2, padding: 1, bias: true }),
      new nn.InstanceNorm2d(ndf * mult, { affine: false }),
      new nn.LeakyReLU(0.2),
    );
  }
  const prev = mult;
  mult = Math.min(2 ** nLayers, 8);
  layers.push(
    new nn.Conv2d(ndf * prev, ndf * mult, 4, { stride: 1, padding: 1, bias: true }),
    new nn.InstanceNorm2d(ndf * mult, { affine: false }),
    new nn.LeakyReLU(0.2),
    new nn.Conv2d(ndf * mult, 1, 4, { stride: 1, padding: 1, bias: true }),
  );
  const module = new Named('model', new nn.Sequential(...layers));
  return { module, forward: (x) => module.forward(x) };
}

function lossFn(fx: ModuleFixture): (x: Variable, t: Variable | number) => Variable {
  switch (fx.module.class) {
    case 'MSELoss':
      return F.mseLoss;
    case 'L1Loss':
      return F.l1Loss;
    case 'BCEWithLogitsLoss':
      return F.bceWithLogitsLoss;
    default:
      throw new Error(`parity: no loss for PyTorch class ${fx.module.class} (fixture ${fx.name})`);
  }
}

// ---- the tests ---------------------------------------------------------------------------

/**
 * The same two networks from @cg/cyclegan itself (imported lazily, so a
 * problem there fails only these cases): checks their structure and
 * state_dict keys against the official code's, not just our nn building blocks.
 */
async function buildFromCyclegan(fx: ModuleFixture): Promise<Built> {
  const cg = await import('@cg/cyclegan');
  const ctx = { device: getDevice(), rng: new Rng(0) };
  const a = fx.module.args as number[];
  const kw = fx.module.kwargs;
  const module =
    fx.module.class === 'ResnetBlock'
      ? new cg.ResnetBlock(a[0], 'instance', false, ctx)
      : new cg.NLayerDiscriminator(
          { input_nc: a[0], ndf: kw.ndf as number, n_layers: kw.n_layers as number, norm: 'instance' },
          ctx,
        );
  return { module, forward: (x) => module.forward(x) };
}

const FROM_CYCLEGAN = new Set(['ResnetBlock', 'NLayerDiscriminator']);

async function runModuleCase(fx: ModuleFixture, label = fx.name, builder?: () => Promise<Built>): Promise<void> {
  const rtol = LONG_SUMS.has(fx.module.class) ? 3e-4 : 1e-4;
  const x = variable(toTensor(fx.inputs[0]), { requiresGrad: true });
  const R = variable(toTensor(fx.R));
  let built: Built | null = null;
  try {
    let y: Variable;
    if (fx.kind === 'loss') {
      // Both spellings of a GAN label: a full tensor, and a number broadcast by the kernel.
      const target = fx.targetConstant ?? variable(toTensor(fx.inputs[1]));
      y = lossFn(fx)(x, target);
      if (typeof target !== 'number') target.dispose();
    } else {
      built = builder ? await builder() : build(fx);
      // strict: the same keys as PyTorch's state_dict, in any order.
      built.module.loadStateDict(hostMap(fx.stateDict));
      built.module.train(fx.train);
      y = built.forward(x);
    }
    expect([...y.shape]).toEqual(fx.output.shape);
    compare(label, 'output', await y.toArray(), fx.output.data, rtol);

    const L = F.sum(F.mul(y, R));
    L.backward();
    L.dispose();
    expect(x.grad, `${label}: no input gradient`).not.toBeNull();
    const gradScale = Math.max(
      maxAbs(fx.grads.input.data),
      ...Object.values(fx.grads.params).map((g) => maxAbs(g.data)),
    );
    compare(label, 'grad.input', await x.grad!.toArray(), fx.grads.input.data, rtol, gradScale);

    if (built) {
      const params = new Map(built.module.namedParameters());
      expect([...params.keys()].sort()).toEqual(Object.keys(fx.grads.params).sort());
      for (const [key, want] of Object.entries(fx.grads.params)) {
        const p = params.get(key)!;
        expect(p.grad, `${label}: no gradient for ${key}`).not.toBeNull();
        compare(label, `grad.${key}`, await p.grad!.toArray(), want.data, rtol, gradScale);
      }
      if (fx.stateDictAfter) {
        // Training-mode batch norm updates its running statistics in the forward pass.
        const sd = built.module.stateDict();
        for (const [key, want] of Object.entries(fx.stateDictAfter)) {
          const t = sd.get(key);
          expect(t, `${label}: no ${key} after forward`).toBeDefined();
          compare(label, `after.${key}`, await t!.toArray(), want.data, 1e-4);
        }
      }
    }
  } finally {
    x.dispose();
    R.dispose();
    built?.module.dispose();
  }
}

async function runAdamCase(fx: AdamFixture): Promise<void> {
  const names = Object.keys(fx.params0);
  const params = names.map((k) => variable(toTensor(fx.params0[k]), { requiresGrad: true }));
  const opt = new Adam(params, {
    lr: fx.options.lr,
    betas: fx.options.betas,
    eps: fx.options.eps,
    weightDecay: fx.options.weight_decay,
  });
  try {
    for (const [s, step] of fx.steps.entries()) {
      names.forEach((k, i) => {
        params[i].zeroGrad();
        params[i].grad = toTensor(step.grads[k]);
      });
      opt.step();
      for (const [i, k] of names.entries()) {
        const got = await params[i].toArray();
        const want = step.params[k].data;
        compare(fx.name, `step${s + 1}.${k}`, got, want, 2e-6);
        // The movement since the start is ~1e-3: compare it on its own scale too.
        const p0 = fx.params0[k].data;
        const moved = Float64Array.from(got, (v, j) => v - Math.fround(p0[j]));
        const wantMoved = want.map((v, j) => v - p0[j]);
        errors[fx.name][`step${s + 1}.${k}.delta`] = relErr(moved, wantMoved);
        expectClose(moved, wantMoved, { rtol: 2e-2, atol: 1e-9, label: `${fx.name} step ${s + 1} ${k} p − p0` });
      }
    }
  } finally {
    for (const p of params) p.dispose();
  }
}

describe('PyTorch parity (fixtures from test/fixtures/make_torch_fixtures.py)', () => {
  it('found the fixtures', () => {
    expect(fixtures.length).toBeGreaterThanOrEqual(30);
  });

  for (const fx of fixtures) {
    it(fx.name, async () => {
      if (fx.kind === 'adam') await runAdamCase(fx);
      else await runModuleCase(fx);
    });
    if (fx.kind === 'module' && FROM_CYCLEGAN.has(fx.module.class)) {
      it(`${fx.name} (@cg/cyclegan ${fx.module.class})`, async () => {
        await runModuleCase(fx, `${fx.name} (@cg/cyclegan)`, () => buildFromCyclegan(fx));
      });
    }
  }
});
