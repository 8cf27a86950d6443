export { type AdapterSummary, Device, type DeviceOptions, type MemoryStats } from './device.js';
export {
  CgError,
  CheckpointError,
  DataError,
  DeviceError,
  LifetimeError,
  OptionError,
  ShapeError,
  fmtShape,
} from './errors.js';
export { BufferPool, bucketSize, type PoolStats } from './pool.js';
export { keep, tidy } from './scope.js';
export { type Shape, Tensor, sizeOf } from './tensor.js';
export { Rng } from './random.js';
