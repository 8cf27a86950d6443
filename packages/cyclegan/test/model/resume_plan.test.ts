import { OptionError } from '@cg/cyclegan';
import { describe, expect, it } from 'vitest';
import { planRunStart, type SavedPosition } from '../../src/resume_plan.js';
import { learningRateAt } from '../../src/scheduler.js';

const schedule = { n_epochs: 1, n_epochs_decay: 2, lr: 0.0002, lr_policy: 'linear' as const, lr_decay_iters: 50 };
/** After two full epochs of a run started at epoch 1: the next iteration belongs to epoch 3. */
const afterTwo: SavedPosition = { epoch: 3, epochIter: 0, totalIters: 10, schedulerSteps: 2, epochSize: 5 };

/** The official lr of epoch `e`: 1 − max(0, e − n_epochs) / (n_epochs_decay + 1). */
const officialLr = (e: number) =>
  schedule.lr * (1 - Math.max(0, e - schedule.n_epochs) / (schedule.n_epochs_decay + 1));

describe('the resume rule (planRunStart)', () => {
  it('a fresh run starts at --epoch_count, with the official learning rate of that epoch', () => {
    const start = planRunStart({ ...schedule, epoch_count: 2 }, true, null);
    expect(start).toEqual({ epoch: 2, scheduleEpochCount: 2 });
    expect(learningRateAt({ ...schedule, epoch_count: start.scheduleEpochCount }, 0)).toBeCloseTo(officialLr(2), 12);
  });

  it('exact resume uses the saved epoch and the saved schedule, with or without an agreeing --epoch_count', () => {
    for (const given of [false, true]) {
      const start = planRunStart({ ...schedule, epoch_count: given ? 3 : 1 }, given, afterTwo);
      expect(start.epoch).toBe(3);
      // The case: saved steps 2 + epoch_count 3 gave epoch 5 and lr −6.7e-5.
      const lr = learningRateAt({ ...schedule, epoch_count: start.scheduleEpochCount }, afterTwo.schedulerSteps);
      expect(lr).toBeCloseTo(officialLr(3), 12);
      expect(lr).toBeGreaterThan(0);
    }
  });

  it('keeps the schedule of a run that was itself started with --epoch_count', () => {
    // Started at epoch 5 the official way, stopped after two epochs: steps 2, next epoch 7.
    const saved = { epoch: 7, epochIter: 3, totalIters: 13, schedulerSteps: 2, epochSize: 5 };
    const o = { ...schedule, n_epochs: 5, n_epochs_decay: 5 };
    const start = planRunStart({ ...o, epoch_count: 1 }, false, saved);
    const lr = learningRateAt({ ...o, epoch_count: start.scheduleEpochCount }, saved.schedulerSteps);
    expect(lr).toBeCloseTo(o.lr * (1 - 2 / 6), 12);
  });

  it('refuses an --epoch_count that disagrees with the saved state, saying the saved epoch and what to pass', () => {
    const run = () => planRunStart({ ...schedule, epoch_count: 2 }, true, { ...afterTwo, epochIter: 4 });
    expect(run).toThrow(OptionError);
    expect(run).toThrow(/--epoch_count 2 disagrees with the saved training state, which is at epoch 3 \(4 images/);
    expect(run).toThrow(/pass --epoch_count 3\)/);
  });

  it("reads a state saved after an epoch's last batch as the end of that epoch", () => {
    // Stopped at iteration 10 of 5-image epochs: epoch 2 is done but its end (scheduler step) is not.
    const atEnd = { epoch: 2, epochIter: 5, totalIters: 10, schedulerSteps: 1, epochSize: 5 };
    expect(planRunStart({ ...schedule, epoch_count: 3 }, true, atEnd)).toEqual({ epoch: 2, scheduleEpochCount: 1 });
    expect(() => planRunStart({ ...schedule, epoch_count: 2 }, true, atEnd)).toThrow(
      /which is at the end of epoch 2, total_iters 10; leave out --epoch_count \(or pass --epoch_count 3\)/,
    );
    const lastDone = { ...atEnd, epoch: 3, totalIters: 15, schedulerSteps: 2 };
    expect(() => planRunStart({ ...schedule, epoch_count: 1 }, false, lastDone)).toThrow(/this run has finished/);
  });

  it('refuses to start past the end of the schedule, fresh or resumed', () => {
    expect(() => planRunStart({ ...schedule, epoch_count: 4 }, true, null)).toThrow(/past the end of the schedule/);
    const finished = { epoch: 4, epochIter: 0, totalIters: 15, schedulerSteps: 3, epochSize: 5 };
    expect(() => planRunStart({ ...schedule, epoch_count: 1 }, false, finished)).toThrow(
      /this run has finished; to train longer raise --n_epochs_decay/,
    );
    // Raising the schedule lets it go on, at a positive rate.
    const longer = { ...schedule, n_epochs_decay: 4 };
    const start = planRunStart({ ...longer, epoch_count: 1 }, false, finished);
    expect(learningRateAt({ ...longer, epoch_count: start.scheduleEpochCount }, 3)).toBeGreaterThan(0);
  });
});
