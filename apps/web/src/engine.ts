// All GPU work of the app: one device, the loaded generator, and a training run. Runs in a Worker
// (worker.ts) so the page stays responsive; where a Worker has no WebGPU it runs in the page (client.ts).
// It uses the packages exactly as any outside user would.
import {
  CheckpointError,
  type CycleGANModel,
  compileGeneratorAhead,
  DataError,
  EXACT_MAX_PIXELS,
  type GeneratorSpec,
  loadGenerator,
  MemoryImageSource,
  makeSyntheticDomains,
  netGName,
  OptionError,
  type RgbImage,
  readCheckpoint,
  saveCheckpoint,
  sizeMultiple,
  type TrainerIO,
  type TrainProgress,
  tensorToImages,
  train,
  translateAnySize,
} from '@cg/cyclegan';
import { ArgumentError, type Device, DeviceError, Rng } from '@cg/tensor-core';
import { requestDevice } from '@cg/tensor-core/browser';
import { encodePng } from './image_io.js';
import type {
  AdapterInfo,
  EngineEvent,
  ErrorInfo,
  ErrorKind,
  ExportFormat,
  GeneratorInfo,
  GeneratorNet,
  ReplyMap,
  Request,
  TrainData,
  TrainRunOptions,
  TrainSummary,
  TranslateResult,
  TranslateSettings,
} from './protocol.js';

/**
 * Host memory a tiled translation may hold in activations. A tab that allocates past what the browser grants
 * it (commonly 2–4 GiB per process) is killed without a message, so a photo needing more is refused up front.
 */
export const MAX_HOST_BYTES = 2 * 2 ** 30;

/**
 * GPU bytes a translation may take unless the page's `?maxGpuMB=` says otherwise; a photo that needs more runs
 * in tiles: bounded memory (a software adapter's GPU memory is the browser's own; a real GPU's may be small)
 * and a progress bar that moves, where the whole-image forward reports only its end.
 */
export const DEFAULT_MAX_GPU_BYTES = 512 * 2 ** 20;

/** How long translations must pause before the deferred photo-size compile starts (Engine.photosLater). */
const PHOTOS_AFTER_IDLE_MS = 1500;

/** At most this many translation progress events per second: each is a message to the page. */
const PROGRESS_INTERVAL_MS = 100;

/** An error that already knows which message the page should show. */
export class EngineError extends Error {
  constructor(
    readonly kind: ErrorKind,
    message: string,
  ) {
    super(message);
    this.name = 'EngineError';
  }
}

type Generator = ReturnType<typeof loadGenerator>['net'];
type LoadedGenerator = { net: Generator; spec: GeneratorSpec };

/** The compile ahead for photo-sized images (Engine.compileAhead). */
const PHOTOS = 'photos';

/** Small enough to compile ahead at its own size (its dummy forward allocates what the real one reuses). */
const isSmall = (w: number, h: number) => w * h <= EXACT_MAX_PIXELS;

/** The trainer's file system, in memory: checkpoints at pause/end, training state, history, report. */
class MemoryIO implements TrainerIO {
  readonly files = new Map<string, Uint8Array>();
  constructor(private readonly onImage: (image: RgbImage) => void) {}
  async writeFile(path: string, bytes: Uint8Array): Promise<void> {
    this.files.set(path, bytes);
  }
  async readFile(path: string): Promise<Uint8Array | null> {
    return this.files.get(path) ?? null;
  }
  /** The trainer encodes its sample grids here: that is also where the page gets them live. */
  async encodePng(image: RgbImage): Promise<Uint8Array> {
    this.onImage(image);
    return new Uint8Array(await (await encodePng(image)).arrayBuffer());
  }
}

interface Run {
  io: MemoryIO;
  source: MemoryImageSource;
  options: TrainRunOptions;
  model: CycleGANModel | null;
  running: boolean;
  pauseRequested: boolean;
  pendingSample: RgbImage | null;
}

export class Engine {
  private device: Device | null = null;
  private lostMessage: string | null = null;
  private generator: LoadedGenerator | null = null;
  /** Compiles ahead run one after another (each records its dummy forwards alone); this is the last. */
  private compileChain: Promise<void> = Promise.resolve();
  /** The loaded generator's compiles ahead, done or queued: PHOTOS, or an image size "W×H". */
  private compiles = new Map<string, Promise<void>>();
  /** Set when a load compiled the page's small image first: the photo sizes follow once translations pause. */
  private photosLater: LoadedGenerator | null = null;
  private photosTimer: ReturnType<typeof setTimeout> | undefined;
  private run: Run | null = null;

