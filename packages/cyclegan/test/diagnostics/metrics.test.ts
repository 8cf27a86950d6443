import { nn, noGrad, variable } from '@cg/autograd';
import { type Device, Rng, Tensor, tidy } from '@cg/tensor-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { testDevice } from '../../../../test/helpers/device.js';
import { colorAt } from '../../src/diagnostics/kernels/index.js';
import {
  CollapseWatch,
  contentScores,
  cycleErrors,
  cycleHeatMap,
  detailScores,
  evaluate,
  type Generators,
  MemoryImageSource,
  makeSyntheticDomains,
  meanPairwiseDistance,
  type RgbImage,
  readAll,
  THRESHOLDS,
  TrainingDiagnostics,
  toTensor,
  UnalignedDataset,
} from '../../src/index.js';

/*
 * The metrics on constructed cases: generators made of one fixed convolution (constant, identity, blur, shift),
 * on the synthetic demo domains (8 images per domain, 32×32).
 */

const SIZE = 32;
const N = 8;
let device: Device;
let domains: { A: RgbImage[]; B: RgbImage[] };
let source: MemoryImageSource;
let realA: Tensor;
let realB: Tensor;

function stack(images: RgbImage[]): Tensor {
  const out = new Float32Array(images.length * 3 * SIZE * SIZE);
  images.forEach((img, i) => {
    toTensor(img, out, i * 3 * SIZE * SIZE);
  });
  return Tensor.fromArray(device, out, [images.length, 3, SIZE, SIZE]);
}

beforeAll(async () => {
  device = await testDevice();
  domains = makeSyntheticDomains(N, SIZE, new Rng(3));
  source = new MemoryImageSource();
  source.addAll('syn/testA', domains.A);
  source.addAll('syn/testB', domains.B);
  source.addAll('syn/trainA', domains.A);
  source.addAll('syn/trainB', domains.B);
  realA = stack(domains.A);
  realB = stack(domains.B);
});

/** A 3→3 convolution with weight w(out, in, ky, kx), replicate padding: a fixed "generator". */
function convG(k: number, w: (o: number, i: number, ky: number, kx: number) => number, bias = [0, 0, 0]): nn.Module {
  const conv = new nn.Conv2d(3, 3, k, { device, padding: (k - 1) / 2, paddingMode: 'replicate', rng: new Rng(1) });
  const weights = new Float32Array(9 * k * k);
  for (let o = 0; o < 3; o++)
    for (let i = 0; i < 3; i++)
      for (let y = 0; y < k; y++) for (let x = 0; x < k; x++) weights[((o * 3 + i) * k + y) * k + x] = w(o, i, y, x);
  device.write(conv.weight.data.buffer, weights);
  device.write(conv.bias!.data.buffer, Float32Array.from(bias));
  return conv;
}

const identity = () => convG(1, (o, i) => (o === i ? 1 : 0));
const constant = () => convG(1, () => 0, [0.3, -0.2, 0.1]);
/** 5×5 box blur of each channel. */
const blur = () => convG(5, (o, i) => (o === i ? 1 / 25 : 0));
/** out(y, x) = in(y, x − s): the image moved s pixels right (left edge replicated). */
const shift = (s: number) => convG(2 * s + 1, (o, i, y, x) => (o === i && y === s && x === 0 ? 1 : 0));

async function values(t: Tensor): Promise<number[]> {
  const [v] = await readAll(device, [t]);
  t.dispose();
  return Array.from(v);
}

function testSet(batch_size = 1) {
  return UnalignedDataset.open(
    {
      dataroot: 'syn',
      phase: 'test',
      crop_size: SIZE,
      load_size: SIZE,
      batch_size,
      serial_batches: true,
      no_flip: true,
    },
    source,
  );
}

const gens = (a: nn.Module, b: nn.Module): Generators & { device: Device } => ({ device, netG_A: a, netG_B: b });

