// Platform-neutral data pipeline. Node file IO lives in fs-images.ts (exported from the package's node entry).
export {
  type Batch,
  type DataState,
  type Item,
  UnalignedDataset,
} from './dataset.js';
export {
  baseName,
  type DomainFiles,
  domainDirs,
  IMG_EXTENSIONS,
  type ImageInfo,
  type ImageSource,
  isImageFile,
  joinPath,
  listDomain,
} from './files.js';
export { makeGrid, tensorToImages } from './grid.js';
export {
  checkImage,
  cropImage,
  flipHorizontal,
  newImage,
  type RgbImage,
  toChannels,
  toGray,
  toRgb,
} from './image.js';
export { MemoryImageSource } from './memory_source.js';
export {
  type DataOptions,
  DEFAULT_DATA_OPTIONS,
  PREPROCESS_MODES,
  type Preprocess,
  resolveDataOptions,
  validateDataOptions,
} from './options.js';
export { probeImage, type SniffedFormat, sniffFormat, unsupportedFormatError } from './probe.js';
export { resizeBicubic, resizeNearest } from './resize.js';
export { blueness, makeSyntheticDomains, meanColor } from './synthetic.js';
export {
  augment,
  getTransform,
  makePower2,
  randomCrop,
  scaleWidth,
  type TensorImage,
  type TransformOptions,
  toTensor,
} from './transforms.js';
export {
  type DatasetReport,
  type DomainReport,
  type ValidateOptions,
  validateDataset,
} from './validate.js';
