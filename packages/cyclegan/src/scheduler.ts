import type { LrPolicy } from './options.js';

export interface SchedulerOptions {
  lr_policy: LrPolicy;
  lr: number;
  n_epochs: number;
  n_epochs_decay: number;
  epoch_count: number;
  lr_decay_iters: number;
}

/**
 * The official learning-rate schedules (networks.get_scheduler). `steps`
 * counts scheduler.step() calls, made once at the end of every epoch, so the
 * first epoch runs at steps = 0. For 'linear', steps + epoch_count is the
 * epoch being trained, so restored steps must meet the epoch_count of the run
 * that made them, not a new --epoch_count (planRunStart in resume_plan.ts).
 */
export function learningRateAt(o: SchedulerOptions, steps: number): number {
  switch (o.lr_policy) {
    case 'linear': {
      const factor = 1 - Math.max(0, steps + o.epoch_count - o.n_epochs) / (o.n_epochs_decay + 1);
      return o.lr * factor;
    }
    case 'step':
      return o.lr * 0.1 ** Math.floor(steps / o.lr_decay_iters);
    case 'cosine': {
      // CosineAnnealingLR(T_max = n_epochs, eta_min = 0), closed form.
      return (o.lr * (1 + Math.cos((Math.PI * steps) / o.n_epochs))) / 2;
    }
  }
}

export class LrScheduler {
  steps = 0;
  constructor(private readonly o: SchedulerOptions) {}

  get lr(): number {
    return learningRateAt(this.o, this.steps);
  }

  /** Advances one epoch; returns [old, new] learning rate as the official log line prints. */
  step(): [number, number] {
    const old = this.lr;
    this.steps++;
    return [old, this.lr];
  }
}
