// The tiled executor's public API: images of any size in bounded GPU memory (ARCHITECTURE.md has no section yet).
export {
  type HostActivation,
  runTiled,
  type TiledOptions,
  type TiledReport,
} from './executor.js';
export {
  generateAnySize,
  type TranslateAnySizeOptions,
  type TranslateAnySizeResult,
  translateAnySize,
  translateImageAnySize,
} from './translate_any_size.js';
