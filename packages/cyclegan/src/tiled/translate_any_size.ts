import { type nn, noGrad, variable } from '@cg/autograd';
import { bucketSize, Tensor, tidy } from '@cg/tensor-core';
import { tensorToImages } from '../data/grid.js';
import { type RgbImage, toChannels } from '../data/image.js';
import { resizeBicubic } from '../data/resize.js';
import { toTensor } from '../data/transforms.js';
import { DataError } from '../errors.js';
import { checkMinSide, padToMultiple, type TranslateOptions, translateToFloat } from '../generator_io.js';
import { readPaced } from '../paced_read.js';
import { emptyActivation, type HostActivation, runTiled, type TiledOptions, type TiledReport } from './executor.js';
import { planNetwork, wholeImageBytes } from './plan.js';
import { sourceIndex } from './tile_math.js';

export interface TranslateAnySizeOptions extends TranslateOptions, TiledOptions {
  /** Run the tiled executor even when the whole image fits the budget. */
  forceTiled?: boolean;
}

export interface TranslateAnySizeResult {
  /** The generator's float output `[1, C, H, W]` in [-1, 1], cropped to the (resized) input size. */
  data: Float32Array;
  shape: [number, number, number, number];
  /** True when the tiled executor ran; false for the whole-image path. */
  tiled: boolean;
  /** The tiled run's tiles and peak GPU bytes (absent on the whole-image path). */
  report?: TiledReport;
}

/**
 * translateToFloat for images of any size: the whole-image path when every
 * tensor of the forward fits one binding (`maxBindingBytes`, default the
 * device's maxStorageBufferBindingSize) and, if `maxGpuBytes` is given, all
 * of them together (the forward holds every intermediate until it returns)
 * fit it, weights not counted; otherwise the tiled executor
 * (`runTiled`), which keeps activations in host memory and gives the same
 * floats. Padding to the generator's multiple and cropping back are
 * translateToFloat's.
 */
export async function translateAnySize(
  net: nn.Module,
  image: RgbImage,
  o: TranslateAnySizeOptions,
): Promise<TranslateAnySizeResult> {
  let img = toChannels(image, o.input_nc as 1 | 3);
  if (o.load_size) img = resizeBicubic(img, o.load_size, o.load_size);
  const { width: W, height: H } = img;
  const { pads, fill } = padToMultiple(W, H, o.multiple);
  const [pl, pr, pt, pb] = pads;
  const Wp = W + pl + pr;
  const Hp = H + pt + pb;
  if (!o.forceTiled && fitsWhole(net, [img.channels, Hp, Wp], o)) {
    const r = await translateToFloat(net, img, { ...o, load_size: undefined });
    o.onProgress?.(1, 1);
    return { ...r, tiled: false };
  }
  // translateToFloat's check, with its message (the image is already resized here).
  checkMinSide(W, H, { ...o, load_size: undefined });
  if (o.eval) net.eval();
  else net.train();
  const chw = toTensor(img).data;
  const input = emptyActivation(img.channels, Hp, Wp);
  for (let c = 0; c < img.channels; c++) {
    for (let y = 0; y < Hp; y++) {
      const sy = sourceIndex(y - pt, H, fill);
      for (let x = 0; x < Wp; x++) input.planes[c][y * Wp + x] = chw[(c * H + sy) * W + sourceIndex(x - pl, W, fill)];
    }
  }
  const { output, report } = await runTiled(net, input, o);
  return { data: crop(output, pl, pt, W, H), shape: [1, output.C, H, W], tiled: true, report };
}

/**
 * Whether the whole-image forward of a [C, H, W] input fits: every tensor
 * within one binding (`maxBindingBytes`, default the device's
 * maxStorageBufferBindingSize) and one buffer, and, if `maxGpuBytes` is given,
 * all of them together (the forward holds every intermediate until it
 * returns), weights not counted.
 */
function fitsWhole(net: nn.Module, shape: readonly number[], o: TiledOptions): boolean {
  const lim = net.parameters()[0].device.limits;
  const need = wholeImageBytes(planNetwork(net), shape);
  const maxBinding = o.maxBindingBytes ?? lim.maxStorageBufferBindingSize;
  // Without maxGpuBytes, every image that runs whole today still does: only the per-buffer limits decide.
  return (
    need.largest <= maxBinding &&
    bucketSize(need.largest) <= lim.maxBufferSize &&
    (o.maxGpuBytes === undefined || need.total <= o.maxGpuBytes)
  );
}

/**
 * The generator on a float input `[1, C, H, W]` whose sides are already the
 * generator's multiple (a test-set batch, or another generator's output, as
 * test.py's cycle F(G(x)) does): net.forward when it fits, else the tiled
 * executor, with the same floats. The net's train/eval mode is the caller's.
 */
export async function generateAnySize(
  net: nn.Module,
  data: Float32Array,
  shape: readonly [1, number, number, number],
  o: TiledOptions & { forceTiled?: boolean } = {},
): Promise<TranslateAnySizeResult> {
  const [, C, H, W] = shape;
  if (!o.forceTiled && fitsWhole(net, [C, H, W], o)) {
    const device = net.parameters()[0].device;
    const y = tidy(() => noGrad(() => net.forward(variable(Tensor.fromArray(device, data, [1, C, H, W]))).data));
    try {
      const [, Co, Ho, Wo] = y.shape;
      o.onProgress?.(1, 1);
      return { data: await readPaced(net, shape, y), shape: [1, Co, Ho, Wo], tiled: false };
    } finally {
      y.dispose();
    }
  }
  const input: HostActivation = { C, H, W, planes: [] };
  for (let c = 0; c < C; c++) input.planes.push(data.slice(c * H * W, (c + 1) * H * W));
  const { output, report } = await runTiled(net, input, o);
  return {
    data: crop(output, 0, 0, output.W, output.H),
    shape: [1, output.C, output.H, output.W],
    tiled: true,
    report,
  };
}

/** translateAnySize as an image (tensor2im's uint8 conversion). */
export async function translateImageAnySize(
  net: nn.Module,
  image: RgbImage,
  o: TranslateAnySizeOptions,
): Promise<RgbImage> {
  const { data, shape } = await translateAnySize(net, image, o);
  return tensorToImages(data, shape)[0];
}

function crop(a: HostActivation, left: number, top: number, W: number, H: number): Float32Array {
  if (a.H < top + H || a.W < left + W) {
    throw new DataError(`translateAnySize: generator output ${a.W}×${a.H} is smaller than the image ${W}×${H}`);
  }
  const out = new Float32Array(a.C * H * W);
  for (let c = 0; c < a.C; c++) {
    for (let y = 0; y < H; y++) {
      const src = (y + top) * a.W + left;
      out.set(a.planes[c].subarray(src, src + W), (c * H + y) * W);
    }
  }
  return out;
}
