/**
 * Size-bucketed pool of GPU buffers. Buffers are never destroyed while the
 * pool lives; a released buffer waits in its bucket for the next request of
 * that bucket's size.
 *
 * Buckets: multiples of 256 B up to 4 KiB, then four steps per power of two
 * (2^k, 1.25·2^k, 1.5·2^k, 1.75·2^k), so no request wastes more than 25 %.
 */
export function bucketSize(bytes: number): number {
  const n = Math.max(bytes, 4);
  if (n <= 4096) return Math.ceil(n / 256) * 256;
  const p = 2 ** Math.floor(Math.log2(n));
  const step = p / 4;
  return Math.ceil(n / step) * step;
}

export interface PoolStats {
  /** Buffers handed out and not yet released. */
  liveBuffers: number;
  liveBytes: number;
  /** Buffers waiting in the pool. */
  pooledBuffers: number;
  pooledBytes: number;
  /** Highest (live + pooled) bytes ever held. */
  peakBytes: number;
  /** Highest live bytes ever: what the work itself needed at once, without the pool's idle buffers. */
  peakLiveBytes: number;
}

export class BufferPool {
  private readonly free = new Map<number, GPUBuffer[]>();
  private readonly sizes = new WeakMap<GPUBuffer, number>();
  private stats: PoolStats = {
    liveBuffers: 0,
    liveBytes: 0,
    pooledBuffers: 0,
    pooledBytes: 0,
    peakBytes: 0,
    peakLiveBytes: 0,
  };

  constructor(
    private readonly device: GPUDevice,
    private readonly usage: GPUBufferUsageFlags,
    private readonly label: string,
  ) {}

  acquire(bytes: number): GPUBuffer {
    const size = bucketSize(bytes);
    const bucket = this.free.get(size);
    let buffer = bucket?.pop();
    if (buffer) {
      this.stats.pooledBuffers--;
      this.stats.pooledBytes -= size;
    } else {
      buffer = this.device.createBuffer({ size, usage: this.usage, label: this.label });
      this.sizes.set(buffer, size);
    }
    this.stats.liveBuffers++;
    this.stats.liveBytes += size;
    if (this.stats.liveBytes > this.stats.peakLiveBytes) this.stats.peakLiveBytes = this.stats.liveBytes;
    const held = this.stats.liveBytes + this.stats.pooledBytes;
    if (held > this.stats.peakBytes) this.stats.peakBytes = held;
    return buffer;
  }

  release(buffer: GPUBuffer): void {
    const size = this.sizes.get(buffer);
    if (size === undefined) throw new Error(`${this.label} pool: buffer does not belong to this pool`);
    let bucket = this.free.get(size);
    if (!bucket) this.free.set(size, (bucket = []));
    bucket.push(buffer);
    this.stats.liveBuffers--;
    this.stats.liveBytes -= size;
    this.stats.pooledBuffers++;
    this.stats.pooledBytes += size;
  }

  /** Destroys every pooled (not live) buffer, e.g. after a large one-off job. */
  trim(): void {
    for (const bucket of this.free.values()) for (const b of bucket) b.destroy();
    this.free.clear();
    this.stats.pooledBuffers = 0;
    this.stats.pooledBytes = 0;
  }

  snapshot(): PoolStats {
    return { ...this.stats };
  }
}
