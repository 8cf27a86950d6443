import { sumAll } from '@cg/kernels-wgsl';
import { type Device, fmtShape, ShapeError, Tensor, tidy } from '@cg/tensor-core';
import {
  absDiffMap,
  colorMap,
  laplacian,
  luminance,
  meanAbsDiff,
  pairwiseDistance,
  planeMoments,
  sobelMagnitude,
  ssim,
} from './kernels/index.js';

/*
 * CycleGAN's three known failure modes as numbers, computed on the GPU from batches of images in the model's
 * units ([-1, 1], NCHW). Every function here records kernels only; callers read back the final scalars.
 *
 * Luminance: L = 0.299 R + 0.587 G + 0.114 B (ITU-R 601, PIL's 'L'), rescaled from [-1, 1] to [0, 1].
 *
 * 1. Diversity (mode collapse)
 *      div(X) = mean over pairs i ≠ j of mean_k |X_i[k] − X_j[k]|         (mean-L1 distance, model units)
 *      diversity = div(G(inputs)) / div(real target-domain images)
 *    ≈ 1: translations vary as much as real images do. → 0: the generator ignores its input (collapse: every
 *    output alike). A constant generator scores exactly 0.
 * 2. Detail (blur, lost texture)
 *      hf(x) = Var(∇²L(x)) per image, ∇² the 3×3 4-neighbour Laplacian (replicate borders)
 *      detail = mean hf(fakes) / mean hf(real target-domain images);  detail_rec = mean hf(rec) / mean hf(inputs)
 *    ≈ 1: as much fine structure as real images. Well below 1: blurry, washed-out outputs; well above 1: noise or
 *    checkerboard artefacts.
 * 3. Content preservation (alignment)
 *      content = SSIM(|Sobel L(input)|, |Sobel L(translation)|) per image: the edges of the translation vs the
 *      input's, Gaussian window σ 1.5 (11×11), data range 4 (a unit step's Sobel response).
 *      cycle_error = mean |G_B(G_A(x)) − x| per image (model units; the official cycle loss / λ).
 *    content near 1: edges stay where they were; low: the translation moved, dropped or invented structure
 *    (note that a translation that legitimately changes texture, e.g. adds stripes, also lowers it). cycle_error
 *    near 0: the round trip keeps the image; large: detail is lost on the way (see the heat maps).
 */

/** SSIM data range for Sobel-magnitude maps of [0, 1] luminance: a unit step edge answers 4. */
export const CONTENT_SSIM_RANGE = 4;
/** Heat maps colour |rec − real| (channel mean, model units) from 0 (black) to this value (yellow) and above. */
export const HEAT_MAX = 0.5;

function expectImages(op: string, x: Tensor): void {
  if (x.rank !== 4) throw new ShapeError(`${op}: expected images [N, C, H, W] (got ${fmtShape(x.shape)})`);
}

/** Model images [N, C, H, W] in [-1, 1] → luminance [N, 1, H, W] in [0, 1]. */
export function luma01(x: Tensor): Tensor {
  return luminance(x, { scale: 0.5, shift: 0.5 });
}

/** hf(x) = Var(∇²L(x)) per image: [N]. */
export function detailScores(x: Tensor): Tensor {
  expectImages('detailScores', x);
  return tidy(() => {
    const { variance } = planeMoments(laplacian(luma01(x)));
    return variance.reshape([x.shape[0]]);
  });
}

/** SSIM of the Sobel-magnitude maps of input and translation, per image: [N]. Sizes must match. */
export function contentScores(input: Tensor, output: Tensor): Tensor {
  expectImages('contentScores', input);
  expectImages('contentScores', output);
  const [n, , h, w] = input.shape;
  if (output.shape[0] !== n || output.shape[2] !== h || output.shape[3] !== w) {
    throw new ShapeError(
      `contentScores: input and translation must have the same N, H, W (got ${fmtShape(input.shape)} and ${fmtShape(output.shape)})`,
    );
  }
  return tidy(() =>
    ssim(sobelMagnitude(luma01(input)), sobelMagnitude(luma01(output)), { dataRange: CONTENT_SSIM_RANGE }).reshape([n]),
  );
}

/** mean |rec − real| per image: [N]. */
export function cycleErrors(real: Tensor, rec: Tensor): Tensor {
  return meanAbsDiff(rec, real);
}

/** div(X): mean mean-L1 distance over the N(N − 1) ordered pairs i ≠ j, as a [] tensor; null when N < 2. */
export function meanPairwiseDistance(x: Tensor): Tensor | null {
  const n = x.shape[0];
  if (n < 2) return null;
  return tidy(() => sumAll(pairwiseDistance(x, undefined, 'l1'), 1 / (n * (n - 1))));
}

/** inferno(|rec − real| channel mean / max): RGB [N, 3, H, W] in [0, 1]. Black where the cycle is perfect. */
export function cycleHeatMap(real: Tensor, rec: Tensor, max = HEAT_MAX): Tensor {
  return tidy(() => colorMap(absDiffMap(rec, real), { lo: 0, hi: max, map: 'inferno' }));
}

/**
 * Reads many small tensors back with one GPU→CPU transfer: they are copied into one buffer first
 * (the only readback diagnostics do besides heat-map images).
 */
export async function readAll(device: Device, tensors: readonly Tensor[]): Promise<Float32Array[]> {
  const total = tensors.reduce((s, t) => s + t.size, 0);
  if (total === 0) return tensors.map(() => new Float32Array(0));
  const packed = Tensor.empty(device, [total]);
  let at = 0;
  for (const t of tensors) {
    if (t.size > 0) device.copy(t.buffer, packed.buffer, t.byteLength, 0, at * 4);
    at += t.size;
  }
  const all = await packed.toArray();
  packed.dispose();
  at = 0;
  return tensors.map((t) => {
    const part = all.slice(at, at + t.size);
    at += t.size;
    return part;
  });
}
