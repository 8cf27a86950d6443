import { OptionError } from './errors.js';
import type { TrainOptions } from './options.js';

/** Where a saved training state stands: the epoch (official numbering) the next iteration belongs to. */
export interface SavedPosition {
  epoch: number;
  epochIter: number;
  totalIters: number;
  /** scheduler.step() calls made so far, once per finished epoch. */
  schedulerSteps: number;
  /** Images per epoch. A state with epochIter = epochSize was saved after an epoch's last batch, before its end. */
  epochSize: number;
}

export interface RunStart {
  /** The epoch the first iteration of this run belongs to. */
  epoch: number;
  /**
   * The epoch_count to build the scheduler with. The linear schedule reads the epoch being trained as
   * steps + epoch_count, so a restored step count needs the epoch_count its run started from, not today's.
   */
  scheduleEpochCount: number;
}

/**
 * The resume rule. With a training state (`--continue_train`, `--epoch latest`, a verified set), training
 * continues exactly where the state was saved: its epoch, position in the epoch and learning-rate schedule.
 * `--epoch_count` is then not needed; given (the official habit: after epoch N-1, `--epoch_count N`), it must
 * equal the saved epoch (N when the state lies in epoch N, or N+1 when it was saved after epoch N's last
 * batch), and any other value is refused with an OptionError that says the saved epoch. Not
 * honoured, because in our runs a disagreement means the state is older than the user thinks ('latest' is
 * saved every --save_latest_freq, not at epoch ends), and applying it would skip or repeat data silently.
 * Without a training state (an epoch label such as `--epoch 5`, or a run saved without one), the official
 * behaviour holds: fresh optimizers, training starts at `--epoch_count` with the learning rate
 * lr · (1 − max(0, epoch_count − n_epochs) / (n_epochs_decay + 1)). Either way a start past
 * n_epochs + n_epochs_decay is refused up front: there is nothing to train and the linear rate would be ≤ 0.
 */
export function planRunStart(
  o: Pick<TrainOptions, 'epoch_count' | 'n_epochs' | 'n_epochs_decay'>,
  epochCountGiven: boolean,
  saved: SavedPosition | null,
): RunStart {
  const lastEpoch = o.n_epochs + o.n_epochs_decay;
  const schedule = `--n_epochs ${o.n_epochs} + --n_epochs_decay ${o.n_epochs_decay} = ${lastEpoch} epochs`;
  if (!saved) {
    if (o.epoch_count > lastEpoch) {
      throw new OptionError(
        `--epoch_count ${o.epoch_count} is past the end of the schedule (${schedule}), where the learning rate would be ≤ 0; ` +
          'lower --epoch_count or raise --n_epochs / --n_epochs_decay',
      );
    }
    return { epoch: o.epoch_count, scheduleEpochCount: o.epoch_count };
  }
  // The loop still starts in saved.epoch, to finish it (scheduler step, epoch save) when nothing of it is left.
  const complete = saved.epochIter >= saved.epochSize;
  const next = complete ? saved.epoch + 1 : saved.epoch;
  const where =
    (complete
      ? `the end of epoch ${saved.epoch}`
      : `epoch ${saved.epoch}${saved.epochIter > 0 ? ` (${saved.epochIter} images into it)` : ''}`) +
    `, total_iters ${saved.totalIters}`;
  if (epochCountGiven && o.epoch_count !== next) {
    throw new OptionError(
      `--epoch_count ${o.epoch_count} disagrees with the saved training state, which is at ${where}; ` +
        `leave out --epoch_count (or pass --epoch_count ${next}) to resume exactly there, ` +
        `or restart at epoch ${o.epoch_count} the official way (fresh optimizers) from an epoch's nets with --epoch <N> --epoch_count ${o.epoch_count}`,
    );
  }
  if (next > lastEpoch) {
    throw new OptionError(
      `--continue_train: the saved training state is at ${where}, past the end of the schedule (${schedule}): ` +
        'this run has finished; to train longer raise --n_epochs_decay (or --n_epochs)',
    );
  }
  return { epoch: saved.epoch, scheduleEpochCount: saved.epoch - saved.schedulerSteps };
}
