// The bench peer: tfjs-backend-webgpu on the same Dawn adapter as ours
// (docs/ARCHITECTURE.md §10). This file sets Node globals (`navigator.gpu`, GPU* enums) that
// tfjs needs; nothing else in the repo does, and only `pnpm bench` loads it.
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import type * as tfc from '@tensorflow/tfjs-core';
import { registerTfjsGradients } from './tfjs_gradients.js';

export type Tf = typeof tfc;
export type TfTensor = tfc.Tensor;

/** The parts of tfjs's WebGPUBackend we use (its .d.ts pulls in an older @webgpu/types, so we do not import it). */
interface WebGpuBackendLike {
  device: GPUDevice;
  adapterInfo?: { vendor?: string; architecture?: string; description?: string };
  ensureCommandEncoderReady(): void;
  endComputePassEncoder(): void;
  submitQueue(): void;
}

export interface TfjsPeer {
  tf: Tf;
  name: string;
  adapter: { vendor: string; architecture: string; description: string };
  version: string;
  /** Gradient rules the bench had to register (tfjs-core's Node bundle ships none). */
  gradients: string[];
  /** Submits what tfjs has recorded and waits for the GPU to finish it (no readback). */
  sync(): Promise<void>;
  liveTensors(): number;
  /** Reads a tensor back (tfjs's dataSync needs OffscreenCanvas, so this is async). */
  read(t: TfTensor): Promise<Float32Array>;
  /** Destroys tfjs's GPUDevice and drops the Dawn instance so the process can exit. */
  release(): void;
}

type DawnModule = { create: (flags: string[]) => GPU; globals: object };

/**
 * `webgpu` is a dependency of @cg/tensor-core, not of the bench; resolve it
 * from there so both sides use the one installed copy of dawn.node.
 */
async function loadDawn(): Promise<DawnModule> {
  const req = createRequire(import.meta.resolve('@cg/tensor-core/node'));
  return (await import(pathToFileURL(req.resolve('webgpu')).href)) as DawnModule;
}

/** Holds the Dawn instance strongly while tfjs's device lives (dawn.node crashes if it is collected first). */
let dawnInstance: GPU | null = null;

export async function loadTfjs(): Promise<TfjsPeer> {
  process.env.XDG_RUNTIME_DIR ??= '/tmp';
  const dawn = await loadDawn();
  Object.assign(globalThis, dawn.globals);
  dawnInstance = dawn.create([]);
  (globalThis as { navigator?: unknown }).navigator = { gpu: dawnInstance };

  // tfjs-backend-webgpu registers itself on import only if navigator.gpu exists, so import after setting it.
  const tf = (await import('@tensorflow/tfjs-core')) as Tf;
  await import('@tensorflow/tfjs-backend-webgpu');
  const ok = await tf.setBackend('webgpu');
  if (!ok || tf.getBackend() !== 'webgpu') {
    throw new Error(`tfjs: could not start the webgpu backend (getBackend() = ${tf.getBackend()})`);
  }
  await tf.ready();
  const gradients = registerTfjsGradients(tf);
  const backend = tf.backend() as unknown as WebGpuBackendLike;
  const device = backend.device;
  const info = backend.adapterInfo ?? {};

  return {
    tf,
    name: 'tfjs',
    version: tf.version_core,
    gradients,
    adapter: {
      vendor: info.vendor ?? '',
      architecture: info.architecture ?? '',
      description: info.description ?? '',
    },
    async sync() {
      // tfjs batches dispatches in its own encoder (WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE); submit them first.
      backend.ensureCommandEncoderReady();
      backend.endComputePassEncoder();
      backend.submitQueue();
      await device.queue.onSubmittedWorkDone();
    },
    liveTensors: () => tf.memory().numTensors,
    async read(t) {
      return Float32Array.from((await t.data()) as Float32Array);
    },
    release() {
      tf.disposeVariables();
      device.destroy();
      (globalThis as { navigator?: unknown }).navigator = undefined;
      dawnInstance = null;
    },
  };
}