  constructor(
    private readonly emit: (e: EngineEvent) => void,
    private readonly thread: 'worker' | 'page',
  ) {}

  async handle<R extends Request>(req: R): Promise<ReplyMap[R['op']]> {
    return (await this.dispatch(req)) as ReplyMap[R['op']];
  }

  private async dispatch(req: Request): Promise<ReplyMap[Request['op']]> {
    switch (req.op) {
      case 'init':
        return this.init();
      case 'loadCheckpoint':
        return this.loadCheckpoint(req.bytes, req.name, req.imageSize, req.settings ?? {});
      case 'translate':
        return this.translate(req.image, req.name, req.settings ?? {});
      case 'train':
        return this.startTraining(req.data, req.options);
      case 'pause':
        if (this.run?.running) this.run.pauseRequested = true;
        return null;
      case 'resume':
        return this.resume();
      case 'export':
        return this.exportGenerator(req.net, req.format);
      case 'report':
        return this.report();
      case 'loseDevice':
        // Debug aid (?debug): what a driver reset or a GPU crash looks like to the page.
        this.device?.gpu.destroy();
        return null;
    }
  }

  /** What the page shows for an error thrown by any request. */
  errorInfo(e: unknown): ErrorInfo {
    const err = e instanceof Error ? e : new Error(String(e));
    // instanceof, not err.name: a minifier renames classes, and the library's errors take their name from it.
    const [kind, name]: [ErrorKind, string] =
      err instanceof EngineError
        ? [err.kind, err.name]
        : err instanceof CheckpointError
          ? ['checkpoint', 'CheckpointError']
          : err instanceof DataError
            ? ['data', 'DataError']
            : err instanceof OptionError
              ? ['options', 'OptionError']
              : err instanceof DeviceError
                ? ['other', 'DeviceError']
                : ['other', err.name];
    if (kind === 'other' && (this.lostMessage || (name === 'DeviceError' && /device lost/i.test(err.message)))) {
      return { kind: 'device-lost', name, message: this.lostMessage ?? err.message };
    }
    return { kind, name, message: err.message };
  }

  private async ensureDevice(): Promise<Device> {
    if (this.device) return this.device;
    let device: Device;
    try {
      device = await requestDevice();
    } catch (e) {
      throw new EngineError('no-webgpu', (e as Error).message ?? String(e));
    }
    this.lostMessage = null;
    this.device = device;
    device.gpu.lost.then((info) => {
      if (this.device !== device) return;
      // Everything on the device is gone: the generator and the training run must be rebuilt.
      this.device = null;
      this.generator = null;
      this.compiles.clear();
      this.photosLater = null;
      if (this.run) {
        this.run.model = null;
        this.run.pauseRequested = true;
      }
      this.lostMessage =
        `The GPU device was lost (${info.reason ?? 'unknown'}${info.message ? `: ${info.message}` : ''}). ` +
        'Models on it are gone: reconnect, then load the checkpoint again or restart training.';
      this.emit({ event: 'deviceLost', message: this.lostMessage });
    });
    return device;
  }

  private async init(): Promise<AdapterInfo> {
    const device = await this.ensureDevice();
    const a = device.adapter;
    return {
      description: a.description || a.architecture || a.vendor || 'an adapter the browser does not name',
      vendor: a.vendor,
      architecture: a.architecture,
      isSoftware: a.isSoftware,
      features: [...a.features],
      thread: this.thread,
    };
  }

  private async loadCheckpoint(
    bytes: Uint8Array,
    name: string,
    imageSize: [number, number] | undefined,
    settings: TranslateSettings,
  ): Promise<GeneratorInfo> {
    const notes: string[] = [];
    // Parse before touching the GPU, so a bad file is reported as such even without WebGPU.
    const sd = readCheckpoint(bytes, name, (m) => notes.push(m));
    const device = await this.ensureDevice();
    const loaded = loadGenerator(device, sd, { source: name, log: (m) => notes.push(m) });
    this.generator?.net.dispose();
    this.generator = loaded;
    this.compiles.clear();
    this.photosLater = null;
    // Not awaited: the page shows the generator now and the compile's progress; translations wait for theirs.
    if (settings.compileAhead ?? true) {
      if (imageSize && isSmall(imageSize[0], imageSize[1])) {
        // The page translates its image next: its kernels first, the photo sizes' once it is done (a browser's
        // GPU process may compile in order with the work it is sent, so they would delay it).
        void this.compileAhead(loaded, imageSize);
        this.photosLater = loaded;
      } else {
        void this.compileAhead(loaded, PHOTOS);
      }
    }
    return {
      spec: loaded.spec,
      netG: netGName(loaded.spec),
      params: loaded.net.numParameters(),
      multiple: sizeMultiple(loaded.spec),
      notes,
    };
  }

