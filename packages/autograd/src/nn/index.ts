export { Conv2d, type Conv2dOptions, ConvTranspose2d, type ConvTranspose2dOptions } from './conv.js';
export { getDefaultDevice, getDefaultRng, type LayerOptions, manualSeed, setDefaultDevice } from './defaults.js';
export { fusionEnabled, setFusion } from './fusion.js';
export * as init from './init.js';
export {
  Dropout,
  Identity,
  LeakyReLU,
  ReflectionPad2d,
  ReLU,
  ReplicationPad2d,
  Sequential,
  Sigmoid,
  Tanh,
  Upsample,
  ZeroPad2d,
} from './layers.js';
export { type HostTensor, type LoadResult, Module } from './module.js';
export { BatchNorm2d, InstanceNorm2d, type NormOptions } from './norm.js';