describe('diversity (mode collapse)', () => {
  it('a generator that outputs a constant image scores exactly 0 and is flagged as collapsed', async () => {
    const [G_A, G_B] = [constant(), identity()];
    const r = await evaluate(gens(G_A, G_B), await testSet());
    expect(r.AtoB.diversity_fake).toBe(0);
    expect(r.AtoB.diversity).toBe(0);
    expect(r.AtoB.diversity_real).toBeGreaterThan(0.05);
    expect(r.AtoB.findings.join('\n')).toMatch(/mode collapse/);
    // The identity B→A keeps the variety of its inputs (domain B) and is not flagged.
    expect(r.BtoA.diversity).toBeGreaterThan(THRESHOLDS.collapse);
    expect(r.BtoA.findings.join('\n')).not.toMatch(/mode collapse/);
    // Training's watch warns only after `patience` low evaluations in a row, and names the official advice.
    const watch = new CollapseWatch();
    const low = { AtoB: r.AtoB.diversity, BtoA: r.BtoA.diversity };
    expect(watch.update(low)).toEqual([]);
    expect(watch.update(low)).toEqual([]);
    const w = watch.update(low);
    expect(w).toHaveLength(1);
    expect(w[0]).toMatch(/A→B.*3 evaluations in a row.*lambda_identity.*--lr.*more/);
    expect(watch.update({ AtoB: 0.9, BtoA: 0.9 })).toEqual([]);
    G_A.dispose();
    G_B.dispose();
  });

  it('div(X) is the mean over ordered pairs of the mean |x_i − x_j|', async () => {
    const x = Tensor.fromArray(device, [0, 0, 1, 1, 3, 5], [3, 2]);
    // pairs: |0−1|,|0−1| → 1; |0−3|,|0−5| → 4; |1−3|,|1−5| → 3; mean (1 + 4 + 3) / 3
    expect((await values(meanPairwiseDistance(x)!))[0]).toBeCloseTo(8 / 3, 6);
    expect(meanPairwiseDistance(x.reshape([1, 6]))).toBeNull();
    x.dispose();
  });
});

describe('detail (high-frequency energy)', () => {
  it('blurred outputs score lower detail than sharp ones, per image and as a ratio', async () => {
    const B = blur();
    const blurred = tidy(() => noGrad(() => B.forward(variable(realB)).data));
    const sharp = await values(detailScores(realB));
    const soft = await values(detailScores(blurred));
    for (let i = 0; i < N; i++) expect(soft[i]).toBeLessThan(0.5 * sharp[i]);
    blurred.dispose();
    B.dispose();

    const [G_A, G_B] = [blur(), blur()];
    const r = await evaluate(gens(G_A, G_B), await testSet());
    const [I_A, I_B] = [identity(), identity()];
    const id = await evaluate(gens(I_A, I_B), await testSet());
    for (const d of ['AtoB', 'BtoA'] as const) {
      expect(r[d].detail).toBeLessThan(THRESHOLDS.blurry);
      // Blurred twice on the round trip: far below the identity's ratio of exactly 1.
      expect(r[d].detail_rec).toBeLessThan(THRESHOLDS.blurry);
      expect(id[d].detail_rec).toBeCloseTo(1, 5);
      expect(id[d].findings.join('\n')).not.toMatch(/round trip/);
      expect(r[d].findings.join('\n')).toMatch(/blurrier/);
    }
    for (const g of [G_A, G_B, I_A, I_B]) g.dispose();
  });
});

