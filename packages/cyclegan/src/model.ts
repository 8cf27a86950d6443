import { Adam, type AdamStateDict, F, type nn, type Variable, variable } from '@cg/autograd';
import { type Device, keep, Rng, Tensor, tidy } from '@cg/tensor-core';
import { ImagePool, type ImagePoolState } from './image_pool.js';
import { ganLoss, weightedL1 } from './losses.js';
import { defineD, defineG } from './networks/define.js';
import type { TrainOptions } from './options.js';
import { LrScheduler } from './scheduler.js';

/** The four networks by their official names. */
export const NET_NAMES = ['G_A', 'G_B', 'D_A', 'D_B'] as const;
export type NetName = (typeof NET_NAMES)[number];

/** The official loss names, in the official order. */
export const LOSS_NAMES = ['D_A', 'G_A', 'cycle_A', 'idt_A', 'D_B', 'G_B', 'cycle_B', 'idt_B'] as const;
export type LossName = (typeof LOSS_NAMES)[number];

export const VISUAL_NAMES = ['real_A', 'fake_B', 'rec_A', 'real_B', 'fake_A', 'rec_B'] as const;
export type VisualName = (typeof VISUAL_NAMES)[number];

/** One batch as the dataset yields it (A and B already swapped for BtoA). */
export interface ModelInput {
  A: Float32Array;
  B: Float32Array;
  shapeA: readonly number[];
  shapeB: readonly number[];
}

/** Everything besides network weights that an exact resume needs. */
export interface ModelTrainingState {
  optimizerG: AdamStateDict;
  optimizerD: AdamStateDict;
  schedulerSteps: number;
  rng: number[];
  poolRng: number[];
  poolA: ImagePoolState;
  poolB: ImagePoolState;
}

export type CycleGANOptions = Omit<TrainOptions, 'dataroot' | 'name' | 'checkpoints_dir'> & Partial<TrainOptions>;

/**
 * models/cycle_gan_model.py on our autograd: G_A: A→B, G_B: B→A, D_A judges
 * B-domain images, D_B A-domain ones. One optimizeParameters() is the
 * official step: forward both cycles, a G step with both D frozen, then the
 * D step on images from the history pools. Nothing is read back: losses stay
 * on the GPU until getCurrentLosses() is awaited.
 */
export class CycleGANModel {
  readonly netG_A: nn.Module;
  readonly netG_B: nn.Module;
  readonly netD_A: nn.Module | null;
  readonly netD_B: nn.Module | null;
  readonly optimizerG: Adam | null;
  readonly optimizerD: Adam | null;
  readonly scheduler: LrScheduler;
  readonly rng: Rng;
  private readonly poolRng: Rng;
  private readonly fakeAPool: ImagePool;
  private readonly fakeBPool: ImagePool;
  private losses: Partial<Record<LossName, Tensor>> = {};
  private visuals: Partial<Record<VisualName, Tensor>> = {};

  constructor(
    readonly device: Device,
    readonly opt: CycleGANOptions,
    readonly isTrain = true,
  ) {
    this.rng = new Rng(opt.seed ?? 0);
    const ctx = { device, rng: this.rng };
    const g = {
      ngf: opt.ngf,
      netG: opt.netG,
      norm: opt.norm,
      use_dropout: !opt.no_dropout,
      init_type: opt.init_type,
      init_gain: opt.init_gain,
    };
    this.netG_A = defineG({ ...g, input_nc: opt.input_nc, output_nc: opt.output_nc }, ctx);
    this.netG_B = defineG({ ...g, input_nc: opt.output_nc, output_nc: opt.input_nc }, ctx);
    const d = {
      ndf: opt.ndf,
      netD: opt.netD,
      n_layers_D: opt.n_layers_D,
      norm: opt.norm,
      init_type: opt.init_type,
      init_gain: opt.init_gain,
    };
    this.netD_A = isTrain ? defineD({ ...d, input_nc: opt.output_nc }, ctx) : null;
    this.netD_B = isTrain ? defineD({ ...d, input_nc: opt.input_nc }, ctx) : null;
    this.poolRng = this.rng.fork();
    this.fakeAPool = new ImagePool(opt.pool_size, this.poolRng);
    this.fakeBPool = new ImagePool(opt.pool_size, this.poolRng);
    this.scheduler = new LrScheduler(opt);
    const adam = { lr: opt.lr, betas: [opt.beta1, 0.999] as const };
    this.optimizerG = isTrain ? new Adam([...this.netG_A.parameters(), ...this.netG_B.parameters()], adam) : null;
    this.optimizerD =
      isTrain && this.netD_A && this.netD_B
        ? new Adam([...this.netD_A.parameters(), ...this.netD_B.parameters()], adam)
        : null;
  }

