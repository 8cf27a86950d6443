// The tiled executor's public API: images of any size in bounded GPU memory (ARCHITECTURE.md §7, "Images larger than the GPU allows").
export {
  type HostActivation,
  runTiled,
  type TiledOptions,
  type TiledReport,
} from './executor.js';
export { convWork, planNetwork, tiledHostBytes, wholeImageBytes } from './plan.js';
export {
  generateAnySize,
  type TranslateAnySizeOptions,
  type TranslateAnySizeResult,
  translateAnySize,
  translateImageAnySize,
} from './translate_any_size.js';
