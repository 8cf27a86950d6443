import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { dropStaleInstanceNormKeys, exportOnnx, type OnnxMode, readCheckpoint } from '@cg/cyclegan';
import { decodeImage } from '@cg/cyclegan/node';
import { describe, expect, it } from 'vitest';
import { useNnDevice, writeArtifactAfterAll } from '../helpers/suite.js';
import { buildOurs, maxAbs, maxAbsDiff, ortSession, runOrt, runOurs } from './helpers.js';

/**
 * Exported ONNX vs PyTorch and vs ours, on the same weights and inputs: onnxruntime-node's CPU EP runs
 * the export of each torch-written checkpoint; its output must match torch's (committed fixtures, no
 * torch needed here) and our WebGPU forward within 1e-4 max abs. Generators: test/fixtures/parity
 * (make_generator_parity.py: the official generators on seeded PNGs, 32×24, 31×21 reflect-padded
 * to 32×24, 128×128). Discriminators, a norm-'none' resnet and a unet_256 with dropout:
 * test/fixtures/onnx (make_onnx_fixtures.py, seeded float inputs of several non-square sizes and
 * batch 2). Measured errors go to test-artifacts/onnx-torch.json.
 */

const here = dirname(fileURLToPath(import.meta.url));
const fixtures = resolve(here, '../fixtures');
const ARTIFACT = resolve(here, '../../test-artifacts/onnx-torch.json');
const TOL = 1e-4;
const read = (p: string) => readFileSync(resolve(fixtures, p));
const f32 = (p: string) => {
  const b = read(p);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
};

interface ParityCase {
  name: string;
  files: Record<string, string>;
  runs: { name: string; mode: OnnxMode; input: string; pad: [number, number, number, number] | null; f32: string }[];
}
interface OnnxCase {
  name: string;
  net: string;
  n_layers?: number;
  file: string;
  runs: { name: string; mode: OnnxMode; shape: number[]; input: string; output: string; out_shape: number[] }[];
}
const parity = JSON.parse(read('parity/manifest.json').toString()) as { cases: ParityCase[] };
const extra = JSON.parse(read('onnx/manifest.json').toString()) as { cases: OnnxCase[] };

const measured: Record<string, { vsTorch: number; oursVsTorch: number; ortVsOurs: number; outMaxAbs: number }> = {};
const getDevice = useNnDevice();
writeArtifactAfterAll(ARTIFACT, () => ({ tolerance: TOL, measured }));

/** ToTensor + Normalize(0.5, 0.5), then the reflect padding translate applies ([left, right, top, bottom]). */
function imageInput(name: string, pad: ParityCase['runs'][number]['pad']): { x: Float32Array; dims: number[] } {
  const img = decodeImage(read(`parity/${name}`), name);
  const { width: W, height: H } = img;
  const [l, r, t, b] = pad ?? [0, 0, 0, 0];
  const Wp = W + l + r;
  const Hp = H + t + b;
  const reflect = (i: number, n: number) => (i < 0 ? -i : i >= n ? 2 * n - 2 - i : i);
  const x = new Float32Array(3 * Hp * Wp);
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < Hp; y++) {
      for (let xx = 0; xx < Wp; xx++) {
        const sy = reflect(y - t, H);
        const sx = reflect(xx - l, W);
        x[(c * Hp + y) * Wp + xx] = (img.data[(sy * W + sx) * img.channels + c] / 255 - 0.5) / 0.5;
      }
    }
  }
  return { x, dims: [1, 3, Hp, Wp] };
}

function crop(y: Float32Array, dims: number[], pad: ParityCase['runs'][number]['pad']): Float32Array {
  if (!pad) return y;
  const [, C, Hp, Wp] = dims;
  const [l, r, t, b] = pad;
  const H = Hp - t - b;
  const W = Wp - l - r;
  const out = new Float32Array(C * H * W);
  for (let c = 0; c < C; c++) {
    for (let i = 0; i < H; i++)
      out.set(y.subarray((c * Hp + i + t) * Wp + l, (c * Hp + i + t) * Wp + l + W), (c * H + i) * W);
  }
  return out;
}

