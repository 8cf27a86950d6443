import type { AdamStateDict } from '@cg/autograd';
import { readSafetensors, type StateDict, writeSafetensors } from './checkpoint/index.js';
import type { DataState } from './data/dataset.js';
import { CheckpointError } from './errors.js';
import type { ModelTrainingState } from './model.js';

/** Where the loop stands, beside the model's state, for an exact --continue_train. */
export interface LoopState {
  /** The epoch (official numbering, from epoch_count) the next iteration belongs to. */
  epoch: number;
  epochIter: number;
  totalIters: number;
  data: DataState;
}

const FORMAT = 'cyclegan-webgpu/train-state/1';

/**
 * One safetensors file: tensors for optimizer moments and pooled images,
 * everything else (steps, learning rates, RNG states, loop position) as JSON
 * in the header metadata.
 */
export function encodeTrainingState(loop: LoopState, model: ModelTrainingState): Uint8Array {
  const sd: StateDict = new Map();
  const opt = (name: string, s: AdamStateDict) => {
    s.state.forEach((p, i) => {
      if (!p) return;
      sd.set(`${name}.${i}.exp_avg`, { dtype: 'float32', shape: [...p.expAvg.shape], data: p.expAvg.data });
      sd.set(`${name}.${i}.exp_avg_sq`, { dtype: 'float32', shape: [...p.expAvgSq.shape], data: p.expAvgSq.data });
    });
    return { ...s, state: s.state.map((p) => (p ? { step: p.step } : null)) };
  };
  const pool = (name: string, images: ModelTrainingState['poolA']['images']) => {
    images.forEach((im, i) => {
      sd.set(`${name}.${i}`, { dtype: 'float32', shape: [...im.shape], data: im.data });
    });
    return images.length;
  };
  const meta = {
    loop,
    optimizerG: opt('optimizer_G', model.optimizerG),
    optimizerD: opt('optimizer_D', model.optimizerD),
    schedulerSteps: model.schedulerSteps,
    rng: model.rng,
    poolRng: model.poolRng,
    poolA: pool('pool_A', model.poolA.images),
    poolB: pool('pool_B', model.poolB.images),
  };
  return writeSafetensors(sd, { format: FORMAT, state: JSON.stringify(meta) });
}

export function decodeTrainingState(bytes: Uint8Array, source: string): { loop: LoopState; model: ModelTrainingState } {
  const { tensors, metadata } = readWithMetadata(bytes, source);
  if (metadata.format !== FORMAT || !metadata.state) {
    throw new CheckpointError(
      `${source}: not a training-state file of this project (format ${metadata.format ?? 'missing'})`,
    );
  }
  let meta: { loop?: LoopState } & Record<string, never>;
  try {
    meta = JSON.parse(metadata.state);
  } catch (e) {
    throw new CheckpointError(
      `${source}: the training state is unreadable (${(e as Error).message}); resume from an epoch's nets with --epoch <N>, or start over without --continue_train`,
    );
  }
  if (!meta?.loop) throw new CheckpointError(`${source}: the training state has no loop position`);
  const tensor = (key: string) => {
    const t = tensors.get(key);
    if (!t) throw new CheckpointError(`${source}: missing tensor ${key}`);
    return { shape: [...t.shape], data: t.data };
  };
  const opt = (
    name: string,
    s: { state: ({ step: number } | null)[] } & Omit<AdamStateDict, 'state'>,
  ): AdamStateDict => ({
    ...s,
    state: s.state.map((p, i) =>
      p ? { step: p.step, expAvg: tensor(`${name}.${i}.exp_avg`), expAvgSq: tensor(`${name}.${i}.exp_avg_sq`) } : null,
    ),
  });
  const pool = (name: string, n: number) => ({ images: Array.from({ length: n }, (_, i) => tensor(`${name}.${i}`)) });
  return {
    loop: meta.loop,
    model: {
      optimizerG: opt('optimizer_G', meta.optimizerG),
      optimizerD: opt('optimizer_D', meta.optimizerD),
      schedulerSteps: meta.schedulerSteps,
      rng: meta.rng,
      poolRng: meta.poolRng,
      poolA: pool('pool_A', meta.poolA),
      poolB: pool('pool_B', meta.poolB),
    },
  };
}

function readWithMetadata(bytes: Uint8Array, source: string): { tensors: StateDict; metadata: Record<string, string> } {
  const tensors = readSafetensors(bytes, source);
  // The header was validated by readSafetensors; read its __metadata__ too.
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  return { tensors, metadata: header.__metadata__ ?? {} };
}
