import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { nn } from '@cg/autograd';
import {
  buildGenerator,
  defineD,
  exportOnnx,
  type GeneratorSpec,
  initWeights,
  type OnnxMode,
  OptionError,
  type StateDict,
  specFromNetG,
} from '@cg/cyclegan';
import { Rng } from '@cg/tensor-core';
import { describe, expect, it } from 'vitest';
import { useNnDevice, writeArtifactAfterAll } from '../helpers/suite.js';
import { buildOurs, hostStateDict, maxAbs, maxAbsDiff, ortSession, randomInput, runOrt, runOurs } from './helpers.js';

/**
 * Every network we build, exported and run in onnxruntime-node (CPU EP) vs our WebGPU forward on the
 * same weights, at two input sizes through one session (H, W and N are symbolic), one non-square
 * and one with batch 2, in eval and train mode: generators resnet_6/9blocks and unet_128/256 with norm
 * instance, batch and none, with and without dropout; the basic, n_layers and pixel discriminators.
 * Weights are initialised with gain 0.2 (0.02 gives near-constant outputs), with random biases and
 * BatchNorm running statistics, so a wrongly loaded value shows. Measured errors go to
 * test-artifacts/onnx-coverage.json. A few ms per ORT run; the time is our side compiling pipelines.
 */

const here = dirname(fileURLToPath(import.meta.url));
const ARTIFACT = resolve(here, '../../test-artifacts/onnx-coverage.json');
const TOL = 1e-4;
const measured: Record<string, { ortVsOurs: number; outMaxAbs: number }> = {};

const getDevice = useNnDevice();
writeArtifactAfterAll(ARTIFACT, () => ({ tolerance: TOL, measured }));

/** Random biases and running statistics on top of init_weights. */
function perturb(sd: StateDict, seed: number): StateDict {
  const rng = new Rng(seed);
  const draw: [string, () => number][] = [
    ['.bias', () => rng.normal(0, 0.05)],
    ['running_mean', () => rng.normal(0, 0.2)],
    ['running_var', () => 0.5 + rng.random()],
  ];
  for (const [k, t] of sd) {
    for (const [suffix, value] of draw)
      if (k.endsWith(suffix)) for (let i = 0; i < t.data.length; i++) t.data[i] = value();
  }
  return sd;
}

async function weightsOf(net: nn.Module, seed: number): Promise<StateDict> {
  initWeights(net, 'normal', 0.2, new Rng(seed));
  const sd = perturb(await hostStateDict(net), seed + 1);
  net.dispose();
  return sd;
}

async function check(
  name: string,
  sd: StateDict,
  sizes: number[][],
  modes: OnnxMode[],
  options: Parameters<typeof exportOnnx>[1] = {},
): Promise<void> {
  const ours = buildOurs(getDevice(), sd, options);
  try {
    for (const mode of modes) {
      const session = await ortSession(exportOnnx(sd, { ...options, mode }));
      for (const [i, dims] of sizes.entries()) {
        const x = randomInput(dims, 10 + i);
        ours.loadStateDict(sd);
        const o = await runOrt(session, x, dims);
        const us = await runOurs(ours, mode, x, dims);
        expect(o.dims).toEqual(us.dims);
        const err = maxAbsDiff(o.data, us.data);
        measured[`${name}/${mode}/${dims.join('x')}`] = { ortVsOurs: err, outMaxAbs: maxAbs(o.data) };
        expect(err, `${name} ${mode} ${dims}`).toBeLessThanOrEqual(TOL);
      }
      await session.release();
    }
  } finally {
    ours.dispose();
  }
}

const NORMS = ['instance', 'batch', 'none'] as const;

describe('generators', () => {
  const cases = [
    ...NORMS.flatMap((norm) =>
      [false, true].map((use_dropout) => ({ netG: 'resnet_6blocks', ngf: 2, norm, use_dropout })),
    ),
    { netG: 'resnet_9blocks', ngf: 2, norm: 'instance' as const, use_dropout: false },
    ...NORMS.flatMap((norm) => [false, true].map((use_dropout) => ({ netG: 'unet_128', ngf: 1, norm, use_dropout }))),
    { netG: 'unet_256', ngf: 1, norm: 'batch' as const, use_dropout: true },
  ];
  it.each(cases)('$netG ngf $ngf norm $norm dropout $use_dropout', async (c) => {
    const spec: GeneratorSpec = specFromNetG({ input_nc: 3, output_nc: 3, ...c });
    const sd = await weightsOf(buildGenerator(spec, { device: getDevice(), rng: new Rng(1) }), 5);
    const sizes =
      spec.kind === 'resnet'
        ? [
            [1, 3, 24, 32],
            [2, 3, 20, 12],
          ]
        : spec.num_downs === 7
          ? [
              [1, 3, 128, 256],
              [2, 3, 128, 128],
            ]
          : [[1, 3, 256, 256]];
    // A U-Net's dropout leaves no key: say so, so that train mode is refused below.
    const options = { use_dropout: c.use_dropout };
    await check(
      `${c.netG}/${c.norm}${c.use_dropout ? '/dropout' : ''}`,
      sd,
      sizes,
      c.use_dropout ? ['eval'] : ['eval', 'train'],
      options,
    );
    if (c.use_dropout) {
      expect(() => exportOnnx(sd, { ...options, mode: 'train' })).toThrow(OptionError);
      expect(() => exportOnnx(sd, { ...options, mode: 'train' })).toThrow(/random masks.*--mode eval/);
    }
  });
});

describe('discriminators', () => {
  const cases = [
    ...NORMS.map((norm) => ({ netD: 'basic' as const, n_layers_D: 3, norm })),
    { netD: 'n_layers' as const, n_layers_D: 2, norm: 'batch' as const },
    { netD: 'n_layers' as const, n_layers_D: 4, norm: 'instance' as const },
    ...NORMS.map((norm) => ({ netD: 'pixel' as const, n_layers_D: 3, norm })),
  ];
  it.each(cases)('$netD n_layers $n_layers_D norm $norm (inferred from the keys)', async (c) => {
    const D = defineD(
      { input_nc: 3, ndf: 2, ...c, init_type: 'normal', init_gain: 0.02 },
      { device: getDevice(), rng: new Rng(2) },
    );
    const sd = await weightsOf(D, 7);
    await check(
      `${c.netD}${c.netD === 'n_layers' ? c.n_layers_D : ''}/${c.norm}`,
      sd,
      [
        [1, 3, 64, 48],
        [2, 3, 48, 80],
      ],
      ['eval', 'train'],
    );
  });
});
