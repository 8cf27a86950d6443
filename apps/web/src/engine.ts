// All GPU work of the app: one device, the loaded generator, and a training run. Runs in a Worker
// (worker.ts) so the page stays responsive; where a Worker has no WebGPU it runs in the page (client.ts).
// It uses the packages exactly as any outside user would.
import {
  CheckpointError,
  type CycleGANModel,
  DataError,
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
  train,
  translateImageAnySize,
} from '@cg/cyclegan';
import { type Device, DeviceError, Rng } from '@cg/tensor-core';
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
} from './protocol.js';

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
  private generator: { net: Generator; spec: GeneratorSpec } | null = null;
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
        return this.loadCheckpoint(req.bytes, req.name);
      case 'translate':
        return this.translate(req.image);
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

  private async loadCheckpoint(bytes: Uint8Array, name: string): Promise<GeneratorInfo> {
    const notes: string[] = [];
    // Parse before touching the GPU, so a bad file is reported as such even without WebGPU.
    const sd = readCheckpoint(bytes, name, (m) => notes.push(m));
    const device = await this.ensureDevice();
    const loaded = loadGenerator(device, sd, { source: name, log: (m) => notes.push(m) });
    this.generator?.net.dispose();
    this.generator = loaded;
    return {
      spec: loaded.spec,
      netG: netGName(loaded.spec),
      params: loaded.net.numParameters(),
      multiple: sizeMultiple(loaded.spec),
      notes,
    };
  }

  private async translate(image: RgbImage): Promise<{ image: RgbImage; ms: number }> {
    await this.ensureDevice();
    const g = this.generator;
    if (!g) throw new EngineError('checkpoint', 'Load a generator checkpoint first.');
    const t0 = performance.now();
    // Whole-image when it fits one binding; larger photos run in exact tiles (activations in host memory).
    const out = await translateImageAnySize(g.net, image, {
      multiple: sizeMultiple(g.spec),
      input_nc: g.spec.input_nc,
    });
    return { image: out, ms: performance.now() - t0 };
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
