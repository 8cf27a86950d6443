// Messages between the page (main.ts and its panels) and the engine (engine.ts), which runs in a Worker or,
// where a Worker has no WebGPU, in the page itself. Everything here is structured-clonable.
import type { GeneratorSpec, RgbImage, TrainOptions } from '@cg/cyclegan';

export type ErrorKind = 'no-webgpu' | 'device-lost' | 'checkpoint' | 'data' | 'options' | 'other';

export interface ErrorInfo {
  kind: ErrorKind;
  name: string;
  message: string;
}

export interface AdapterInfo {
  description: string;
  vendor: string;
  architecture: string;
  isSoftware: boolean;
  features: string[];
  /** Where the GPU work runs. */
  thread: 'worker' | 'page';
}

export interface NamedImage {
  name: string;
  image: RgbImage;
}

/** Training data: the built-in synthetic pair of domains, or images the user dropped. */
export type TrainData =
  | { kind: 'synthetic'; n: number; size: number; seed: number }
  | { kind: 'files'; A: NamedImage[]; B: NamedImage[] };

export type TrainRunOptions = Partial<TrainOptions> & { dataroot: string };

export type GeneratorNet = 'G_A' | 'G_B';

/** What a trained generator can be exported as (one `button.export` per net and format in index.html). */
export type ExportFormat = 'safetensors' | 'pth' | 'onnx';

export interface GeneratorInfo {
  spec: GeneratorSpec;
  netG: string;
  params: number;
  multiple: number;
  notes: string[];
}

export interface LossPoint {
  iter: number;
  epoch: number;
  losses: Record<string, number>;
  /** Wall time of the iterations since the previous point, per iteration. */
  msPerIter: number;
}

export interface TrainSummary {
  stopped: boolean;
  totalIters: number;
  seconds: number;
}

/** How the page translates, from its URL (main.ts). */
export interface TranslateSettings {
  /** `?maxGpuMB=`: GPU bytes a translation may take at once (TiledOptions.maxGpuBytes; engine.ts has the default). */
  maxGpuBytes?: number;
  /** `?compileAhead=0`: compile each kernel on first use instead (as before; to compare or rule it out). */
  compileAhead?: boolean;
}

export interface TranslateResult {
  image: RgbImage;
  /** The translation itself, after any compile ahead it waited for. */
  ms: number;
  /** Pipelines the translation still compiled on first use (0 when compiling ahead covered it). */
  compiled: number;
  /** True when it ran in tiles, with activations in host memory. */
  tiled: boolean;
}

export type Request =
  | { op: 'init' }
  /** `imageSize`: the image on the page, [width, height], whose pipelines are compiled ahead too. */
  | {
      op: 'loadCheckpoint';
      bytes: Uint8Array;
      name: string;
      imageSize?: [number, number];
      settings?: TranslateSettings;
    }
  /** `name`: the image's file, for messages. */
  | { op: 'translate'; image: RgbImage; name: string; settings?: TranslateSettings }
  | { op: 'train'; data: TrainData; options: TrainRunOptions }
  | { op: 'pause' }
  | { op: 'resume' }
  | { op: 'export'; net: GeneratorNet; format: ExportFormat }
  | { op: 'report' }
  | { op: 'loseDevice' };

export interface ReplyMap {
  init: AdapterInfo;
  loadCheckpoint: GeneratorInfo;
  translate: TranslateResult;
  train: TrainSummary;
  pause: null;
  resume: TrainSummary;
  export: { bytes: Uint8Array; name: string };
  report: { html: string };
  loseDevice: null;
}

export type EngineEvent =
  | {
      event: 'progress';
      iter: number;
      epoch: number;
      lastEpoch: number;
      epochIter: number;
      epochSize: number;
      etaSec: number;
      lr: number;
    }
  | { event: 'loss'; point: LossPoint }
  | { event: 'sample'; iter: number; image: RgbImage }
  | { event: 'log'; line: string }
  /** Compiling the loaded generator's pipelines ahead: `done` of `total`, `ms` since it started. */
  | { event: 'compileProgress'; done: number; total: number; ms: number }
  /** A translation's share done, 0 … 1 (tiled: by convolution multiply-adds); null while not known. */
  | { event: 'translateProgress'; fraction: number | null }
  | { event: 'deviceLost'; message: string };

export type ToEngine = { id: number; req: Request };
export type FromEngine =
  | { id: number; ok: true; result: unknown }
  | { id: number; ok: false; error: ErrorInfo }
  | EngineEvent;