  nets(): [NetName, nn.Module][] {
    const out: [NetName, nn.Module][] = [
      ['G_A', this.netG_A],
      ['G_B', this.netG_B],
    ];
    if (this.netD_A) out.push(['D_A', this.netD_A]);
    if (this.netD_B) out.push(['D_B', this.netD_B]);
    return out;
  }

  /** One official training iteration on `input`. Records GPU work only. */
  optimizeParameters(input: ModelInput): void {
    const optG = this.optimizerG;
    const optD = this.optimizerD;
    const netD_A = this.netD_A;
    const netD_B = this.netD_B;
    if (!optG || !optD || !netD_A || !netD_B) throw new Error('optimizeParameters: model was built for inference');
    const o = this.opt;
    this.disposeOutputs();
    const { losses, visuals } = tidy(() => {
      const real_A = variable(tensorOf(this.device, input.A, input.shapeA));
      const real_B = variable(tensorOf(this.device, input.B, input.shapeB));
      const losses: Partial<Record<LossName, Tensor>> = {};
      // G_A and G_B, with both discriminators frozen. loss_G is a sum of terms on four
      // independent graphs (the A cycle with D_A's verdict on fake_B, the B cycle, and the two
      // identity passes), so each group runs backward as soon as its forward is done: the
      // gradients are the same sum, accumulated in .grad group by group, and only one group's
      // saved activations are alive at once (two generator graphs instead of six; at 256² that
      // is about 1 GiB less). The generators still run in the official order: G_A(real_A),
      // G_B(fake_B), G_B(real_B), G_A(fake_A), then the identity passes.
      netD_A.requiresGrad_(false);
      netD_B.requiresGrad_(false);
      optG.zeroGrad();
      const cycle = (
        netG: nn.Module,
        netBack: nn.Module,
        netD: nn.Module,
        real: Variable,
        lambda: number,
      ): { fake: Variable; rec: Tensor; gan: Tensor; cycle: Tensor } => {
        const fake = netG.forward(real);
        const rec = netBack.forward(fake);
        const gan = ganLoss(o.gan_mode, netD.forward(fake), true);
        const cyc = weightedL1(rec, real, lambda);
        const keepFake = fake.detach();
        const out = { fake: keepFake, rec: rec.detach().data, gan: gan.detach().data, cycle: cyc.detach().data };
        F.add(gan, cyc).backward();
        return out;
      };
      const a = cycle(this.netG_A, this.netG_B, netD_A, real_A, o.lambda_A);
      const b = cycle(this.netG_B, this.netG_A, netD_B, real_B, o.lambda_B);
      Object.assign(losses, { G_A: a.gan, cycle_A: a.cycle, G_B: b.gan, cycle_B: b.cycle });
      const lambdaIdt = o.lambda_identity;
      if (lambdaIdt > 0) {
        const idt_A = weightedL1(this.netG_A.forward(real_B), real_B, o.lambda_B * lambdaIdt);
        losses.idt_A = idt_A.detach().data;
        idt_A.backward();
        const idt_B = weightedL1(this.netG_B.forward(real_A), real_A, o.lambda_A * lambdaIdt);
        losses.idt_B = idt_B.detach().data;
        idt_B.backward();
      }
      const keepFakeB = a.fake;
      const keepFakeA = b.fake;
      const visuals = {
        real_A: real_A.data,
        fake_B: keepFakeB.data,
        rec_A: a.rec,
        real_B: real_B.data,
        fake_A: keepFakeA.data,
        rec_B: b.rec,
      };
      optG.step();
      optG.zeroGrad();

      // D_A and D_B on pooled fakes.
      netD_A.requiresGrad_(true);
      netD_B.requiresGrad_(true);
      optD.zeroGrad();
      const loss_D_A = this.backwardD(netD_A, real_B, this.fakeBPool.query(keepFakeB));
      const loss_D_B = this.backwardD(netD_B, real_A, this.fakeAPool.query(keepFakeA));
      optD.step();
      optD.zeroGrad();

      losses.D_A = loss_D_A.data;
      losses.D_B = loss_D_B.data;
      return { losses, visuals };
    });
    for (const t of [...Object.values(losses), ...Object.values(visuals)]) keep(t);
    this.losses = losses;
    this.visuals = visuals;
  }