  /**
   * Compiles the generator's pipelines with createComputePipelineAsync (so compiling never blocks this thread)
   * before a translation needs them (compileGeneratorAhead): for photos (PHOTOS: whole and tiled, at sizes that
   * select what any large image does), or for one small image's size exactly (small images select narrower
   * conv tiles). Queued after the compiles before it; progress goes to the page. The promise never rejects.
   */
  private compileAhead(g: LoadedGenerator, what: typeof PHOTOS | [number, number]): Promise<void> {
    const key = what === PHOTOS ? PHOTOS : `${what[0]}×${what[1]}`;
    let job = this.compiles.get(key);
    if (job) return job;
    if (key === PHOTOS && this.photosLater === g) this.photosLater = null;
    job = this.compileChain.then(async () => {
      if (this.generator !== g) return; // replaced before its turn came
      const t0 = performance.now();
      try {
        await compileGeneratorAhead(g.net, {
          multiple: sizeMultiple(g.spec),
          input_nc: g.spec.input_nc,
          photos: what === PHOTOS,
          sizes: what === PHOTOS ? [] : [what],
          onProgress: (done, total) => this.emit({ event: 'compileProgress', done, total, ms: performance.now() - t0 }),
        });
      } catch (e) {
        // Nothing is lost: whatever did not compile ahead compiles on first use, as it always did.
        this.emit({
          event: 'log',
          line: `compiling ahead failed (${(e as Error).message ?? e}); compiling on first use`,
        });
      }
    });
    this.compileChain = job;
    this.compiles.set(key, job);
    return job;
  }

  private async translate(image: RgbImage, imageName: string, settings: TranslateSettings): Promise<TranslateResult> {
    const device = await this.ensureDevice();
    const g = this.generator;
    if (!g) throw new EngineError('checkpoint', 'Load a generator checkpoint first.');
    clearTimeout(this.photosTimer);
    if (settings.compileAhead ?? true) {
      const { width: w, height: h } = image;
      // Its own compile only: the photo sizes' may still be going on in the background.
      await this.compileAhead(g, isSmall(w, h) ? [w, h] : PHOTOS);
    }
    try {
      return await this.translateNow(device, g, image, imageName, settings);
    } finally {
      // Deferred photo sizes start once the page has stopped translating for a moment: started at once, they
      // would slow a translation asked for right after (a GPU process may compile in order with its work).
      if (this.photosLater === g) {
        this.photosTimer = setTimeout(() => {
          if (this.photosLater !== g || this.generator !== g) return;
          this.photosLater = null;
          void this.compileAhead(g, PHOTOS);
        }, PHOTOS_AFTER_IDLE_MS);
      }
    }
  }

  private async translateNow(
    device: Device,
    g: LoadedGenerator,
    image: RgbImage,
    imageName: string,
    settings: TranslateSettings,
  ): Promise<TranslateResult> {
    const firstUse = () => {
      const m = device.memory();
      return m.pipelinesCompiled - m.pipelinesCompiledAhead;
    };
    const compiled0 = firstUse();
    const t0 = performance.now();
    let last = 0;
    const onProgress = (done: number, total: number) => {
      const now = performance.now();
      if (now - last < PROGRESS_INTERVAL_MS && done < total) return;
      last = now;
      this.emit({ event: 'translateProgress', fraction: total > 0 ? done / total : 1 });
    };
    // Unknown until the first tile (the whole-image path reports only its end).
    this.emit({ event: 'translateProgress', fraction: null });
    let out: Awaited<ReturnType<typeof translateAnySize>>;
    try {
      // Whole-image when it fits one binding; larger photos run in exact tiles (activations in host memory).
      out = await translateAnySize(g.net, image, {
        multiple: sizeMultiple(g.spec),
        input_nc: g.spec.input_nc,
        maxGpuBytes: settings.maxGpuBytes ?? DEFAULT_MAX_GPU_BYTES,
        maxHostBytes: MAX_HOST_BYTES,
        name: imageName,
        onProgress,
      });
    } catch (e) {
      // The library's one line says what the image needs; what this page allows and can do about it go after.
      if ((e instanceof DataError || e instanceof ArgumentError) && /host memory/.test(e.message)) {
        throw new EngineError(
          'data',
          `${e.message}. This page allows ${MAX_HOST_BYTES / 2 ** 30} GiB (a tab that takes more is killed by the ` +
            'browser): scale the photo down, or translate it with the command-line tool (pnpm cyclegan translate, ' +
            '--max_host_memory), which can use more.',
        );
      }
      throw e;
    }
    return {
      image: tensorToImages(out.data, out.shape)[0],
      ms: performance.now() - t0,
      compiled: firstUse() - compiled0,
      tiled: out.tiled,
    };
  }

