// The generators of a training run, as `test` and `evaluate` load them: `<checkpoints_dir>/<name>/<epoch>_net_G_A`
// in the run's checkpoint format, or the other format when only that one is there.
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { nn } from '@cg/autograd';
import type { Device } from '@cg/tensor-core';
import { CheckpointError } from './errors.js';
import type { LoadGeneratorOptions } from './generator_io.js';
import { loadGeneratorFile } from './node.js';
import type { TrainOptions } from './options.js';
import { checkpointPath } from './trainer.js';

type RunOptions = Pick<TrainOptions, 'checkpoints_dir' | 'name' | 'checkpoint_format'> & { epoch: string };

/** Which file holds `net` of this run's `epoch`, or null when neither format is there. */
async function findRunCheckpoint(o: RunOptions, net: 'G_A' | 'G_B'): Promise<string | null> {
  const formats = [o.checkpoint_format, o.checkpoint_format === 'pth' ? 'safetensors' : 'pth'] as const;
  for (const checkpoint_format of formats) {
    const path = checkpointPath({ ...o, checkpoint_format }, o.epoch, net);
    const found = await stat(path).then(
      (s) => s.isFile(),
      () => false,
    );
    if (found) return path;
  }
  return null;
}

/**
 * Loads generator `net` of a run. The architecture comes from the checkpoint's keys unless
 * `overrides` (the user's --netG/--ngf/--norm) name it; a file that is there but unreadable is an
 * error of its own, never mistaken for a missing one.
 */
export async function loadRunGenerator(
  device: Device,
  o: RunOptions,
  net: 'G_A' | 'G_B',
  overrides: Pick<LoadGeneratorOptions, 'netG' | 'ngf' | 'norm' | 'log'>,
  command: string,
): Promise<nn.Module> {
  const path = await findRunCheckpoint(o, net);
  if (path === null) {
    throw new CheckpointError(
      `${command}: no ${o.epoch}_net_${net}.{safetensors,pth} in ${join(o.checkpoints_dir, o.name)}; train first or check --name, --epoch and --checkpoints_dir`,
    );
  }
  return (await loadGeneratorFile(device, path, overrides)).net;
}
