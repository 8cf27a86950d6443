import { DeviceError } from './errors.js';

/** A pipeline `Device.compileAhead` saw missing: its cache key, label and whole WGSL module. */
export interface PendingPipeline {
  key: string;
  label: string;
  code: string;
  /** Its first recorded dispatch: binding sizes in bytes and uniform bytes (Device.compileAhead primes with it). */
  firstUse?: { bytes: number[]; params: ArrayBuffer | null };
}

/**
 * Compiled compute pipelines by key, an LRU bounded at `max` (a Map iterates
 * in insertion order; a hit re-inserts), with each one's bind-group layout.
 * Every pipeline has layout 'auto' and entry point `main`.
 */
export class PipelineCache {
  private readonly pipelines = new Map<string, GPUComputePipeline>();
  /** getBindGroupLayout() makes a new object per call; a training step dispatches thousands of times. */
  private readonly layouts = new Map<GPUComputePipeline, GPUBindGroupLayout>();
  /** Pipelines compiled so far (a recompiled evicted one counts again). */
  compiled = 0;
  /** Of `compiled`, those compileAll compiled ahead. */
  compiledAhead = 0;

  constructor(
    private readonly gpu: GPUDevice,
    private readonly max: number,
    private readonly dumpWgsl: boolean,
  ) {}

  get size(): number {
    return this.pipelines.size;
  }

  /** The cached pipeline, now the most recently used; undefined on a miss. */
  get(key: string): GPUComputePipeline | undefined {
    const p = this.pipelines.get(key);
    if (p) {
      this.pipelines.delete(key);
      this.pipelines.set(key, p);
    }
    return p;
  }

  /** Compiles synchronously: the calling thread waits for the driver's compiler. */
  compile({ key, label, code }: PendingPipeline): GPUComputePipeline {
    const p = this.gpu.createComputePipeline(this.descriptor(key, label, code));
    this.insert(key, p);
    return p;
  }

  /**
   * Compiles every pipeline with createComputePipelineAsync, all started at
   * once (where the browser compiles on several threads, Chromium's Dawn,
   * they go in parallel; Firefox's GPU process takes them in order), and
   * caches each as it arrives. `onProgress(done, total)` is called with
   * 0 first, then after each pipeline. Resolves with how many it added.
   */
  async compileAll(
    pending: readonly PendingPipeline[],
    onProgress?: (done: number, total: number) => void,
  ): Promise<number> {
    // A synchronous miss may have compiled one since it was recorded.
    const todo = pending.filter((p) => !this.pipelines.has(p.key));
    let done = 0;
    let added = 0;
    onProgress?.(0, todo.length);
    await Promise.all(
      todo.map(async ({ key, label, code }) => {
        let p: GPUComputePipeline;
        try {
          p = await this.gpu.createComputePipelineAsync(this.descriptor(key, label, code));
        } catch (e) {
          throw new DeviceError(
            `compileAhead: the "${label}" pipeline did not compile (${(e as Error).message ?? e}); ` +
              'this is a bug in the kernel, please report it with this message',
          );
        }
        if (!this.pipelines.has(key)) {
          this.insert(key, p);
          this.compiledAhead++;
          added++;
        }
        onProgress?.(++done, todo.length);
      }),
    );
    return added;
  }

  /** Bind-group layout of group 0, fetched once per pipeline. */
  layout(p: GPUComputePipeline): GPUBindGroupLayout {
    let l = this.layouts.get(p);
    if (!l) {
      l = p.getBindGroupLayout(0);
      this.layouts.set(p, l);
    }
    return l;
  }

  private descriptor(key: string, label: string, code: string): GPUComputePipelineDescriptor {
    if (this.dumpWgsl) console.log(`// ---- ${label} (${key})\n${code}`);
    const module = this.gpu.createShaderModule({ code, label });
    return { layout: 'auto', compute: { module, entryPoint: 'main' }, label };
  }

  private insert(key: string, p: GPUComputePipeline): void {
    this.compiled++;
    this.pipelines.set(key, p);
    if (this.pipelines.size > this.max) {
      // Work already recorded keeps its own reference to an evicted pipeline.
      const [oldestKey, oldest] = this.pipelines.entries().next().value as [string, GPUComputePipeline];
      this.pipelines.delete(oldestKey);
      this.layouts.delete(oldest);
    }
  }
}
