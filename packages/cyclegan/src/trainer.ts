import { CgError, type Device, StepPacer, type Tensor } from '@cg/tensor-core';
import { writeCheckpointSet } from './checkpoint_set.js';
import { UnalignedDataset } from './data/dataset.js';
import type { ImageSource } from './data/files.js';
import { makeGrid, tensorToImages } from './data/grid.js';
import type { RgbImage } from './data/image.js';
import { validateDataset } from './data/validate.js';
import { type DiagnosticsOptions, TrainingDiagnostics } from './diagnostics/monitor.js';
import { loadingFrom } from './errors.js';
import { saveCheckpoint } from './generator_io.js';
import { CycleGANModel, NET_NAMES, VISUAL_NAMES, type VisualName } from './model.js';
import { resolveTrainOptions, type TrainOptions } from './options.js';
import { type LogPoint, parseHistory, type ReportSample, renderReport } from './report.js';
import { checkpointFileName, readResumeSet, TRAIN_STATE_FILE } from './resume.js';
import { planRunStart } from './resume_plan.js';
import { encodeTrainingState, type LoopState } from './training_state.js';

/** The file system as the trainer needs it; Node and browsers supply their own. */
export interface TrainerIO {
  /** Writes atomically: a crash mid-write leaves the previous file intact. */
  writeFile(path: string, bytes: Uint8Array): Promise<void>;
  /** null when the file does not exist. */
  readFile(path: string): Promise<Uint8Array | null>;
  /** PNG bytes of a sample grid or heat map; called every display_freq, outside the training step. */
  encodePng(image: RgbImage): Promise<Uint8Array>;
}

export interface TrainProgress {
  epoch: number;
  lastEpoch: number;
  epochIter: number;
  epochSize: number;
  totalIters: number;
  /** Losses of the latest logged step (read back every print_freq). */
  losses: Record<string, number>;
  imagesPerSec: number;
  etaSec: number;
  lr: number;
  /** The latest diagnostics (`<metric>_<direction>`), when enabled; measured every display_freq. */
  metrics?: Record<string, number>;
}

export interface TrainHooks {
  onProgress?(p: TrainProgress): void;
  onLog?(line: string): void;
  /** Checked after each iteration; returning true saves 'latest' with the training state and stops. */
  shouldStop?(p: TrainProgress): boolean;
  /** Extra numbers per logged point (diagnostics); awaited every display_freq. */
  metrics?(model: CycleGANModel, visuals: Partial<Record<VisualName, Tensor>>): Promise<Record<string, number>>;
  metricCharts?: { title: string; keys: string[] }[];
}

export interface TrainResult {
  model: CycleGANModel;
  history: LogPoint[];
  totalIters: number;
  seconds: number;
  dir: string;
  stopped: boolean;
}

const joinPath = (...parts: string[]) => parts.filter(Boolean).join('/').replace(/\/+/g, '/');

/** `<checkpoints_dir>/<name>/<label>_net_<net>.<ext>` as the official save_networks. */
export function checkpointPath(
  o: Pick<TrainOptions, 'checkpoints_dir' | 'name' | 'checkpoint_format'>,
  label: string,
  net: string,
): string {
  return joinPath(o.checkpoints_dir, o.name, checkpointFileName(o, label, net));
}

/**
 * The official training loop (train.py) with exact resume, progress, samples and a report.
 * How --continue_train and --epoch_count combine: planRunStart (resume_plan.ts).
 */