async function compare(
  key: string,
  sdBytes: Uint8Array,
  file: string,
  runs: {
    name: string;
    mode: OnnxMode;
    x: Float32Array;
    dims: number[];
    want: Float32Array;
    pad?: ParityCase['runs'][number]['pad'];
  }[],
  options: Parameters<typeof exportOnnx>[1] = {},
) {
  const sd = readCheckpoint(sdBytes, file);
  const clean = dropStaleInstanceNormKeys(sd);
  const sessions = new Map<OnnxMode, Awaited<ReturnType<typeof ortSession>>>();
  const ours = buildOurs(getDevice(), sd, options);
  try {
    for (const run of runs) {
      if (!sessions.has(run.mode))
        sessions.set(run.mode, await ortSession(exportOnnx(sd, { ...options, mode: run.mode, source: file })));
      const o = await runOrt(sessions.get(run.mode)!, run.x, run.dims);
      ours.loadStateDict(clean); // a train-mode run updated the BatchNorm running stats
      const us = await runOurs(ours, run.mode, run.x, run.dims);
      expect(o.dims).toEqual(us.dims);
      const got = crop(o.data, o.dims, run.pad ?? null);
      const r = {
        vsTorch: maxAbsDiff(got, run.want),
        oursVsTorch: maxAbsDiff(crop(us.data, us.dims, run.pad ?? null), run.want),
        ortVsOurs: maxAbsDiff(o.data, us.data),
        outMaxAbs: maxAbs(run.want),
      };
      measured[`${key}/${run.name}`] = r;
      expect(r.vsTorch, `${key} ${run.name}: ONNX vs torch`).toBeLessThanOrEqual(TOL);
      expect(r.ortVsOurs, `${key} ${run.name}: ONNX vs ours`).toBeLessThanOrEqual(TOL);
    }
  } finally {
    ours.dispose();
    for (const s of sessions.values()) await s.release();
  }
}

describe('official generators (test/fixtures/parity)', () => {
  const cases = parity.cases.flatMap((c) => Object.entries(c.files).map(([format, file]) => ({ c, format, file })));
  it.each(cases)('$c.name ($format): ONNX matches torch and ours within 1e-4', async ({ c, format, file }) => {
    const runs = c.runs.map((r) => {
      const { x, dims } = imageInput(r.input, r.pad);
      return { name: r.name, mode: r.mode, x, dims, want: f32(`parity/${r.f32}`), pad: r.pad };
    });
    await compare(`${c.name}/${format}`, read(`parity/${file}`), file, runs);
  });
});

describe('discriminators and more generators (test/fixtures/onnx)', () => {
  it.each(extra.cases)('$name: ONNX matches torch and ours within 1e-4', async (c) => {
    const runs = c.runs.map((r) => ({
      name: r.name,
      mode: r.mode,
      x: f32(`onnx/${r.input}`),
      dims: r.shape,
      want: f32(`onnx/${r.output}`),
    }));
    // Only the conv count says how deep a PatchGAN is; 'basic' is n_layers 3, which the count infers too.
    await compare(c.name, read(`onnx/${c.file}`), c.file, runs);
  });

  it('the older torch fixture nLayerDiscriminator_ndf4_n2 (instance, batch 2, 19×17) matches', async () => {
    const j = JSON.parse(read('torch/nLayerDiscriminator_ndf4_n2.json').toString()) as {
      stateDict: Record<string, { shape: number[]; data: number[] }>;
      inputs: { shape: number[]; data: number[] }[];
      output: { shape: number[]; data: number[] };
    };
    const sd = new Map(
      Object.entries(j.stateDict).map(([k, t]) => [
        k,
        { dtype: 'float32' as const, shape: t.shape, data: Float32Array.from(t.data) },
      ]),
    );
    const s = await ortSession(exportOnnx(sd, { mode: 'train' }));
    const o = await runOrt(s, Float32Array.from(j.inputs[0].data), j.inputs[0].shape);
    await s.release();
    expect(o.dims).toEqual(j.output.shape);
    const err = maxAbsDiff(o.data, Float32Array.from(j.output.data));
    measured['nLayerDiscriminator_ndf4_n2/train'] = {
      vsTorch: err,
      oursVsTorch: Number.NaN,
      ortVsOurs: Number.NaN,
      outMaxAbs: maxAbs(Float32Array.from(j.output.data)),
    };
    expect(err).toBeLessThanOrEqual(TOL);
  });
});