  /** backward_D_basic: 0.5·(L(D(real), 1) + L(D(fake), 0)); returns the loss after its backward(). */
  private backwardD(netD: nn.Module, real: Variable, fake: Variable): Variable {
    const lossReal = ganLoss(this.opt.gan_mode, netD.forward(real), true);
    const lossFake = ganLoss(this.opt.gan_mode, netD.forward(fake), false);
    const loss = F.scale(F.add(lossReal, lossFake), 0.5);
    loss.backward();
    return loss;
  }

  /** Reads the last step's losses back (one readback for all of them). */
  async getCurrentLosses(): Promise<Record<string, number>> {
    const names = LOSS_NAMES.filter((n) => this.losses[n]);
    if (names.length === 0) return {};
    // Gather the scalars into one buffer so one readback serves them all.
    const packed = Tensor.empty(this.device, [names.length]);
    names.forEach((n, i) => {
      this.device.copy(this.losses[n]!.buffer, packed.buffer, 4, 0, i * 4);
    });
    const values = await packed.toArray();
    packed.dispose();
    return Object.fromEntries(names.map((n, i) => [n, values[i]]));
  }

  /** The last step's images ([N, C, H, W] tensors in [-1, 1]); valid until the next step. */
  getCurrentVisuals(): Partial<Record<VisualName, Tensor>> {
    return { ...this.visuals };
  }

  /** Called at the end of every epoch, as the official train loop does. */
  updateLearningRate(): [number, number] {
    const [oldLr, lr] = this.scheduler.step();
    this.optimizerG?.setLearningRate(lr);
    this.optimizerD?.setLearningRate(lr);
    return [oldLr, lr];
  }

  async getTrainingState(): Promise<ModelTrainingState> {
    if (!this.optimizerG || !this.optimizerD) throw new Error('getTrainingState: model was built for inference');
    return {
      optimizerG: await this.optimizerG.stateDict(),
      optimizerD: await this.optimizerD.stateDict(),
      schedulerSteps: this.scheduler.steps,
      rng: this.rng.getState(),
      poolRng: this.poolRng.getState(),
      poolA: await this.fakeAPool.getState(),
      poolB: await this.fakeBPool.getState(),
    };
  }

  setTrainingState(s: ModelTrainingState): void {
    if (!this.optimizerG || !this.optimizerD) throw new Error('setTrainingState: model was built for inference');
    this.optimizerG.loadStateDict(s.optimizerG);
    this.optimizerD.loadStateDict(s.optimizerD);
    this.scheduler.steps = s.schedulerSteps;
    this.optimizerG.setLearningRate(this.scheduler.lr);
    this.optimizerD.setLearningRate(this.scheduler.lr);
    this.rng.setState(s.rng);
    this.poolRng.setState(s.poolRng);
    this.fakeAPool.setState(this.device, s.poolA);
    this.fakeBPool.setState(this.device, s.poolB);
  }

  private disposeOutputs(): void {
    for (const t of [...Object.values(this.losses), ...Object.values(this.visuals)]) t?.dispose();
    this.losses = {};
    this.visuals = {};
  }

  dispose(): void {
    this.disposeOutputs();
    for (const [, net] of this.nets()) net.dispose();
    this.optimizerG?.dispose();
    this.optimizerD?.dispose();
    this.fakeAPool.dispose();
    this.fakeBPool.dispose();
  }
}

function tensorOf(device: Device, data: Float32Array, shape: readonly number[]): Tensor {
  return Tensor.fromArray(device, data, shape);
}
