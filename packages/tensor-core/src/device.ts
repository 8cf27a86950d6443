import { ArgumentError, DeviceError } from './errors.js';
import { type PendingPipeline, PipelineCache } from './pipeline_cache.js';
import { BufferPool, type PoolStats } from './pool.js';
import { closeScope, openScope } from './scope.js';

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
  /** Of `pipelinesCompiled`, those compileAhead compiled; the rest compiled on first use, blocking their op. */
  pipelinesCompiledAhead: number;
}

export interface CompileAheadOptions {
  /**
   * Called with (0, n) once the work is known, then as it gets done: each pipeline compiled, then each
   * batch of pipelines primed (n counts both).
   */
  onProgress?: (done: number, total: number) => void;
}

/** Pipelines primed per fence: progress moves in steps of this many. */
const PRIME_BATCH = 8;

/** What `pipeline()` returns for a miss while recording: `dispatch()` notes its first use and goes no further. */
const recordedPipelines = new WeakMap<object, PendingPipeline>();
function recordedStandIn(pending: PendingPipeline): GPUComputePipeline {
  const standIn = Object.freeze({ label: `${pending.label} (recorded by compileAhead)` });
  recordedPipelines.set(standIn, pending);
  return standIn as unknown as GPUComputePipeline;
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
  private readonly pipelines: PipelineCache;
  /** While compileAhead runs its function: the cache misses seen, by key; null otherwise. */
  private recording: Map<string, PendingPipeline> | null = null;
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
    const maxPipelines = options.maxPipelines ?? DEFAULT_MAX_PIPELINES;
    if (!(Number.isInteger(maxPipelines) && maxPipelines >= 1)) {
      throw new RangeError(`Device: maxPipelines must be an integer ≥ 1, got ${options.maxPipelines}`);
    }
    this.pipelines = new PipelineCache(gpu, maxPipelines, this.dumpWgsl);
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
    if (this.recording) return;
    // queue.writeBuffer runs before any command still sitting in our
    // encoder, so submit that first: a pooled buffer may still be read by it.
    if (this.encoder) this.flush();
    this.gpu.queue.writeBuffer(buffer, 0, data.buffer, data.byteOffset, data.byteLength);
  }

  /** Records a zero-fill of the first `bytes` bytes of `buffer`. */
  clear(buffer: GPUBuffer, bytes: number): void {
    if (this.recording) return;
    this.endPass();
    this.currentEncoder().clearBuffer(buffer, 0, Math.ceil(bytes / 4) * 4);
  }

  /** Records a buffer-to-buffer copy. */
  copy(src: GPUBuffer, dst: GPUBuffer, bytes: number, srcOffset = 0, dstOffset = 0): void {
    if (this.recording) return;
    this.endPass();
    this.currentEncoder().copyBufferToBuffer(src, srcOffset, dst, dstOffset, Math.ceil(bytes / 4) * 4);
  }

  /** Submits pending work and reads `bytes` bytes back. The only way data leaves the GPU. */
  async read(buffer: GPUBuffer, bytes: number, offset = 0): Promise<ArrayBuffer> {
    if (this.recording) {
      // Zeros at once: nothing ran, and a read that waited on the GPU would let other code run while recording.
      this.check();
      return new ArrayBuffer(bytes);
    }
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
   * Returns the cached pipeline for `key`, compiling `makeWgsl()` on first use
   * (synchronously: the op that needs it waits), or recording it while
   * compileAhead runs. The cache is an LRU bounded by `maxPipelines`.
   */
  pipeline(key: string, label: string, makeWgsl: () => string): GPUComputePipeline {
    const hit = this.pipelines.get(key);
    if (hit) return hit;
    if (this.recording) {
      let pending = this.recording.get(key);
      if (!pending) this.recording.set(key, (pending = { key, label, code: makeWgsl() }));
      return recordedStandIn(pending);
    }
    return this.pipelines.compile({ key, label, code: makeWgsl() });
  }

  /**
   * Compiles, without blocking, the pipelines `fn` needs, ahead of its first
   * real run (a translation, a training step). `fn` runs in recording mode:
   * a cache miss records its WGSL instead of compiling, and nothing reaches
   * the GPU queue (dispatches, writes, clears and copies are skipped; reads
   * resolve at once with zeros), so its results are garbage; tensors it
   * creates are disposed when it settles, unless passed to `keep()`. Then
   * every recorded pipeline is compiled with createComputePipelineAsync, in
   * parallel, and cached. Image sizes are uniforms (ARCHITECTURE §3), so a
   * forward on a small input reaches the pipelines of a large one.
   *
   * Then each is primed: dispatched once, one workgroup, on scratch buffers
   * of its first recorded dispatch's sizes with that dispatch's uniforms (so
   * every access is one the real dispatch makes). Drivers may compile at
   * first dispatch rather than at creation: lavapipe's llvmpipe JIT does, so
   * on a cold Mesa shader cache (a new machine) a 28-pipeline generator
   * compiled ahead in 0.34 s and its first translation still took 5.4 s
   * against 0.95 s later, in Node and in Firefox alike, until priming.
   *
   * While `fn` runs, everything on this device records, so nothing else
   * may run meanwhile. Recording therefore starts in a task of its own
   * (other code resumes only from tasks: GPU callbacks, messages, timers),
   * and `fn` may be async only through this device, whose reads, fences and
   * syncs settle at once while recording: awaiting a timer or IO inside it
   * throws, since other code could have run meanwhile with its work skipped.
   * Build modules and upload weights before, not inside.
   */
  async compileAhead(
    fn: () => unknown,
    options: CompileAheadOptions = {},
  ): Promise<{ recorded: number; compiled: number }> {
    if (this.recording) throw new ArgumentError('compileAhead: already recording on this device; calls cannot nest');
    await new Promise((resolve) => setTimeout(resolve, 0));
    if (this.recording) throw new ArgumentError('compileAhead: another compileAhead is recording; await it first');
    this.check();
    this.flush();
    const recorded = new Map<string, PendingPipeline>();
    this.recording = recorded;
    const scope = openScope();
    // Runs only if a task passed while recording, i.e. fn awaited something other than this device.
    let crossed = false;
    const probe = setTimeout(() => {
      crossed = true;
    }, 0);
    try {
      await fn();
    } finally {
      clearTimeout(probe);
      this.recording = null;
      closeScope(scope);
    }
    if (crossed) {
      throw new ArgumentError(
        'compileAhead: fn awaited something other than this device (a timer, IO), so other work on the device ' +
          'may have been skipped while recording; pass a function that only awaits the device',
      );
    }
    const pending = [...recorded.values()];
    // Both phases report into one count: compiling the pipelines, then priming them.
    let compileTotal = 0;
    const progress = options.onProgress;
    const compiled = await this.pipelines.compileAll(pending, (done, total) => {
      compileTotal = total;
      progress?.(done, 2 * total);
    });
    await this.prime(
      pending.filter((p) => p.firstUse),
      (done) => progress?.(compileTotal + done, 2 * compileTotal),
    );
    this.check();
    return { recorded: recorded.size, compiled };
  }

  /** compileAhead's second phase: one one-workgroup dispatch per pipeline, on scratch buffers; see there. */
  private async prime(pending: readonly PendingPipeline[], onDone: (done: number) => void): Promise<void> {
    for (let i = 0; i < pending.length; i += PRIME_BATCH) {
      for (const { key, firstUse } of pending.slice(i, i + PRIME_BATCH)) {
        const pipeline = this.pipelines.get(key);
        if (!pipeline || !firstUse) continue;
        const buffers = firstUse.bytes.map((bytes) => ({ buffer: this.storagePool.acquire(bytes), bytes }));
        this.dispatch(pipeline, buffers, firstUse.params, [1, 1, 1]);
        // Back to the pool at once, as a disposed tensor's buffer goes: later work is queued after this dispatch.
        for (const b of buffers) this.storagePool.release(b.buffer);
      }
      await this.fence();
      onDone(Math.min(i + PRIME_BATCH, pending.length));
    }
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
    if (this.recording) {
      const pending = recordedPipelines.get(pipeline);
      if (pending && !pending.firstUse) {
        pending.firstUse = { bytes: buffers.map((b) => b.bytes), params: params ? params.slice(0) : null };
      }
      return;
    }
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
    const bindGroup = this.gpu.createBindGroup({ layout: this.pipelines.layout(pipeline), entries });
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
    if (this.recording) return Promise.resolve().then(() => this.check());
    this.flush();
    return this.gpu.queue.onSubmittedWorkDone().then(() => this.check());
  }

  /** Submits and waits until the GPU has finished all work (for timing and tests). */
  async sync(): Promise<void> {
    if (this.recording) return this.check();
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
      pipelinesCompiled: this.pipelines.compiled,
      pipelinesCompiledAhead: this.pipelines.compiledAhead,
    };
  }

  /** Frees pooled buffers nobody uses (live tensors stay). */
  trimPool(): void {
    // A pooled buffer may still be read by commands in our encoder; submitting them after it is destroyed fails.
    this.flush();
    this.storagePool.trim();
    this.uniformPool.trim();
  }

  /** True while compileAhead runs its function (nothing reaches the GPU; reads resolve at once). */
  get isRecording(): boolean {
    return this.recording !== null;
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
