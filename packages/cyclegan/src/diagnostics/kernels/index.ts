/*
 * Image-quality kernels for CycleGAN's diagnostics (mode collapse, loss of detail, misalignment). All work on
 * NCHW f32 batches and keep their results on the GPU; the callers read back only the final scalars.
 *
 *   luminance         ITU-R 601 luma (PIL's convert('L') weights) of RGB planes, with an affine rescale.
 *   laplacian         3×3 4-neighbour Laplacian per plane, replicate borders.
 *   sobelMagnitude    sqrt(gx² + gy²) of the unnormalised 3×3 Sobel pair, replicate borders.
 *   planeMoments      per-plane mean and population variance (two passes over the plane, no E[x²] − E[x]²).
 *   ssim / ssimMap    SSIM with an 11-tap Gaussian window (σ = 1.5, Wang et al. 2004), replicate borders.
 *   pairwiseDistance  [N, M] mean-L1 or RMS distances between flattened images (one workgroup per pair).
 *   meanAbsDiff       per-image mean |a − b|.
 *   absDiffMap        per-pixel channel-mean |a − b|: the cycle-error map.
 *   colorMap          per-pixel viridis/inferno colouring of a one-channel map.
 *
 * Sizes are uniforms, so one pipeline per op serves every shape (baked sizes made LLVM unroll loops and
 * compile slowly on lavapipe). Each op has an independent float64 reference (`…Ref`) written from the math.
 */

export { COLOR_MAPS, type ColorMapName, type ColorMapOptions, colorAt, colorMap, colorMapRef } from './color_map.js';
export {
  absDiffMap,
  absDiffMapRef,
  type DistanceMetric,
  meanAbsDiff,
  meanAbsDiffRef,
  pairwiseDistance,
  pairwiseDistanceRef,
} from './distances.js';
export {
  type Filter3x3,
  filter3x3Ref,
  LUMA_WEIGHTS,
  type LuminanceOptions,
  laplacian,
  luminance,
  luminanceRef,
  sobelMagnitude,
} from './filters.js';
export { planeMoments, planeMomentsRef } from './moments.js';
export { SSIM_RADIUS, SSIM_SIGMA, type SsimOptions, ssim, ssimMap, ssimRef, ssimWindow } from './ssim.js';
