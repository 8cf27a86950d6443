import { DeviceError } from './errors.js';
import { BufferPool, type PoolStats } from './pool.js';

/** What we learned about the adapter behind a device; kernels pick strategies from it. */
export interface AdapterSummary {
  vendor: string;
  architecture: string;
  description: string;
  /** A CPU rasterizer (lavapipe/llvmpipe, SwiftShader, WARP). */
  isSoftware: boolean;
  /** 'vulkan', 'opengl', 'metal', 'd3d12', or 'browser' when the browser does not say. */
  backend: string;
  featureLevel: 'core' | 'compatibility';
  features: readonly string[];
}

export interface DeviceOptions {
  adapter: AdapterSummary;
  /**
   * An object that must stay strongly referenced while the device lives.
   * dawn.node crashes if its `create()` instance is garbage-collected under a
   * live device (docs/ARCHITECTURE.md §9), so the Node platform passes it here.
   */
  keepAlive?: unknown;
  /** Print every generated WGSL module before compiling it. */
  dumpWgsl?: boolean;
  /** Submit after this many dispatches so the GPU starts while we keep encoding. */
  maxDispatchesPerSubmit?: number;
  /** Compiled pipelines kept; beyond it the least recently used is dropped. Default DEFAULT_MAX_PIPELINES. */
  maxPipelines?: number;
}

/**
 * Bound of the pipeline cache. A CycleGAN training step uses ~130 pipelines
 * (both generators and critics, forward and backward, Adam); 512 leaves room
 * for a second model and the metric kernels while a long-lived app that sees
 * many op variants cannot grow without limit.
 */
export const DEFAULT_MAX_PIPELINES = 512;

export interface MemoryStats extends PoolStats {
  /** Tensors created and not yet disposed (views count separately). */
  liveTensors: number;
  /** Pipelines in the cache now (at most `maxPipelines`). */
  pipelines: number;
  /** Pipelines compiled since the device was created (cache misses; a recompiled evicted one counts again). */
  pipelinesCompiled: number;
}

const STORAGE_USAGE = 0x80 | 0x04 | 0x08; // STORAGE | COPY_SRC | COPY_DST
const UNIFORM_USAGE = 0x40 | 0x08; // UNIFORM | COPY_DST
const READBACK_USAGE = 0x01 | 0x08; // MAP_READ | COPY_DST

/**
 * One WebGPU device plus what every op needs around it: buffer pools, a
 * pipeline cache, a command encoder that batches many dispatches into one
 * submit, and error/loss tracking so failures surface as DeviceError instead
 * of hangs.
 *
 * Built from an already-acquired GPUDevice (dependency injection); only
 * `platform/node.ts` and `platform/browser.ts` know how to get one.
 */
export class Device {
  readonly gpu: GPUDevice;
  readonly adapter: AdapterSummary;
  readonly dumpWgsl: boolean;
  /** @internal */ liveTensors = 0;

  private keepAlive: unknown;
  private readonly storagePool: BufferPool;
  private readonly uniformPool: BufferPool;
  /** In least-recently-used order (a Map iterates in insertion order; a hit re-inserts). */
  private readonly pipelines = new Map<string, GPUComputePipeline>();
  private readonly maxPipelines: number;
  private pipelinesCompiled = 0;
  /** getBindGroupLayout() makes a new object per call; a training step dispatches thousands of times. */
  private readonly layouts = new Map<GPUComputePipeline, GPUBindGroupLayout>();
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private dispatchesInEncoder = 0;
  private uniformsInEncoder: GPUBuffer[] = [];
  private readonly maxDispatchesPerSubmit: number;
  private failure: DeviceError | null = null;
  private released = false;

