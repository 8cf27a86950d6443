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

export type Request =
  | { op: 'init' }
  | { op: 'loadCheckpoint'; bytes: Uint8Array; name: string }
  | { op: 'translate'; image: RgbImage }
  | { op: 'train'; data: TrainData; options: TrainRunOptions }
  | { op: 'pause' }
  | { op: 'resume' }
  | { op: 'export'; net: GeneratorNet; format: ExportFormat }
  | { op: 'report' }
  | { op: 'loseDevice' };

export interface ReplyMap {
  init: AdapterInfo;
  loadCheckpoint: GeneratorInfo;
  translate: { image: RgbImage; ms: number };
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
  | { event: 'deviceLost'; message: string };

export type ToEngine = { id: number; req: Request };
export type FromEngine =
  | { id: number; ok: true; result: unknown }
  | { id: number; ok: false; error: ErrorInfo }
  | EngineEvent;
