// Node-only entry (`@cg/cyclegan/node`): file IO for datasets, checkpoints and results.
import { readFile } from 'node:fs/promises';
import type { nn } from '@cg/autograd';
import type { Device } from '@cg/tensor-core';
import { readCheckpoint, type StateDict } from './checkpoint/index.js';
import { encodePng, writeFileAtomic } from './data/fs-images.js';
import { CheckpointError } from './errors.js';
import { type LoadGeneratorOptions, loadGenerator } from './generator_io.js';
import type { GeneratorSpec } from './infer.js';
import type { TrainerIO } from './trainer.js';

export { requestDevice } from '@cg/tensor-core/node';
export * from './data/fs-images.js';

/** Reads a checkpoint file (.pth zip or legacy, .safetensors) into a state dict. */
export async function readCheckpointFile(path: string, log?: (msg: string) => void): Promise<StateDict> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (e) {
    throw new CheckpointError(
      `${path}: cannot read the checkpoint (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
    );
  }
  return readCheckpoint(bytes, path, log);
}

/** Loads a generator checkpoint file, inferring its architecture from the keys. */
export async function loadGeneratorFile(
  device: Device,
  path: string,
  options: LoadGeneratorOptions = {},
): Promise<{ net: nn.Module; spec: GeneratorSpec }> {
  const sd = await readCheckpointFile(path, options.log);
  return loadGenerator(device, sd, { source: path, ...options });
}

/** The trainer's file system on Node: atomic writes, PNG via pngjs. */
export const nodeTrainerIO: TrainerIO = {
  writeFile: writeFileAtomic,
  async readFile(path) {
    try {
      return await readFile(path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw e;
    }
  },
  encodePng: async (image) => encodePng(image),
};