  constructor(gpu: GPUDevice, options: DeviceOptions) {
    this.gpu = gpu;
    this.adapter = options.adapter;
    this.keepAlive = options.keepAlive;
    this.dumpWgsl = options.dumpWgsl ?? false;
    this.maxDispatchesPerSubmit = options.maxDispatchesPerSubmit ?? 128;
    this.maxPipelines = options.maxPipelines ?? DEFAULT_MAX_PIPELINES;
    if (!(Number.isInteger(this.maxPipelines) && this.maxPipelines >= 1)) {
      throw new RangeError(`Device: maxPipelines must be an integer ≥ 1, got ${options.maxPipelines}`);
    }
    this.storagePool = new BufferPool(gpu, STORAGE_USAGE, 'tensor');
    this.uniformPool = new BufferPool(gpu, UNIFORM_USAGE, 'params');
    gpu.lost.then((info) => {
      if (!this.released) {
        this.failure ??= new DeviceError(
          `GPU device lost (${info.reason}): ${info.message || 'no message'}. ` +
            'Tensors on it are gone; acquire a new device and reload the model.',
        );
      }
    });
    gpu.addEventListener('uncapturederror', (event) => {
      const err = (event as GPUUncapturedErrorEvent).error;
      this.failure ??= new DeviceError(`WebGPU error: ${err.message}`);
    });
  }

  get limits(): GPUSupportedLimits {
    return this.gpu.limits;
  }

  hasFeature(name: string): boolean {
    return this.adapter.features.includes(name);
  }

  /** Throws the first device loss / uncaptured WebGPU error seen, if any. */
  check(): void {
    if (this.released) throw new DeviceError('device was released; acquire a new one');
    if (this.failure) throw this.failure;
  }

  // ---- buffers -----------------------------------------------------------

  /** @internal */ acquireStorage(bytes: number): GPUBuffer {
    this.check();
    return this.storagePool.acquire(bytes);
  }

  /** @internal */ releaseStorage(buffer: GPUBuffer): void {
    if (!this.released) this.storagePool.release(buffer);
  }

  /** Uploads `data` into `buffer` at offset 0, after all work recorded so far. */
  write(buffer: GPUBuffer, data: ArrayBufferView): void {
    // queue.writeBuffer runs before any command still sitting in our
    // encoder, so submit that first: a pooled buffer may still be read by it.
    if (this.encoder) this.flush();
    this.gpu.queue.writeBuffer(buffer, 0, data.buffer, data.byteOffset, data.byteLength);
  }

  /** Records a zero-fill of the first `bytes` bytes of `buffer`. */
  clear(buffer: GPUBuffer, bytes: number): void {
    this.endPass();
    this.currentEncoder().clearBuffer(buffer, 0, Math.ceil(bytes / 4) * 4);
  }

  /** Records a buffer-to-buffer copy. */
  copy(src: GPUBuffer, dst: GPUBuffer, bytes: number, srcOffset = 0, dstOffset = 0): void {
    this.endPass();
    this.currentEncoder().copyBufferToBuffer(src, srcOffset, dst, dstOffset, Math.ceil(bytes / 4) * 4);
  }

  /** Submits pending work and reads `bytes` bytes back. The only way data leaves the GPU. */
  async read(buffer: GPUBuffer, bytes: number, offset = 0): Promise<ArrayBuffer> {
    const size = Math.ceil(bytes / 4) * 4;
    const staging = this.gpu.createBuffer({ size: Math.max(size, 4), usage: READBACK_USAGE, label: 'readback' });
    try {
      this.copy(buffer, staging, size, offset, 0);
      this.flush();
      await staging.mapAsync(1 /* GPUMapMode.READ */).catch((e: unknown) => {
        throw this.failure ?? new DeviceError(`readback failed: ${(e as Error).message ?? e}`);
      });
      this.check();
      return staging.getMappedRange(0, size).slice(0, bytes);
    } finally {
      staging.destroy();
    }
  }

  // ---- pipelines and dispatch -------------------------------------------

  /**
   * Returns the cached pipeline for `key`, compiling `makeWgsl()` on first use.
   * The cache is an LRU bounded by `maxPipelines`.
   */
  pipeline(key: string, label: string, makeWgsl: () => string): GPUComputePipeline {
    let p = this.pipelines.get(key);
    if (p) {
      // Move to the most recently used end.
      this.pipelines.delete(key);
      this.pipelines.set(key, p);
      return p;
    }
    const code = makeWgsl();
    if (this.dumpWgsl) console.log(`// ---- ${label} (${key})\n${code}`);
    const module = this.gpu.createShaderModule({ code, label });
    p = this.gpu.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' }, label });
    this.pipelinesCompiled++;
    this.pipelines.set(key, p);
    if (this.pipelines.size > this.maxPipelines) {
      // Work already recorded keeps its own reference to an evicted pipeline.
      const [oldestKey, oldest] = this.pipelines.entries().next().value as [string, GPUComputePipeline];
      this.pipelines.delete(oldestKey);
      this.layouts.delete(oldest);
    }
    return p;
  }

