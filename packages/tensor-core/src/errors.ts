/** Base class of every error this project throws on purpose. */
export class CgError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** A tensor had the wrong shape, size or rank for an op. */
export class ShapeError extends CgError {}

/** No adapter, device lost, or a WebGPU validation/out-of-memory error. */
export class DeviceError extends CgError {}

/** A tensor was used after dispose(), or on a different device. */
export class LifetimeError extends CgError {}

/** A checkpoint file is unreadable, unsafe, or does not match the model. */
export class CheckpointError extends CgError {}

/** A dataset folder or image cannot be used. */
export class DataError extends CgError {}

/** An option has a value that cannot work. */
export class OptionError extends CgError {}

/** `[1,3,64,64]` — the way shapes appear in every message. */
export function fmtShape(shape: readonly number[]): string {
  return `[${shape.join(',')}]`;
}
