#!/usr/bin/env node
// `pnpm cyclegan train|test|translate|demo|evaluate`: the official options, on our WebGPU stack.
import { appendFile, mkdir, readdir, readFile, stat } from 'node:fs/promises';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { CgError, type Device } from '@cg/tensor-core';
import { requestDevice } from '@cg/tensor-core/node';
import { type ArgValue, bar, formatDuration, parseArgs } from './cli_args.js';
import { runDemo } from './cli-demo.js';
import { runEvaluate } from './cli-evaluate.js';
import { progressPrinter } from './cli-progress.js';
import { runTest } from './cli-test.js';
import { isImageFile } from './data/files.js';
import { decodeImage, NodeImageSource, writeImage } from './data/fs-images.js';
import { sizeMultiple, translateImage } from './generator_io.js';
import { netGName } from './infer.js';
import { loadGeneratorFile, nodeTrainerIO } from './node.js';
import { DEFAULT_TRAIN_OPTIONS, type TrainOptions } from './options.js';
import { train } from './trainer.js';

const USAGE = `usage: pnpm cyclegan <command> [options]

  train      --dataroot DIR --name NAME [--checkpoints_dir ./checkpoints] [official train options…] [--seed N] [--diagnostics false]
  test       --dataroot DIR --name NAME [--results_dir ./results] [--direction AtoB] [--num_test 50] [--epoch latest]
  translate  --weights FILE(.pth|.safetensors) --input IMG|DIR --output IMG|DIR [--netG auto] [--ngf N] [--norm instance] [--load_size N] [--eval]
             keeps each image's size: sides that are not a multiple of 4 (resnet; 128/256 for unet_128/unet_256) are
             reflect-padded to the next multiple, translated and cropped back, never resized; --load_size 256 resizes
             to 256×256 first, as the official test.py does. Runs in train mode like test.py unless --eval.
  evaluate   --dataroot DIR --name NAME [--epoch latest] [--results_dir ./results] [--num_test inf] [--worst 8]
             failure-mode metrics per direction (diversity/collapse, detail, content, cycle error) on the test set
  demo       trains a small CycleGAN on a built-in synthetic dataset and writes images + report (--out ./demo-output)

Options and defaults follow the official pytorch-CycleGAN-and-pix2pix (e.g. --netG resnet_9blocks, --lr 0.0002).`;

export function log(msg: string): void {
  process.stderr.write(`${msg}\n`);
}

async function cmdTrain(argv: string[], device: Device): Promise<void> {
  // --diagnostics false turns off the failure-mode diagnostics (on by default; about 1% of training time).
  const { diagnostics = true, ...o } = parseArgs(argv, {
    ...DEFAULT_TRAIN_OPTIONS,
    dataroot: '',
    diagnostics: true,
  } as Record<string, ArgValue>) as Partial<TrainOptions> & { diagnostics?: boolean };
  if (!o.dataroot) throw new CgError('train: --dataroot DIR is required (a folder with trainA/ and trainB/)');
  const name = o.name ?? DEFAULT_TRAIN_OPTIONS.name;
  const dir = join(o.checkpoints_dir ?? DEFAULT_TRAIN_OPTIONS.checkpoints_dir, name);
  await mkdir(dir, { recursive: true });
  const logFile = join(dir, 'loss_log.txt');
  await appendFile(logFile, `================ Training Loss (${new Date().toISOString()}) ================\n`);
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
        void appendFile(logFile, `${line}\n`);
      },
    },
  });
  log(
    `\ntrained ${result.totalIters} images in ${formatDuration(result.seconds)}; checkpoints and report.html in ${result.dir}`,
  );
  result.model.dispose();
}

async function listImages(dir: string): Promise<string[]> {
  return (await readdir(dir))
    .filter(isImageFile)
    .sort()
    .map((f) => join(dir, f));
}

async function cmdTranslate(argv: string[], device: Device): Promise<void> {
  const a = parseArgs(argv, {
    weights: '',
    input: '',
    output: '',
    netG: 'auto',
    ngf: 0,
    norm: '',
    load_size: 0,
    eval: false,
  });
  if (!a.weights || !a.input || !a.output) throw new CgError('translate: --weights, --input and --output are required');
  const t0 = performance.now();
  const { net, spec } = await loadGeneratorFile(device, a.weights, {
    netG: a.netG,
    ngf: a.ngf || undefined,
    norm: (a.norm || undefined) as TrainOptions['norm'] | undefined,
    log,
  });
  log(
    `loaded ${a.weights}: ${netGName(spec)}, ngf ${spec.ngf}, norm ${spec.norm}, ${spec.input_nc}→${spec.output_nc} channels (${((performance.now() - t0) / 1000).toFixed(2)} s)`,
  );
  const inputIsDir = (await stat(a.input)).isDirectory();
  const inputs = inputIsDir ? await listImages(a.input) : [a.input];
  if (inputs.length === 0) throw new CgError(`translate: no images in ${a.input}`);
  const toOutput = (p: string) => (inputIsDir ? join(a.output!, `${basename(p, extname(p))}.png`) : a.output!);
  if (inputIsDir) await mkdir(a.output, { recursive: true });
  else await mkdir(dirname(resolve(a.output)), { recursive: true });
  const opts = {
    multiple: sizeMultiple(spec),
    input_nc: spec.input_nc,
    load_size: a.load_size || undefined,
    eval: a.eval,
  };
  for (const [i, path] of inputs.entries()) {
    const started = performance.now();
    const img = decodeImage(await readFile(path), path);
    const out = await translateImage(net, img, opts);
    await writeImage(toOutput(path), out);
    const ms = performance.now() - started;
    if (inputs.length > 1)
      process.stderr.write(`\r\x1b[K${bar(i + 1, inputs.length)} ${basename(path)} (${ms.toFixed(0)} ms)`);
    else log(`${path} (${img.width}×${img.height}) → ${toOutput(path)} in ${ms.toFixed(0)} ms`);
  }
  if (inputs.length > 1) log(`\nwrote ${inputs.length} images to ${a.output}`);
  net.dispose();
}

export async function main(argv = process.argv.slice(2)): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === '-h' || command === 'help') {
    console.log(USAGE);
    return command ? 0 : 2;
  }
  const commands: Record<string, (argv: string[], device: Device) => Promise<void>> = {
    train: cmdTrain,
    test: runTest,
    translate: cmdTranslate,
    evaluate: async (argv, device) => {
      await runEvaluate(argv, device);
    },
    demo: async (argv, device) => {
      await runDemo(argv, device);
    },
  };
  const run = commands[command];
  if (!run) {
    log(`unknown command '${command}'\n${USAGE}`);
    return 2;
  }
  let device: Device | null = null;
  try {
    device = await requestDevice();
    await run(rest, device);
    return 0;
  } catch (e) {
    if (e instanceof CgError) {
      log(`\n${e.name}: ${e.message}`);
      return 1;
    }
    throw e;
  } finally {
    device?.release();
  }
}

const isMain = process.argv[1] && resolve(process.argv[1]) === resolve(new URL(import.meta.url).pathname);
if (isMain) {
  main().then((code) => {
    process.exitCode = code;
  });
}
