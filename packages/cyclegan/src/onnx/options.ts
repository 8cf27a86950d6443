import type { GeneratorSpec } from '../infer.js';
import type { Norm } from '../options.js';

/**
 * Opset 17 (ONNX 1.12, IR version 8): every op we emit has had its current form there for years, so
 * onnxruntime from 1.12 on (CPU, wasm and the WebGPU EP of onnxruntime-web), TensorRT and OpenVINO
 * load it; it is the newest opset in which ReduceMean still takes `axes` as an attribute (opset 18 made
 * it an input, which older runtimes reject), and since opset 11 Pad takes its pads as an input and
 * supports `reflect`, which the resnet generators need.
 */
export const ONNX_OPSET = 17;
export const ONNX_IR_VERSION = 8;

/**
 * What the exported graph computes where PyTorch's train and eval modes differ:
 * - `eval`: BatchNormalization with the running statistics; Dropout is the identity (omitted).
 * - `train`: what the official test.py does without --eval: batch norm normalises with the
 *   statistics of the batch being run (mean and biased variance over N, H and W), built from
 *   ReduceMean/Sub/Mul/Sqrt/Div because BatchNormalization's training_mode is poorly supported by
 *   runtimes. The running statistics are not updated. A network with dropout is refused in train
 *   mode: its masks are random (ours are seeded), and ONNX cannot reproduce them.
 * Instance norm and norm 'none' are the same in both modes.
 */
export type OnnxMode = 'eval' | 'train';

/** networks.NLayerDiscriminator ('basic' is n_layers 3) or networks.PixelDiscriminator. */
export interface DiscriminatorSpec {
  kind: 'n_layers' | 'pixel';
  input_nc: number;
  ndf: number;
  norm: Norm;
  /** n_layers only: strided conv blocks (3 for 'basic'). */
  n_layers?: number;
}

/** The network an export describes, as inferred from a state dict or given. */
export type OnnxNetwork =
  | { role: 'generator'; spec: GeneratorSpec }
  | { role: 'discriminator'; spec: DiscriminatorSpec };

export interface ExportOnnxOptions {
  /** Default 'eval'. See OnnxMode. */
  mode?: OnnxMode;
  /** The architecture, skipping inference from the keys (a GeneratorSpec or a DiscriminatorSpec). */
  spec?: GeneratorSpec | DiscriminatorSpec;
  /** Generator overrides of what the keys say, as loadGenerator takes them ('auto' infers). */
  netG?: string;
  ngf?: number;
  norm?: Norm;
  /**
   * The generator has dropout layers. A resnet's dropout shows in its keys and is inferred; a U-Net's
   * leaves no key, so say so here, or a train-mode export of it is not refused.
   */
  use_dropout?: boolean;
  /** Discriminator checkpoints: which one ('basic' = n_layers 3), its n_layers and ndf; inferred when absent. */
  netD?: 'basic' | 'n_layers' | 'pixel';
  n_layers_D?: number;
  ndf?: number;
  /** Graph name and the `doc_string` / metadata `source` entry (e.g. the file name). */
  source?: string;
  /** Loader notes (dropped stale keys). */
  log?: (msg: string) => void;
}

export function isDiscriminatorSpec(s: GeneratorSpec | DiscriminatorSpec): s is DiscriminatorSpec {
  return s.kind === 'n_layers' || s.kind === 'pixel';
}
