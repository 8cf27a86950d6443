import { F, type nn, noGrad, variable } from '@cg/autograd';
import { type Device, Rng, Tensor, tidy } from '@cg/tensor-core';
import {
  assertFiniteWeights,
  dropStaleInstanceNormKeys,
  type HostTensor,
  type StateDict,
  writePth,
  writeSafetensors,
} from './checkpoint/index.js';
import { tensorToImages } from './data/grid.js';
import type { RgbImage } from './data/image.js';
import { toChannels } from './data/image.js';
import { resizeBicubic } from './data/resize.js';
import { toTensor } from './data/transforms.js';
import { DataError, loadingFrom } from './errors.js';
import { type GeneratorSpec, inferGenerator, netGName } from './infer.js';
import { buildGenerator, specFromNetG } from './networks/define.js';
import { checkGeneratorSize } from './networks/generator_size.js';
import { exportOnnx } from './onnx/export.js';
import type { ExportOnnxOptions } from './onnx/options.js';
import type { Norm } from './options.js';
import { readPaced } from './paced_read.js';

export interface LoadGeneratorOptions {
  /** Override what the keys say (official option names). */
  netG?: string;
  ngf?: number;
  norm?: Norm;
  /** Loader notes (dropped stale keys, unwrapped containers). */
  log?: (msg: string) => void;
  /** Name for error messages. */
  source?: string;
}

/**
 * Builds the generator a state_dict describes and loads it: the official
 * `.pth` files, ours, or any state_dict with the official key names. The
 * stale InstanceNorm statistics of 2018 checkpoints are dropped (with a
 * note); any other mismatch is one CheckpointError listing the keys. The
 * architecture's size and the weights' values are checked before anything
 * is built on the device.
 */
export function loadGenerator(
  device: Device,
  sd: StateDict,
  options: LoadGeneratorOptions = {},
): { net: nn.Module; spec: GeneratorSpec } {
  const source = options.source ?? 'checkpoint';
  const clean = dropStaleInstanceNormKeys(sd, options.log);
  let spec = inferGenerator(clean, source);
  if (options.netG && options.netG !== 'auto') {
    spec = specFromNetG({ ...spec, netG: options.netG, ngf: options.ngf ?? spec.ngf, norm: options.norm ?? spec.norm });
  } else if (options.ngf || options.norm) {
    spec = { ...spec, ngf: options.ngf ?? spec.ngf, norm: options.norm ?? spec.norm };
  }
  // Everything the file controls is checked here, on the host: nothing has touched the device yet.
  checkGeneratorSize(spec, storedValues(clean), source);
  assertFiniteWeights(clean, source);
  const net = buildGenerator(spec, { device, rng: new Rng(0) });
  try {
    loadingFrom(
      source,
      () => net.loadStateDict(clean),
      `\n(built ${netGName(spec)} ngf=${spec.ngf} norm=${spec.norm} from the keys; pass --netG/--ngf/--norm if that is wrong)`,
    );
  } catch (e) {
    net.dispose();
    throw e;
  }
  return { net, spec };
}

function storedValues(sd: StateDict): number {
  let n = 0;
  for (const t of sd.values()) n += t.data.length;
  return n;
}

/** A module's weights as a checkpoint file: safetensors (ours) or zip `.pth` that torch.load reads. */
/** A module's weights read back as a checkpoint state dict (int64 step counters, f32 the rest). */
export async function hostStateDict(net: nn.Module): Promise<StateDict> {
  const sd: StateDict = new Map();
  for (const [k, t] of await net.stateDictHost()) {
    const dtype: HostTensor['dtype'] = k.endsWith('num_batches_tracked') ? 'int64' : 'float32';
    sd.set(k, { dtype, shape: [...t.shape], data: t.data });
  }
  return sd;
}

/**
 * A module's weights as a file: safetensors, PyTorch `.pth`, or an ONNX model of the network they
 * describe (`onnx` options say what the keys cannot, such as a U-Net's dropout).
 */
export async function saveCheckpoint(
  net: nn.Module,
  format: 'safetensors' | 'pth' | 'onnx',
  onnx: ExportOnnxOptions = {},
): Promise<Uint8Array> {
  const sd = await hostStateDict(net);
  if (format === 'onnx') return exportOnnx(sd, onnx);
  return format === 'pth' ? writePth(sd) : writeSafetensors(sd, { format: 'pt' });
}

export interface TranslateOptions {
  /** Resize to load_size × load_size first, as the official test does; default: keep the input size. */
  load_size?: number;
  /** Image sides must be multiples of this (4 for resnet generators, 2^num_downs for U-Nets). */
  multiple: number;
  input_nc: number;
  /** Official test.py runs in train mode unless --eval; only matters for batch norm and dropout. */
  eval?: boolean;
  /** The image's file, for error messages. */
  name?: string;
}