  /**
   * Records one compute dispatch. `buffers` bind to @group(0) @binding(0..n-1)
   * with their byte sizes; `params` (if any) binds as a uniform at @binding(n).
   */
  dispatch(
    pipeline: GPUComputePipeline,
    buffers: readonly { buffer: GPUBuffer; bytes: number }[],
    params: ArrayBuffer | null,
    workgroups: readonly [number, number, number],
  ): void {
    this.check();
    const entries: GPUBindGroupEntry[] = buffers.map((b, i) => ({
      binding: i,
      resource: { buffer: b.buffer, size: Math.max(4, Math.ceil(b.bytes / 4) * 4) },
    }));
    if (params) {
      const u = this.uniformPool.acquire(params.byteLength);
      this.gpu.queue.writeBuffer(u, 0, params);
      this.uniformsInEncoder.push(u);
      entries.push({ binding: buffers.length, resource: { buffer: u, size: Math.ceil(params.byteLength / 16) * 16 } });
    }
    let layout = this.layouts.get(pipeline);
    if (!layout) {
      layout = pipeline.getBindGroupLayout(0);
      this.layouts.set(pipeline, layout);
    }
    const bindGroup = this.gpu.createBindGroup({ layout, entries });
    if (!this.pass) this.pass = this.currentEncoder().beginComputePass();
    this.pass.setPipeline(pipeline);
    this.pass.setBindGroup(0, bindGroup);
    this.pass.dispatchWorkgroups(workgroups[0], workgroups[1], workgroups[2]);
    if (++this.dispatchesInEncoder >= this.maxDispatchesPerSubmit) this.flush();
  }

  /** Submits everything recorded so far. Cheap when nothing is pending. */
  flush(): void {
    if (!this.encoder) return;
    this.endPass();
    const commands = this.encoder.finish();
    this.encoder = null;
    this.dispatchesInEncoder = 0;
    this.gpu.queue.submit([commands]);
    // Later queue writes into these run after this submit, so reuse is safe now.
    for (const u of this.uniformsInEncoder) this.uniformPool.release(u);
    this.uniformsInEncoder = [];
  }

  /**
   * Submits pending work and returns a promise that settles when the GPU has
   * finished it. Loops await the previous iteration's fence so the CPU stays
   * at most one iteration ahead: without that back-pressure a loop that never
   * reads back queues unbounded work (measured here: +7 MB of host memory per
   * training step, then a crash inside the driver).
   */
  fence(): Promise<void> {
    this.flush();
    return this.gpu.queue.onSubmittedWorkDone().then(() => this.check());
  }

  /** Submits and waits until the GPU has finished all work (for timing and tests). */
  async sync(): Promise<void> {
    this.flush();
    await this.gpu.queue.onSubmittedWorkDone();
    this.check();
  }

  // ---- lifetime ------------------------------------------------------------

  memory(): MemoryStats {
    return {
      ...this.storagePool.snapshot(),
      liveTensors: this.liveTensors,
      pipelines: this.pipelines.size,
      pipelinesCompiled: this.pipelinesCompiled,
    };
  }

  /** Frees pooled buffers nobody uses (live tensors stay). */
  trimPool(): void {
    this.storagePool.trim();
    this.uniformPool.trim();
  }

  get isReleased(): boolean {
    return this.released;
  }

  /**
   * Destroys the GPU device, so a Node process can exit by itself. Tensors on
   * this device become unusable. The platform handle stays referenced: see
   * platform/node.ts for why dawn.node must never collect it.
   */
  release(): void {
    if (this.released) return;
    this.released = true;
    this.encoder = null;
    this.pass = null;
    this.gpu.destroy();
  }

  private currentEncoder(): GPUCommandEncoder {
    this.check();
    this.encoder ??= this.gpu.createCommandEncoder();
    return this.encoder;
  }

  private endPass(): void {
    if (this.pass) {
      this.pass.end();
      this.pass = null;
    }
  }
}