export async function train(
  options: Partial<TrainOptions> & { dataroot: string },
  ctx: {
    device: Device;
    source: ImageSource;
    io: TrainerIO;
    hooks?: TrainHooks;
    /**
     * Failure-mode diagnostics on a fixed probe set every display_freq (diversity/collapse, detail, content,
     * cycle error): charted in the report, shown on the log line, with a collapse warning; the report's samples
     * get cycle-error heat maps. Off unless given.
     */
    diagnostics?: boolean | DiagnosticsOptions;
  },
): Promise<TrainResult> {
  const o = resolveTrainOptions(options);
  const { device, source, io } = ctx;
  const hooks = ctx.hooks ?? {};
  const log = (line: string) => hooks.onLog?.(line);
  const dir = joinPath(o.checkpoints_dir, o.name);

  const checked = await validateDataset(o, source);
  for (const w of checked.warnings) log(w);
  const dataset = await UnalignedDataset.open(o, source);
  // Read and check what we resume from before building the model: its scheduler depends on where we start.
  const resumed = o.continue_train ? await readResumeSet(o, io, log) : null;
  const saved = resumed?.state;
  const start = planRunStart(
    o,
    options.epoch_count !== undefined,
    saved ? { ...saved.loop, schedulerSteps: saved.model.schedulerSteps, epochSize: dataset.length } : null,
  );
  const model = new CycleGANModel(device, { ...o, epoch_count: start.scheduleEpochCount }, true);
  let diag: TrainingDiagnostics | null = null;
  if (ctx.diagnostics) {
    try {
      diag = await TrainingDiagnostics.create(device, o, source, ctx.diagnostics === true ? {} : ctx.diagnostics);
      log(`diagnostics: probe set of ${diag.probeSize} images per domain, measured every ${o.display_freq} iterations`);
    } catch (e) {
      if (!(e instanceof CgError)) throw e;
      log(`diagnostics: off (${e.message})`);
    }
  }
  const history: LogPoint[] = [];
  const samples: ReportSample[] = [];
  let loop: LoopState = { epoch: start.epoch, epochIter: 0, totalIters: 0, data: dataset.getState() };

  if (resumed) {
    const runDir = `${o.checkpoints_dir}/${o.name}`;
    for (const [name, net] of model.nets()) {
      const sd = resumed.nets.get(name);
      if (sd) loadingFrom(`${runDir}/${checkpointFileName(o, o.epoch, name)}`, () => net.loadStateDict(sd));
    }
    if (resumed.state) {
      const state = resumed.state;
      loadingFrom(`${runDir}/${TRAIN_STATE_FILE}`, () => model.setTrainingState(state.model));
      dataset.setState(resumed.state.loop.data);
      loop = resumed.state.loop;
      log(`resumed exactly at epoch ${loop.epoch}, total_iters ${loop.totalIters}`);
    } else {
      log(
        `--continue_train: no training state for '${o.epoch}'; restarting optimizers, pools and data order from epoch ${start.epoch} (the official behaviour)`,
      );
      // Epoch labels are saved at the end of their epoch, before the scheduler steps.
      const next = resumed.savedAt && resumed.savedAt.epoch + 1;
      if (next && /^\d+$/.test(o.epoch) && options.epoch_count === undefined && next !== start.epoch)
        log(
          `--continue_train: '${o.epoch}' was saved at the end of epoch ${next - 1}; pass --epoch_count ${next} to continue its schedule`,
        );
    }
    const historyPath = joinPath(dir, 'history.json');
    const savedHistory = await io.readFile(historyPath);
    try {
      // Points past the state's iteration come from a save that did not finish.
      if (savedHistory)
        history.push(
          ...parseHistory(savedHistory, historyPath).filter((p) => !resumed.state || p.iter <= loop.totalIters),
        );
    } catch (e) {
      if (!(e instanceof CgError)) throw e;
      log(`${e.message}; the report's charts start from this run`);
    }
  }

  const lastEpoch = o.n_epochs + o.n_epochs_decay;
  const epochSize = dataset.length;
  const totalPlanned = (lastEpoch - o.epoch_count + 1) * epochSize;
  const startIters = loop.totalIters;
  const t0 = nowSec();
  let losses: Record<string, number> = {};
  let stopped = false;
  const progress = (): TrainProgress => {
    const elapsed = nowSec() - t0;
    const done = loop.totalIters - startIters;
    const rate = done > 0 ? done / elapsed : 0;
    const alreadyDone = (loop.epoch - o.epoch_count) * epochSize + loop.epochIter;
    return {
      epoch: loop.epoch,
      lastEpoch,
      epochIter: loop.epochIter,
      epochSize,
      totalIters: loop.totalIters,
      losses,
      imagesPerSec: rate,
      etaSec: rate > 0 ? (totalPlanned - alreadyDone) / rate : Number.NaN,
      lr: model.scheduler.lr,
      metrics: diag?.last?.metrics,
    };
  };

  // One save is one checkpoint set: its manifest, written last, is what makes it count (checkpoint_set.ts).
  const save = async (label: string) => {
    const files = model.nets().map(([name, net]) => ({
      name: checkpointFileName(o, label, name),
      bytes: () => saveCheckpoint(net, o.checkpoint_format),
    }));
    if (label === 'latest') {
      loop.data = dataset.getState();
      await io.writeFile(joinPath(dir, 'history.json'), new TextEncoder().encode(JSON.stringify(history)));
      files.push({
        name: TRAIN_STATE_FILE,
        bytes: async () => encodeTrainingState(loop, await model.getTrainingState()),
      });
    }
    await writeCheckpointSet(io, dir, label, files, { epoch: loop.epoch, totalIters: loop.totalIters });
  };
  const writeReport = async () => {
    const html = renderReport({
      title: `CycleGAN ${o.name}`,
      options: o as unknown as Record<string, unknown>,
      history,
      samples,
      summary: {
        device: `${device.adapter.description || device.adapter.architecture} (${device.adapter.backend})`,
        iterations: loop.totalIters,
        'images/s': progress().imagesPerSec.toFixed(2),
        'peak GPU bytes (pool)': device.memory().peakBytes,
      },
      metricCharts: [...(diag?.charts ?? []), ...(hooks.metricCharts ?? [])],
      diagnostics: diag ? { heatMax: diag.heatMax, probeSize: diag.probeSize } : undefined,
    });
    await io.writeFile(joinPath(dir, 'report.html'), new TextEncoder().encode(html));
  };

  const pacer = new StepPacer(device);
  outer: for (; loop.epoch <= lastEpoch; ) {
    const epochStart = nowSec();
    // A state saved after an epoch's last batch (the data already at the next epoch) has only its end left.
    const batches = loop.epochIter < epochSize ? dataset.epoch() : [];
    for await (const batch of batches) {
      model.optimizeParameters(batch);
      // Back-pressure, not a readback. Waiting for this step (not the previous one while this one runs)
      // gives up overlapping the next step's encoding (about 1 % of a step), so the pacer can sleep
      // through the step instead of letting dawn.node poll on a core the adapter needs (StepPacer).
      await pacer.wait();
      loop.totalIters += batch.shapeA[0];
      loop.epochIter += batch.shapeA[0];
      const display = loop.totalIters % o.display_freq === 0;
      if (loop.totalIters % o.print_freq === 0 || display) {
        losses = await model.getCurrentLosses();
        const point: LogPoint = { iter: loop.totalIters, epoch: loop.epoch, losses };
        let diagLine = '';
        const warnings: string[] = [];
        if (display) {
          const visuals = model.getCurrentVisuals();
          let heatMap: Uint8Array | undefined;
          if (diag) {
            const reading = await diag.measure(model);
            point.metrics = { ...reading.metrics };
            diagLine = ` | ${reading.line}`;
            warnings.push(...reading.warnings);
            const heat = await diag.heatMaps(visuals);
            if (heat) heatMap = await io.encodePng(heat);
          }
          if (hooks.metrics) point.metrics = { ...point.metrics, ...(await hooks.metrics(model, visuals)) };
          samples.push({
            label: `epoch ${loop.epoch}, iter ${loop.totalIters}`,
            png: await io.encodePng(await visualsGrid(visuals)),
            heatMap,
          });
          if (samples.length > 12) samples.splice(1, 1); // keep the first and the latest ones
        }
        history.push(point);
        const p = progress();
        log(
          `(epoch: ${loop.epoch}, iters: ${loop.epochIter}, total: ${loop.totalIters}, ${p.imagesPerSec.toFixed(2)} img/s) ` +
            Object.entries(losses)
              .map(([k, v]) => `${k}: ${v.toFixed(3)}`)
              .join(' ') +
            diagLine,
        );
        for (const w of warnings) log(w);
        if (display) await writeReport();
      }
      if (loop.totalIters % o.save_latest_freq === 0) {
        log(`saving the latest model (epoch ${loop.epoch}, total_iters ${loop.totalIters})`);
        await save(o.save_by_iter ? `iter_${loop.totalIters}` : 'latest');
      }
      const p = progress();
      hooks.onProgress?.(p);
      if (hooks.shouldStop?.(p)) {
        stopped = true;
        break outer;
      }
    }
    if (loop.epoch % o.save_epoch_freq === 0) {
      log(`saving the model at the end of epoch ${loop.epoch}, iters ${loop.totalIters}`);
      await save(String(loop.epoch));
    }
    const [oldLr, lr] = model.updateLearningRate();
    log(
      `End of epoch ${loop.epoch} / ${lastEpoch} \t Time Taken: ${(nowSec() - epochStart).toFixed(1)} sec; learning rate ${oldLr.toPrecision(4)} -> ${lr.toPrecision(4)}`,
    );
    loop.epoch++;
    loop.epochIter = 0;
  }
  await device.sync();
  await save('latest');
  await writeReport();
  diag?.dispose();
  return { model, history, totalIters: loop.totalIters, seconds: nowSec() - t0, dir, stopped };
}

/** Rows real_A, fake_B, rec_A, real_B, fake_A, rec_B; one column per image of the batch. */
export async function visualsGrid(visuals: Partial<Record<VisualName, Tensor>>): Promise<RgbImage> {
  const rows: RgbImage[][] = [];
  for (const name of VISUAL_NAMES) {
    const t = visuals[name];
    if (!t) continue;
    const [n, c, h, w] = t.shape;
    rows.push(tensorToImages(await t.toArray(), [n, c, h, w]));
  }
  const cols = rows[0]?.length ?? 1;
  return makeGrid(rows.flat(), cols, 2);
}

function nowSec(): number {
  return performance.now() / 1000;
}

export { NET_NAMES };
