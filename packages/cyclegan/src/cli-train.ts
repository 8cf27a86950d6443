// `pnpm cyclegan train`: the official train.py options, with a loss log next to the checkpoints.
import { appendFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Device } from '@cg/tensor-core';
import { type ArgValue, formatDuration, parseArgs } from './cli_args.js';
import { log } from './cli-log.js';
import { progressPrinter } from './cli-progress.js';
import { NodeImageSource } from './data/fs-images.js';
import { CheckpointError, OptionError } from './errors.js';
import { acquireRunLock, type RunLock } from './fs-lock.js';
import { nodeTrainerIO } from './node.js';
import { DEFAULT_TRAIN_OPTIONS, type TrainOptions } from './options.js';
import { train } from './trainer.js';

export async function cmdTrain(argv: string[], device: Device): Promise<void> {
  // --diagnostics false turns off the failure-mode diagnostics (on by default; about 1% of training time).
  const { diagnostics = true, ...o } = parseArgs(argv, {
    ...DEFAULT_TRAIN_OPTIONS,
    dataroot: '',
    diagnostics: true,
  } as Record<string, ArgValue>) as Partial<TrainOptions> & { diagnostics?: boolean };
  if (!o.dataroot) throw new OptionError('train: --dataroot DIR is required (a folder with trainA/ and trainB/)');
  const name = o.name ?? DEFAULT_TRAIN_OPTIONS.name;
  const dir = join(o.checkpoints_dir ?? DEFAULT_TRAIN_OPTIONS.checkpoints_dir, name);
  await makeRunFolder(dir);
  const lock = acquireRunLock(dir, log);
  const removeSignalHandlers = releaseOnSignals(lock);
  try {
    const logFile = join(dir, 'loss_log.txt');
    await appendFile(logFile, `================ Training Loss (${new Date().toISOString()}) ================\n`);
    let logFileFailed = false;
    const progress = progressPrinter();
    const result = await train(o as TrainOptions, {
      device,
      source: new NodeImageSource(),
      io: nodeTrainerIO,
      diagnostics,
      hooks: {
        onProgress: progress,
        onLog: (line) => {
          if (process.stderr.isTTY) process.stderr.write('\r\x1b[K');
          log(line);
          appendFile(logFile, `${line}\n`).catch((e: NodeJS.ErrnoException) => {
            // The line reached the console; a lost log line is not worth stopping hours of training for.
            if (!logFileFailed) log(`${logFile}: cannot append (${e.code ?? e.message}); lines go to the console only`);
            logFileFailed = true;
          });
        },
      },
    });
    log(
      `\ntrained ${result.totalIters} images in ${formatDuration(result.seconds)}; checkpoints and report.html in ${result.dir}`,
    );
    result.model.dispose();
  } finally {
    removeSignalHandlers();
    lock.release();
  }
}

async function makeRunFolder(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    throw new CheckpointError(
      `${dir}: cannot create the checkpoints folder (${code}); choose a writable --checkpoints_dir`,
    );
  }
}

/** On Ctrl-C or SIGTERM: release the lock, then die of the same signal so the exit status still says so. */
function releaseOnSignals(lock: RunLock): () => void {
  const signals = ['SIGINT', 'SIGTERM'] as const;
  const handlers = signals.map((signal) => {
    const handler = () => {
      lock.release();
      remove();
      process.kill(process.pid, signal);
    };
    process.on(signal, handler);
    return [signal, handler] as const;
  });
  const remove = () => {
    for (const [signal, handler] of handlers) process.off(signal, handler);
  };
  return remove;
}
