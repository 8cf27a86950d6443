import { CheckpointError } from '../errors.js';
import { formatBytes } from '../format.js';
import { type GeneratorSpec, netGName } from '../infer.js';
import type { Norm } from '../options.js';
import { useBias } from './norm_layer.js';

/**
 * How big a generator is, computed from its spec without building it, and
 * how big a generator we build from a checkpoint. A checkpoint's keys decide
 * the architecture, so a crafted file could otherwise make us allocate
 * gigabytes on the GPU (a 1 KB file claiming ngf 700) before any check fails.
 */

/** The official models use ngf 64; 16× that is already ~11 GB as resnet_9blocks. */
export const MAX_NGF = 1024;
/** The official models use 6 or 9 blocks. */
export const MAX_RESNET_BLOCKS = 64;
/** unet_256 has 8; the builder needs at least 5, and 16 already asks for 65,536-pixel image sides. */
export const MIN_UNET_DOWNS = 5;
export const MAX_UNET_DOWNS = 16;
/** Images have 1 to 4 channels; 64 leaves room for stacked inputs. */
export const MAX_IMAGE_CHANNELS = 64;
/**
 * float32 parameters and buffers of a generator built from a checkpoint: 2 GiB
 * is ~45× the official resnet_9blocks (45 MB) and still leaves a GPU room for
 * the activations.
 */
export const MAX_GENERATOR_BYTES = 2 * 1024 ** 3;
/**
 * How many more values than the checkpoint stores a network may have before
 * we refuse to build it. A somewhat different network (a wrong --ngf, a
 * missing key) is built so that loadStateDict can list the mismatched keys;
 * but every value must come from the file, so one needing over 4× what the
 * file holds (doubling ngf is just under 4×) is not this file's network, and
 * building it would let a small file allocate a big one.
 */
export const MAX_UNBACKED_FACTOR = 4;
/** Lets tiny test networks through that factor regardless (4 MB of float32). */
export const UNBACKED_SLACK_VALUES = 2 ** 20;

const conv = (inC: number, outC: number, k: number, bias: boolean): number => inC * outC * k * k + (bias ? outC : 0);
/** BatchNorm2d: weight, bias, running_mean, running_var, and the scalar num_batches_tracked. */
const norm = (n: Norm, c: number): number => (n === 'batch' ? 4 * c + 1 : 0);

/** Elements in the state dict of the generator `spec` describes (parameters and buffers). */
export function generatorStateNumel(spec: GeneratorSpec): number {
  const { input_nc, output_nc, ngf } = spec;
  const n = spec.norm;
  const b = useBias(n);
  if (spec.kind === 'resnet') {
    let total = conv(input_nc, ngf, 7, b) + norm(n, ngf);
    for (const mult of [1, 2]) total += conv(ngf * mult, ngf * mult * 2, 3, b) + norm(n, ngf * mult * 2);
    const dim = ngf * 4;
    total += (spec.n_blocks ?? 6) * 2 * (conv(dim, dim, 3, b) + norm(n, dim));
    for (const mult of [4, 2]) {
      const out = Math.floor((ngf * mult) / 2);
      total += conv(ngf * mult, out, 3, b) + norm(n, out);
    }
    return total + conv(ngf, output_nc, 7, true);
  }
  // A skip block: down conv, [norm], submodule, up transposed conv of the concatenated channels, norm.
  const middle = (outer: number, inner: number) =>
    conv(outer, inner, 4, b) + norm(n, inner) + conv(inner * 2, outer, 4, b) + norm(n, outer);
  const innermost = conv(ngf * 8, ngf * 8, 4, b) + conv(ngf * 8, ngf * 8, 4, b) + norm(n, ngf * 8);
  const repeated = ((spec.num_downs ?? 8) - 5) * middle(ngf * 8, ngf * 8);
  const outermost = conv(input_nc, ngf, 4, b) + conv(ngf * 2, output_nc, 4, true);
  return innermost + repeated + middle(ngf * 4, ngf * 8) + middle(ngf * 2, ngf * 4) + middle(ngf, ngf * 2) + outermost;
}

function inRange(v: number | undefined, lo: number, hi: number): boolean {
  return v !== undefined && Number.isInteger(v) && v >= lo && v <= hi;
}

/**
 * Refuses, before anything is built or uploaded, a generator that is beyond
 * the limits above or far bigger than what the checkpoint stores (a file of
 * 1,000 values cannot fill a network of a million).
 */
export function checkGeneratorSize(spec: GeneratorSpec, storedValues: number, source: string): void {
  const what = `${source}: refusing to build ${netGName(spec)} ngf=${spec.ngf} (input_nc ${spec.input_nc}, output_nc ${spec.output_nc})`;
  const fix =
    'the file is corrupt or not a CycleGAN generator (pass --netG/--ngf if the inferred architecture is wrong)';
  const refuse = (why: string): never => {
    throw new CheckpointError(`${what}: ${why}; ${fix}`);
  };
  if (!inRange(spec.ngf, 1, MAX_NGF)) refuse(`ngf must be 1 to ${MAX_NGF}`);
  if (!inRange(spec.input_nc, 1, MAX_IMAGE_CHANNELS) || !inRange(spec.output_nc, 1, MAX_IMAGE_CHANNELS)) {
    refuse(`image channels must be 1 to ${MAX_IMAGE_CHANNELS}`);
  }
  if (spec.kind === 'resnet' && !inRange(spec.n_blocks ?? 6, 0, MAX_RESNET_BLOCKS)) {
    refuse(`a resnet generator has at most ${MAX_RESNET_BLOCKS} blocks`);
  }
  if (spec.kind === 'unet' && !inRange(spec.num_downs, MIN_UNET_DOWNS, MAX_UNET_DOWNS)) {
    refuse(`a U-Net has ${MIN_UNET_DOWNS} to ${MAX_UNET_DOWNS} downsamplings`);
  }
  const numel = generatorStateNumel(spec);
  if (numel * 4 > MAX_GENERATOR_BYTES) {
    refuse(`its weights would take ${formatBytes(numel * 4)}, above the ${formatBytes(MAX_GENERATOR_BYTES)} limit`);
  }
  if (numel > MAX_UNBACKED_FACTOR * storedValues + UNBACKED_SLACK_VALUES) {
    refuse(`it has ${numel} weight values but the file stores only ${storedValues}`);
  }
}
