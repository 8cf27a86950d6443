import { adamStep } from '@cg/kernels-wgsl';
import { ArgumentError, fmtShape, keep, Tensor } from '@cg/tensor-core';
import { StateDictError } from '../errors.js';
import type { HostTensor } from '../nn/module.js';
import type { Variable } from '../variable.js';

export interface AdamOptions {
  lr?: number;
  betas?: readonly [number, number];
  eps?: number;
  /** L2 penalty added to the gradient (torch.optim.Adam's weight_decay, not AdamW). */
  weightDecay?: number;
}

/** One parameter's optimizer state on the CPU (PyTorch: step, exp_avg, exp_avg_sq). */
export interface AdamParamState {
  step: number;
  expAvg: HostTensor;
  expAvgSq: HostTensor;
}

/** Everything needed to resume exactly: hyper-parameters and per-parameter state (null before its first step). */
export interface AdamStateDict {
  lr: number;
  betas: [number, number];
  eps: number;
  weightDecay: number;
  state: (AdamParamState | null)[];
}

interface Moments {
  step: number;
  m: Tensor;
  v: Tensor;
}

/**
 * torch.optim.Adam (non-amsgrad) with the fused adamStep kernel: one
 * dispatch per parameter updates it and its moments in place. Parameters
 * without a gradient are skipped; moments are created on a parameter's
 * first step; step counts are per parameter, as PyTorch's.
 */
export class Adam {
  readonly params: readonly Variable[];
  betas: [number, number];
  eps: number;
  weightDecay: number;
  private learningRate: number;
  private state: (Moments | null)[];

  constructor(params: Iterable<Variable>, options: AdamOptions = {}) {
    this.params = [...params];
    const seen = new Set<Variable>();
    for (const p of this.params) {
      if (seen.has(p)) throw new ArgumentError('Adam: a parameter appears twice in the list');
      seen.add(p);
    }
    this.learningRate = options.lr ?? 1e-3;
    const [b1, b2] = options.betas ?? [0.9, 0.999];
    this.betas = [b1, b2];
    this.eps = options.eps ?? 1e-8;
    this.weightDecay = options.weightDecay ?? 0;
    this.checkLr(this.learningRate);
    this.state = this.params.map(() => null);
  }

  get lr(): number {
    return this.learningRate;
  }

  /** For schedulers: the rate the next step() uses. */
  setLearningRate(lr: number): void {
    this.checkLr(lr);
    this.learningRate = lr;
  }

  private checkLr(lr: number): void {
    if (!(lr >= 0) || !Number.isFinite(lr)) throw new ArgumentError(`Adam: lr must be a finite number >= 0, got ${lr}`);
  }

  /** One update of every parameter that has a gradient. Records GPU work; reads nothing back. */
  step(): void {
    this.params.forEach((p, i) => {
      if (!p.grad) return;
      let s = this.state[i];
      if (!s) {
        s = { step: 0, m: keep(Tensor.zeros(p.device, p.shape)), v: keep(Tensor.zeros(p.device, p.shape)) };
        this.state[i] = s;
      }
      s.step++;
      adamStep(p.data, p.grad, s.m, s.v, {
        lr: this.learningRate,
        beta1: this.betas[0],
        beta2: this.betas[1],
        eps: this.eps,
        weightDecay: this.weightDecay,
        step: s.step,
      });
    });
  }

  /** Frees every parameter's gradient (set_to_none). */
  zeroGrad(): void {
    for (const p of this.params) p.zeroGrad();
  }

  /** The optimizer state read back to the CPU, for checkpoints. */
  async stateDict(): Promise<AdamStateDict> {
    const state = await Promise.all(
      this.state.map(async (s) => {
        if (!s) return null;
        const [m, v] = await Promise.all([s.m.toArray(), s.v.toArray()]);
        return {
          step: s.step,
          expAvg: { shape: [...s.m.shape], data: m },
          expAvgSq: { shape: [...s.v.shape], data: v },
        };
      }),
    );
    return { lr: this.learningRate, betas: [...this.betas], eps: this.eps, weightDecay: this.weightDecay, state };
  }

  /** Restores a stateDict() (same parameters in the same order); checks everything before changing anything. */
  loadStateDict(sd: AdamStateDict): void {
    if (sd.state.length !== this.params.length) {
      throw new StateDictError(
        `Adam.loadStateDict: the state has ${sd.state.length} parameters, this optimizer ${this.params.length}`,
      );
    }
    const problems: string[] = [];
    sd.state.forEach((s, i) => {
      if (!s) return;
      const shape = this.params[i].shape;
      for (const [name, t] of [
        ['expAvg', s.expAvg],
        ['expAvgSq', s.expAvgSq],
      ] as const) {
        const fits = t.shape.length === shape.length && t.shape.every((d, j) => d === shape[j]);
        if (!fits || t.data.length !== this.params[i].size) {
          problems.push(`param ${i} ${name}: expected ${fmtShape(shape)}, got ${fmtShape(t.shape)}`);
        }
      }
      if (!(Number.isInteger(s.step) && s.step >= 1))
        problems.push(`param ${i}: step must be an integer >= 1, got ${s.step}`);
    });
    if (problems.length)
      throw new StateDictError(`Adam.loadStateDict: the state does not fit\n  ${problems.join('\n  ')}`);
    this.checkLr(sd.lr);
    this.disposeState();
    this.learningRate = sd.lr;
    this.betas = [sd.betas[0], sd.betas[1]];
    this.eps = sd.eps;
    this.weightDecay = sd.weightDecay;
    this.state = sd.state.map((s, i) => {
      if (!s) return null;
      const device = this.params[i].device;
      const shape = this.params[i].shape;
      return {
        step: s.step,
        m: keep(Tensor.fromArray(device, s.expAvg.data, shape)),
        v: keep(Tensor.fromArray(device, s.expAvgSq.data, shape)),
      };
    });
  }

  /** Tensors the optimizer owns (its moments); tidy() keeps them when an optimizer escapes a scope. */
  scopeTensors(): Tensor[] {
    return this.state.flatMap((s) => (s ? [s.m, s.v] : []));
  }

  /** Frees the moments (not the parameters). */
  dispose(): void {
    this.disposeState();
    this.state = this.params.map(() => null);
  }

  private disposeState(): void {
    for (const s of this.state) {
      s?.m.dispose();
      s?.v.dispose();
    }
  }
}
