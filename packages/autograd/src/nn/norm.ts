import * as K from '@cg/kernels-wgsl';
import { type Device, keep, Tensor, tidy } from '@cg/tensor-core';
import { F } from '../F.js';
import { parameter, type Variable } from '../variable.js';
import { getDefaultDevice, type LayerOptions } from './defaults.js';
import { Module } from './module.js';

export interface NormOptions extends LayerOptions {
  eps?: number;
  /** running = (1 − momentum)·running + momentum·batch. */
  momentum?: number;
  affine?: boolean;
  trackRunningStats?: boolean;
}

/** Shared parameters and buffers of the norm layers, registered in PyTorch's order. */
abstract class NormBase extends Module {
  readonly weight: Variable | null;
  readonly bias: Variable | null;
  readonly eps: number;
  readonly momentum: number;
  readonly affine: boolean;
  readonly trackRunningStats: boolean;

  constructor(
    readonly numFeatures: number,
    options: NormOptions,
    defaults: { affine: boolean; trackRunningStats: boolean },
  ) {
    super();
    const device: Device = options.device ?? getDefaultDevice();
    this.eps = options.eps ?? 1e-5;
    this.momentum = options.momentum ?? 0.1;
    this.affine = options.affine ?? defaults.affine;
    this.trackRunningStats = options.trackRunningStats ?? defaults.trackRunningStats;
    const C = numFeatures;
    this.weight = this.registerParameter('weight', this.affine ? parameter(Tensor.full(device, [C], 1)) : null);
    this.bias = this.registerParameter('bias', this.affine ? parameter(Tensor.zeros(device, [C])) : null);
    const track = this.trackRunningStats;
    this.registerBuffer('running_mean', track ? keep(Tensor.zeros(device, [C])) : null);
    this.registerBuffer('running_var', track ? keep(Tensor.full(device, [C], 1)) : null);
    // int64 in PyTorch; a float32 [] here (exact up to 2^24 steps).
    this.registerBuffer('num_batches_tracked', track ? keep(Tensor.zeros(device, [])) : null);
  }

  protected running(): { mean: Tensor; var: Tensor } | null {
    if (!this.trackRunningStats) return null;
    return { mean: this.getBuffer('running_mean')!, var: this.getBuffer('running_var')! };
  }

  protected countBatch(): void {
    const n = this.getBuffer('num_batches_tracked');
    if (n) tidy(() => copyInto(K.addScalar(n, 1), n));
  }
}

/** Writes `src` into `dst`'s buffer, so everyone holding `dst` (stateDict users) sees the update. */
function copyInto(src: Tensor, dst: Tensor): void {
  src.device.copy(src.buffer, dst.buffer, dst.byteLength);
}

/**
 * PyTorch's nn.InstanceNorm2d: each (n, c) plane normalised with its own
 * statistics. Defaults affine=false, trackRunningStats=false (CycleGAN's
 * `--norm instance`). With trackRunningStats, training updates the running
 * statistics with the batch average of the per-instance ones and eval
 * normalises with them, as PyTorch.
 */
export class InstanceNorm2d extends NormBase {
  constructor(numFeatures: number, options: NormOptions = {}) {
    super(numFeatures, options, { affine: false, trackRunningStats: false });
  }

  /** Whether a fused chain may replace this layer's forward: plane statistics, no running ones to update or use. */
  fusable(): boolean {
    return !this.trackRunningStats;
  }

  forward(x: Variable): Variable {
    const running = this.running();
    if (running && !this.training) {
      return F.batchNorm2d(x, running.mean, running.var, this.weight, this.bias, { training: false, eps: this.eps });
    }
    if (!running) return F.instanceNorm2d(x, this.weight, this.bias, this.eps);
    // Training with running stats: the statistics come back from the kernel.
    const r = K.instanceNorm2d(x.data, null, null, this.eps);
    r.y.dispose();
    this.updateRunning(running, r.mean, r.invStd, x.shape);
    return F.instanceNorm2d(x, this.weight, this.bias, this.eps);
  }

  private updateRunning(
    running: { mean: Tensor; var: Tensor },
    mean: Tensor,
    invStd: Tensor,
    shape: readonly number[],
  ) {
    const [N, C, H, W] = shape;
    const count = H * W;
    const unbias = count > 1 ? count / (count - 1) : 1;
    const m = this.momentum;
    tidy(() => {
      const batchMean = K.mean(mean.reshape([N, C]), [0]);
      // var = 1/invStd² − eps per plane, made unbiased, averaged over the batch.
      const variance = K.binaryMap('invStdToVar', '1.0 / (a * a) - p', invStd, invStd, this.eps);
      const batchVar = K.sum(variance.reshape([N, C]), [0], false, unbias / N);
      copyInto(K.addScaled(K.scale(running.mean, 1 - m), batchMean, m), running.mean);
      copyInto(K.addScaled(K.scale(running.var, 1 - m), batchVar, m), running.var);
    });
    mean.dispose();
    invStd.dispose();
    this.countBatch();
  }
}

/**
 * PyTorch's nn.BatchNorm2d: per-channel statistics over (N, H, W). Training
 * uses the batch's statistics and updates the running ones in place; eval
 * uses the running ones (or the batch's when trackRunningStats is false).
 */
export class BatchNorm2d extends NormBase {
  constructor(numFeatures: number, options: NormOptions = {}) {
    super(numFeatures, options, { affine: true, trackRunningStats: true });
  }

  forward(x: Variable): Variable {
    const running = this.running();
    const y = F.batchNorm2d(x, running?.mean ?? null, running?.var ?? null, this.weight, this.bias, {
      training: this.training,
      momentum: this.momentum,
      eps: this.eps,
    });
    if (this.training && running) this.countBatch();
    return y;
  }
}