describe('content preservation and cycle error', () => {
  it('an output shifted by a few pixels scores lower content than the identity', async () => {
    const same = await values(contentScores(realA, realA));
    for (const v of same) expect(v).toBeCloseTo(1, 5);
    const [S1, S3, I] = [shift(1), shift(3), identity()];
    const r1 = await evaluate(gens(S1, I), await testSet());
    const r3 = await evaluate(gens(S3, I), await testSet());
    const id = await evaluate(gens(I, I), await testSet());
    expect(id.AtoB.content).toBeCloseTo(1, 5);
    expect(r1.AtoB.content).toBeLessThan(id.AtoB.content - 0.1);
    expect(r3.AtoB.content).toBeLessThan(r1.AtoB.content);
    for (const p of r3.AtoB.perImage) expect(p.content).toBeLessThan(0.9);
    // A shifted cycle (shift then identity) does not come back: nonzero error; the identity cycle is perfect.
    expect(r3.AtoB.cycle_error).toBeGreaterThan(0.02);
    expect(id.AtoB.cycle_error).toBe(0);
    for (const g of [S1, S3, I]) g.dispose();
  });

  it('heat maps are zero (black) for perfect reconstructions and bright where the cycle fails', async () => {
    expect(await values(cycleErrors(realA, realA))).toEqual(new Array(N).fill(0));
    const heat = await values(cycleHeatMap(realA, realA));
    const black = colorAt('inferno', 0);
    const plane = SIZE * SIZE;
    for (let n = 0; n < N; n++)
      for (let k = 0; k < 3; k++)
        for (let p = 0; p < plane; p += 37) expect(heat[(n * 3 + k) * plane + p]).toBeCloseTo(black[k], 6);

    const [I, S] = [identity(), shift(2)];
    const perfect = await evaluate(gens(I, I), await testSet(), { worst: 2 });
    for (const w of perfect.AtoB.worst) expect(Math.max(...w.heatMap.data)).toBeLessThanOrEqual(1);
    const broken = await evaluate(gens(S, I), await testSet(), { worst: 2 });
    expect(broken.AtoB.worst).toHaveLength(2);
    expect(broken.AtoB.worst[0].content).toBeLessThanOrEqual(broken.AtoB.worst[1].content);
    expect(Math.max(...broken.AtoB.worst[0].heatMap.data)).toBeGreaterThan(100);
    for (const g of [I, S]) g.dispose();
  });
});

describe('evaluate and the training monitor', () => {
  it('the monitor warns after `patience` collapsed measurements in a row, with the official advice', async () => {
    const { resolveTrainOptions } = await import('../../src/index.js');
    const o = resolveTrainOptions({ dataroot: 'syn', crop_size: SIZE, load_size: SIZE });
    const monitor = await TrainingDiagnostics.create(device, o, source, { probeSize: 4, patience: 2 });
    const [G_A, G_B] = [constant(), identity()];
    const first = await monitor.measure(gens(G_A, G_B));
    expect(first.byDirection.AtoB.diversity).toBe(0);
    expect(first.warnings).toEqual([]);
    const second = await monitor.measure(gens(G_A, G_B));
    expect(second.warnings).toHaveLength(1);
    expect(second.warnings[0]).toMatch(/possible mode collapse A→B.*2 evaluations in a row.*--lambda_identity/);
    expect(monitor.last).toBe(second);
    monitor.dispose();
    G_A.dispose();
    G_B.dispose();
  });

  it('give the same numbers on the same images, deterministically, with batches of any size', async () => {
    const [G_A, G_B] = [blur(), shift(1)];
    const g = gens(G_A, G_B);
    const one = await evaluate(g, await testSet(1));
    const four = await evaluate(g, await testSet(4));
    const again = await evaluate(g, await testSet(4));
    expect(again).toEqual(four);
    const opts = {
      dataroot: 'syn',
      crop_size: SIZE,
      load_size: SIZE,
      preprocess: 'resize_and_crop',
      seed: 5,
    } as const;
    const { resolveTrainOptions } = await import('../../src/index.js');
    const monitor = await TrainingDiagnostics.create(device, resolveTrainOptions(opts), source);
    expect(monitor.probeSize).toBe(N);
    const reading = await monitor.measure(g);
    for (const d of ['AtoB', 'BtoA'] as const) {
      for (const k of ['diversity', 'detail', 'detail_rec', 'content', 'cycle_error'] as const) {
        expect(four[d][k]).toBeCloseTo(one[d][k], 5);
        expect(reading.byDirection[d][k]).toBeCloseTo(one[d][k], 5);
        expect(reading.metrics[`${k}_${d}`]).toBe(reading.byDirection[d][k]);
      }
    }
    expect(reading.line).toMatch(/^diversity A→B \d\.\d\d B→A \d\.\d\d$/);
    monitor.dispose();
    G_A.dispose();
    G_B.dispose();
  });
});
