export {
  type AdapterSummary,
  type CompileAheadOptions,
  Device,
  type DeviceOptions,
  type MemoryStats,
} from './device.js';
export { ArgumentError, CgError, DeviceError, fmtShape, LifetimeError, ShapeError } from './errors.js';
export { StepPacer } from './pacer.js';
export { BufferPool, bucketSize, type PoolStats } from './pool.js';
export { Rng } from './random.js';
export { keep, tidy } from './scope.js';
export { type Shape, sizeOf, Tensor } from './tensor.js';
