export * from './ops/activation_backward.js';
export * from './ops/adam.js';
export * from './ops/batch_norm2d.js';
export * from './ops/binary.js';
export type { Combine, NormTuning } from './ops/channel_norm.js';
export * from './ops/concat.js';
export { CONV_STRATEGIES, type ConvStrategy, convStrategy, setConvStrategy } from './ops/conv_strategy.js';
export {
  type ConvTranspose2dOptions,
  convTranspose2d,
  convTranspose2dBackwardInput,
  convTranspose2dBackwardRef,
  convTranspose2dBackwardWeight,
  convTranspose2dOutputShape,
  convTranspose2dRef,
} from './ops/conv_transpose2d.js';
export {
  type Conv2dOptions,
  conv2d,
  conv2dBackwardBias,
  conv2dBackwardInput,
  conv2dBackwardRef,
  conv2dBackwardWeight,
  conv2dOutputShape,
  conv2dRef,
} from './ops/conv2d.js';
export * from './ops/dropout.js';
export * from './ops/elementwise_records.js';
export {
  instanceNorm2d,
  instanceNorm2dAct,
  instanceNorm2dActBackward,
  instanceNorm2dActBackwardRef,
  instanceNorm2dActRef,
  instanceNorm2dAdd,
  instanceNorm2dAddRef,
  instanceNorm2dBackward,
  instanceNorm2dBackwardRef,
  instanceNorm2dRef,
  type NormActivation,
} from './ops/instance_norm2d.js';
export * from './ops/loss.js';
export { type MatmulOptions, matmul, matmulRef } from './ops/matmul.js';
export * from './ops/pad2d.js';
export * from './ops/reduce.js';
export * from './ops/unary.js';
export * from './ops/upsample2d.js';
export {
  type BindingDecl,
  flatGroupIndex,
  flatWorkgroups,
  type KernelCall,
  type KernelDecl,
  kernelDecl,
  MAX_GROUPS_PER_DIM,
  runKernel,
  type StorageType,
  sameDevice,
  type UniformDecl,
  type UniformType,
  type UniformValues,
} from './runtime.js';
export { broadcastShapes, broadcastStrides, expectRank, expectSameShape, stridesOf } from './shape.js';
export { kahanAdd, type WorkgroupReduceOptions, workgroupReduce, workgroupSum } from './wgsl_reduce.js';
