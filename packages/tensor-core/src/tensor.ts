import type { Device } from './device.js';
import { fmtShape, LifetimeError, ShapeError } from './errors.js';
import { track, untrack } from './scope.js';

/** A GPU buffer shared by a tensor and its reshaped views; freed when the last one is disposed. */
class Storage {
  refs = 1;
  constructor(
    readonly device: Device,
    readonly buffer: GPUBuffer,
  ) {}
}

export type Shape = readonly number[];

export function sizeOf(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

function checkShape(op: string, shape: Shape): void {
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) {
      throw new ShapeError(`${op}: shape ${fmtShape(shape)} has a dimension that is not a non-negative integer`);
    }
  }
}

/**
 * A float32, contiguous, row-major (NCHW for images) array on the GPU.
 * Its buffer comes from the device's pool and goes back on dispose().
 */
export class Tensor {
  readonly isTensor = true;
  readonly shape: Shape;
  readonly size: number;
  readonly device: Device;
  private storage: Storage | null;

  private constructor(device: Device, storage: Storage, shape: Shape) {
    this.device = device;
    this.storage = storage;
    this.shape = Object.freeze([...shape]);
    this.size = sizeOf(shape);
    device.liveTensors++;
    track(this);
  }

  /** A tensor with unspecified contents (every op that returns one fills it). */
  static empty(device: Device, shape: Shape): Tensor {
    checkShape('Tensor.empty', shape);
    const buffer = device.acquireStorage(sizeOf(shape) * 4);
    return new Tensor(device, new Storage(device, buffer), shape);
  }

  static zeros(device: Device, shape: Shape): Tensor {
    const t = Tensor.empty(device, shape);
    device.clear(t.buffer, t.byteLength);
    return t;
  }

  static fromArray(device: Device, data: ArrayLike<number>, shape: Shape): Tensor {
    checkShape('Tensor.fromArray', shape);
    const n = sizeOf(shape);
    if (data.length !== n) {
      throw new ShapeError(
        `Tensor.fromArray: data has ${data.length} elements but shape ${fmtShape(shape)} needs ${n}`,
      );
    }
    const t = Tensor.empty(device, shape);
    const f32 = data instanceof Float32Array ? data : Float32Array.from(data);
    if (n > 0) device.write(t.buffer, f32);
    return t;
  }

  static full(device: Device, shape: Shape, value: number): Tensor {
    return Tensor.fromArray(device, new Float32Array(sizeOf(shape)).fill(value), shape);
  }

  get rank(): number {
    return this.shape.length;
  }

  get byteLength(): number {
    return this.size * 4;
  }

  get isDisposed(): boolean {
    return this.storage === null;
  }

  /** The GPU buffer; its size may exceed byteLength (pool buckets). */
  get buffer(): GPUBuffer {
    if (!this.storage) throw new LifetimeError(`tensor ${fmtShape(this.shape)} was used after dispose()`);
    return this.storage.buffer;
  }

  /** A tensor with the same data and a new shape of the same size; shares the buffer. */
  reshape(shape: Shape): Tensor {
    const resolved = resolveInferred(shape, this.size);
    checkShape('reshape', resolved);
    if (sizeOf(resolved) !== this.size) {
      throw new ShapeError(
        `reshape: cannot view ${fmtShape(this.shape)} (${this.size} elements) as ${fmtShape(shape)}`,
      );
    }
    const storage = this.liveStorage('reshape');
    storage.refs++;
    return new Tensor(this.device, storage, resolved);
  }

  /** An independent copy. */
  clone(): Tensor {
    const out = Tensor.empty(this.device, this.shape);
    if (this.size > 0) this.device.copy(this.buffer, out.buffer, this.byteLength);
    return out;
  }

  /** Reads the data back to the CPU (submits pending work and waits for it). */
  async toArray(): Promise<Float32Array> {
    if (this.size === 0) return new Float32Array(0);
    const bytes = await this.device.read(this.buffer, this.byteLength);
    return new Float32Array(bytes);
  }

  /** The value of a one-element tensor. */
  async item(): Promise<number> {
    if (this.size !== 1) throw new ShapeError(`item: tensor ${fmtShape(this.shape)} has ${this.size} elements, not 1`);
    return (await this.toArray())[0];
  }

  /** Returns the buffer to the pool (once the last view of it is disposed). Idempotent. */
  dispose(): void {
    const storage = this.storage;
    if (!storage) return;
    this.storage = null;
    this.device.liveTensors--;
    untrack(this);
    if (--storage.refs === 0) storage.device.releaseStorage(storage.buffer);
  }

  toString(): string {
    return `Tensor${fmtShape(this.shape)}${this.isDisposed ? ' (disposed)' : ''}`;
  }

  private liveStorage(op: string): Storage {
    if (!this.storage) throw new LifetimeError(`${op}: tensor ${fmtShape(this.shape)} was used after dispose()`);
    return this.storage;
  }
}

function resolveInferred(shape: Shape, size: number): Shape {
  const i = shape.indexOf(-1);
  if (i < 0) return shape;
  const rest = sizeOf(shape.filter((_, j) => j !== i));
  return shape.map((d, j) => (j === i ? (rest === 0 ? 0 : size / rest) : d));
}
