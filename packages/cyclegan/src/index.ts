// Platform-neutral API of @cg/cyclegan. Node file access: `@cg/cyclegan/node`.
export * from './checkpoint/index.js';
/** Reads checkpoint bytes (.pth zip/legacy or .safetensors) into a state dict. */
export { readCheckpoint as loadCheckpoint } from './checkpoint/index.js';
export { type CompileGeneratorOptions, compileGeneratorAhead, EXACT_MAX_PIXELS } from './compile_ahead.js';
export { createDataset } from './create_dataset.js';
export * from './data/index.js';
export * from './diagnostics/index.js';
export { CheckpointError, DataError, loadingFrom, OptionError, RunLockedError } from './errors.js';
export { formatDuration } from './format.js';
export {
  hostStateDict,
  type LoadGeneratorOptions,
  loadGenerator,
  saveCheckpoint,
  sizeMultiple,
  type TranslateOptions,
  translateImage,
  translateToFloat,
} from './generator_io.js';
export { ImagePool, type ImagePoolState } from './image_pool.js';
export { type GeneratorSpec, inferGenerator, netGName } from './infer.js';
export { ganLoss, weightedL1 } from './losses.js';
export {
  CycleGANModel,
  type CycleGANOptions,
  LOSS_NAMES,
  type ModelInput,
  NET_NAMES,
  VISUAL_NAMES,
} from './model.js';
export { buildGenerator, defineD, defineG, specFromNetG } from './networks/define.js';
export { NLayerDiscriminator, PixelDiscriminator } from './networks/discriminators.js';
export { initWeights } from './networks/init_weights.js';
export { ResnetBlock, ResnetGenerator } from './networks/resnet_generator.js';
export { UnetGenerator, UnetSkipConnectionBlock } from './networks/unet_generator.js';
export * from './onnx/index.js';
export * from './options.js';
export { type LogPoint, type ReportInput, renderReport } from './report.js';
export { LrScheduler, learningRateAt } from './scheduler.js';
export * from './tiled/index.js';
/** Any image at its own size: the whole-image forward when it fits, exact tiles otherwise. */
export { translateImageAnySize as translate } from './tiled/index.js';
export {
  checkpointPath,
  type TrainerIO,
  type TrainHooks,
  type TrainProgress,
  type TrainResult,
  train,
  visualsGrid,
} from './trainer.js';
export { decodeTrainingState, encodeTrainingState } from './training_state.js';