/**
 * Smallest padded side the generators run on: a resnet halves the image twice and its residual blocks then
 * reflection-pad by 1, which needs a side of at least 2 there (torch: pad < side), so a 4×4 input fails
 * with a ShapeError deep inside. U-Nets pad every image to 128 or 256 and never get here.
 */
const MIN_PADDED_SIDE = 8;

/**
 * How an image is padded to the generator's side multiple, split as evenly as the official
 * `F.pad` call would: reflect, or replicate where a side is too small to reflect.
 */
export function padToMultiple(
  W: number,
  H: number,
  multiple: number,
): { pads: readonly [left: number, right: number, top: number, bottom: number]; fill: 'reflect' | 'replicate' } {
  const padW = (multiple - (W % multiple)) % multiple;
  const padH = (multiple - (H % multiple)) % multiple;
  const pads = [
    Math.floor(padW / 2),
    padW - Math.floor(padW / 2),
    Math.floor(padH / 2),
    padH - Math.floor(padH / 2),
  ] as const;
  const canReflect = pads[0] < W && pads[1] < W && pads[2] < H && pads[3] < H;
  return { pads, fill: canReflect ? 'reflect' : 'replicate' };
}

/** A DataError naming the image if its sides, once padded to `multiple`, are too small for the generators. */
export function checkMinSide(W: number, H: number, o: TranslateOptions): void {
  const padded = (side: number) => Math.ceil(side / o.multiple) * o.multiple;
  if (padded(W) >= MIN_PADDED_SIDE && padded(H) >= MIN_PADDED_SIDE) return;
  // The smallest side that pads up to MIN_PADDED_SIDE (5 for resnets' multiple of 4).
  const minSide = (Math.ceil(MIN_PADDED_SIDE / o.multiple) - 1) * o.multiple + 1;
  const name = o.name ?? 'image';
  if (o.load_size) {
    throw new DataError(`${name}: --load_size ${o.load_size} is too small for this generator; use at least ${minSide}`);
  }
  throw new DataError(
    `${name}: ${W}×${H} is too small for this generator: both sides must be at least ${minSide} pixels ` +
      `(padded to a multiple of ${o.multiple}, the residual blocks need ${MIN_PADDED_SIDE}×${MIN_PADDED_SIDE}); ` +
      `upscale the image or pass --load_size 256`,
  );
}

/** Side multiple a generator needs. */
export function sizeMultiple(spec: GeneratorSpec): number {
  return spec.kind === 'resnet' ? 4 : 2 ** (spec.num_downs ?? 8);
}

/**
 * Translates one image with a generator. Sizes that are not a multiple of
 * `multiple` are reflect-padded up to the next multiple (replicate-padded
 * where the image is too small to reflect), translated, and cropped back,
 * so the output has the input's size and is never stretched.
 */
export async function translateImage(net: nn.Module, image: RgbImage, o: TranslateOptions): Promise<RgbImage> {
  const { data, shape } = await translateToFloat(net, image, o);
  return tensorToImages(data, shape)[0];
}

/**
 * translateImage up to, not including, the uint8 conversion: the generator's
 * float output `[1, C, H, W]` in [-1, 1] for the (resized, if asked) input size.
 */
export async function translateToFloat(
  net: nn.Module,
  image: RgbImage,
  o: TranslateOptions,
): Promise<{ data: Float32Array; shape: [number, number, number, number] }> {
  let img = toChannels(image, o.input_nc as 1 | 3);
  if (o.load_size) img = resizeBicubic(img, o.load_size, o.load_size);
  const { width: W, height: H } = img;
  checkMinSide(W, H, o);
  const { pads, fill } = padToMultiple(W, H, o.multiple);
  if (o.eval) net.eval();
  else net.train();
  const device = net.parameters()[0].device;
  const out = tidy(() =>
    noGrad(() => {
      const chw = toTensor(img).data;
      let x = variable(Tensor.fromArray(device, chw, [1, img.channels, H, W]));
      if (pads.some((p) => p > 0)) x = fill === 'reflect' ? F.reflectionPad2d(x, pads) : F.replicationPad2d(x, pads);
      return net.forward(x).data;
    }),
  );
  const data = await readPaced(net, [1, img.channels, H, W], out);
  const [, C, Hp, Wp] = out.shape;
  out.dispose();
  const cropped = new Float32Array(C * H * W);
  for (let c = 0; c < C; c++) {
    for (let y = 0; y < H; y++) {
      const src = (c * Hp + y + pads[2]) * Wp + pads[0];
      cropped.set(data.subarray(src, src + W), (c * H + y) * W);
    }
  }
  return { data: cropped, shape: [1, C, H, W] };
}