  private async startTraining(data: TrainData, options: TrainRunOptions): Promise<TrainSummary> {
    if (this.run?.running) throw new EngineError('options', 'Training is already running; pause it first.');
    this.run?.model?.dispose();
    this.run = null;
    const source = new MemoryImageSource();
    if (data.kind === 'synthetic') {
      const d = makeSyntheticDomains(data.n, data.size, new Rng(data.seed));
      source.addAll(`${options.dataroot}/trainA`, d.A);
      source.addAll(`${options.dataroot}/trainB`, d.B);
    } else {
      source.addAll(
        `${options.dataroot}/trainA`,
        data.A.map((f) => f.image),
      );
      source.addAll(
        `${options.dataroot}/trainB`,
        data.B.map((f) => f.image),
      );
    }
    const run: Run = {
      source,
      options,
      model: null,
      running: false,
      pauseRequested: false,
      pendingSample: null,
      io: new MemoryIO((image) => {
        run.pendingSample = image;
      }),
    };
    this.run = run;
    return this.runTraining(run, false);
  }

  private async resume(): Promise<TrainSummary> {
    const run = this.run;
    if (!run) throw new EngineError('options', 'Nothing to resume: start training first.');
    if (run.running) throw new EngineError('options', 'Training is already running.');
    run.model?.dispose();
    run.model = null;
    return this.runTraining(run, true);
  }

  /** One call of the library's trainer; pausing is its shouldStop hook, resuming its exact continue_train. */
  private async runTraining(run: Run, resume: boolean): Promise<TrainSummary> {
    const device = await this.ensureDevice();
    run.running = true;
    run.pauseRequested = false;
    let lastTime = performance.now();
    let lastIter = -1;
    let lastLosses: TrainProgress['losses'] | null = null;
    try {
      const result = await train(
        { ...run.options, continue_train: resume },
        {
          device,
          source: run.source,
          io: run.io,
          hooks: {
            onProgress: (p) => {
              if (lastIter < 0) lastIter = p.totalIters - 1;
              this.emit({
                event: 'progress',
                iter: p.totalIters,
                epoch: p.epoch,
                lastEpoch: p.lastEpoch,
                epochIter: p.epochIter,
                epochSize: p.epochSize,
                etaSec: p.etaSec,
                lr: p.lr,
              });
              if (p.losses !== lastLosses && Object.keys(p.losses).length > 0) {
                lastLosses = p.losses;
                const now = performance.now();
                const msPerIter = (now - lastTime) / Math.max(1, p.totalIters - lastIter);
                this.emit({
                  event: 'loss',
                  point: { iter: p.totalIters, epoch: p.epoch, losses: { ...p.losses }, msPerIter },
                });
                lastTime = now;
                lastIter = p.totalIters;
              }
              if (run.pendingSample) {
                this.emit({ event: 'sample', iter: p.totalIters, image: run.pendingSample });
                run.pendingSample = null;
              }
            },
            onLog: (line) => this.emit({ event: 'log', line }),
            shouldStop: () => run.pauseRequested,
          },
        },
      );
      run.model = result.model;
      return { stopped: result.stopped, totalIters: result.totalIters, seconds: result.seconds };
    } finally {
      run.running = false;
    }
  }

  private async exportGenerator(net: GeneratorNet, format: ExportFormat): Promise<{ bytes: Uint8Array; name: string }> {
    const run = this.run;
    if (!run?.model || run.running) {
      throw new EngineError('options', 'Pause or finish training before exporting the generators.');
    }
    const module = net === 'G_A' ? run.model.netG_A : run.model.netG_B;
    // ONNX: eval semantics (running batch-norm statistics, dropout as identity), as a deployed model runs.
    const bytes = await saveCheckpoint(module, format, {
      mode: 'eval',
      source: `${run.options.name ?? 'web'}_net_${net}`,
    });
    return { bytes, name: `${run.options.name ?? 'web'}_net_${net}.${format}` };
  }

  private async report(): Promise<{ html: string }> {
    const o = this.run?.options;
    const bytes = o ? this.run?.io.files.get(`${o.checkpoints_dir}/${o.name}/report.html`) : undefined;
    if (!bytes) throw new EngineError('options', 'No report yet: it is written when training pauses or ends.');
    return { html: new TextDecoder().decode(bytes) };
  }
}
