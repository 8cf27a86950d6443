import { readCheckpoint, type StateDict } from './checkpoint/index.js';
import { manifestName, readCheckpointSet, type SetIO, type SetPosition } from './checkpoint_set.js';
import { CheckpointError } from './errors.js';
import { type ModelTrainingState, NET_NAMES, type NetName } from './model.js';
import type { TrainOptions } from './options.js';
import { decodeTrainingState, type LoopState } from './training_state.js';

/** Only 'latest' carries the optimizers, pools and data order; epoch labels hold nets only, as officially. */
export const TRAIN_STATE_FILE = 'latest_train_state.safetensors';

type SetOptions = Pick<TrainOptions, 'checkpoints_dir' | 'name' | 'checkpoint_format' | 'epoch'>;

/** `<label>_net_<net>.<ext>` as the official save_networks. */
export function checkpointFileName(o: Pick<TrainOptions, 'checkpoint_format'>, label: string, net: string): string {
  return `${label}_net_${net}.${o.checkpoint_format}`;
}

export interface ResumeSet {
  nets: Map<NetName, StateDict>;
  /** null: restart optimizers, pools and data order (an epoch label, or a set saved without a state). */
  state: { loop: LoopState; model: ModelTrainingState } | null;
  /** Where the run stood when the set was saved, from its manifest (null without one). */
  savedAt: SetPosition | null;
}

/**
 * Reads the set `--epoch` names for `--continue_train` and checks it is one save (checkpoint_set.ts).
 * A set without a manifest (saved before manifests existed) is accepted with a warning: refusing would
 * strand every older run, and its files cannot be told apart from a consistent set anyway.
 */
export async function readResumeSet(o: SetOptions, io: SetIO, log: (line: string) => void): Promise<ResumeSet> {
  const dir = `${o.checkpoints_dir}/${o.name}`.replace(/\/+/g, '/');
  const label = o.epoch;
  const netFiles = NET_NAMES.map((n) => checkpointFileName(o, label, n));
  const names = label === 'latest' ? [...netFiles, TRAIN_STATE_FILE] : netFiles;
  const { files, manifest } = await readCheckpointSet(io, dir, label, names);
  if (!manifest) {
    log(
      `--continue_train: ${dir}/${manifestName(label)} does not exist (a run saved by an older version), ` +
        'so its files cannot be checked to come from one save; resuming anyway',
    );
  }
  const nets = new Map<NetName, StateDict>();
  NET_NAMES.forEach((net, i) => {
    const path = `${dir}/${netFiles[i]}`;
    const bytes = files.get(netFiles[i]);
    if (!bytes) {
      throw new CheckpointError(
        `--continue_train: no checkpoint '${label}' in ${dir} (${path} does not exist); ` +
          'train once without --continue_train first, or check --name, --checkpoints_dir and --epoch',
      );
    }
    nets.set(net, readCheckpoint(bytes, path));
  });
  // With a manifest, only a state it lists belongs to the set.
  const listed = !manifest || manifest.files.some((f) => f.name === TRAIN_STATE_FILE);
  const stateBytes = listed ? files.get(TRAIN_STATE_FILE) : null;
  const savedAt = manifest && { epoch: manifest.epoch, totalIters: manifest.totalIters };
  if (!stateBytes) return { nets, state: null, savedAt };
  const statePath = `${dir}/${TRAIN_STATE_FILE}`;
  const state = decodeTrainingState(stateBytes, statePath);
  if (manifest && state.loop.totalIters !== manifest.totalIters) {
    throw new CheckpointError(
      `${statePath}: saved at total_iters ${state.loop.totalIters} but ${dir}/${manifestName(label)} is from total_iters ${manifest.totalIters}; ` +
        'resume from an earlier save with --epoch <N>, or start over without --continue_train',
    );
  }
  return { nets, state, savedAt };
}
