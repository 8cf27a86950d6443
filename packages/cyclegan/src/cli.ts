#!/usr/bin/env node
// `pnpm cyclegan train|test|translate|demo|evaluate`: the official options, on our WebGPU stack.
import { resolve } from 'node:path';
import type { Device } from '@cg/tensor-core';
import {
  adoptParentTerminal,
  isDawnFilteredChild,
  requestDevice,
  rerunWithDawnWarningsFiltered,
} from '@cg/tensor-core/node';
import { runDemo } from './cli-demo.js';
import { describeError } from './cli-errors.js';
import { runEvaluate } from './cli-evaluate.js';
import { EXPORT_USAGE, runExport } from './cli-export.js';
import { log } from './cli-log.js';
import { runTest } from './cli-test.js';
import { cmdTrain } from './cli-train.js';
import { cmdTranslate } from './cli-translate.js';

export { log };

const USAGE = `usage: pnpm cyclegan <command> [options]

  train      --dataroot DIR --name NAME [--checkpoints_dir ./checkpoints] [official train options…] [--seed N] [--diagnostics false]
  test       --dataroot DIR --name NAME [--results_dir ./results] [--direction AtoB] [--num_test 50] [--epoch latest]
             [--max_memory MB] [--max_host_memory MB]: images that do not fit run in exact tiles, as translate's
  translate  --weights FILE(.pth|.safetensors) --input IMG|DIR --output IMG|DIR [--netG auto] [--ngf N] [--norm instance] [--load_size N] [--eval] [--max_memory MB] [--max_host_memory MB]
             keeps each image's size: sides that are not a multiple of 4 (resnet; 128/256 for unet_128/unet_256) are
             reflect-padded to the next multiple, translated and cropped back, never resized; --load_size 256 resizes
             to 256×256 first, as the official test.py does. Runs in train mode like test.py unless --eval.
             Images too big for one GPU binding (or for --max_memory) run in exact tiles with halos and
             whole-image instance-norm statistics; the output equals whole-image inference. Their activations
             live in host memory: an image needing more than --max_host_memory (default half this machine's
             memory) is refused before it runs.
  ${EXPORT_USAGE}
  evaluate   --dataroot DIR --name NAME [--epoch latest] [--results_dir ./results] [--num_test inf] [--worst 8]
             failure-mode metrics per direction (diversity/collapse, detail, content, cycle error) on the test set
  demo       trains a small CycleGAN on a built-in synthetic dataset and writes images + report (--out ./demo-output)

Commands that read images take --max_pixels N (default 178956970, PIL's limit; 'inf' for none): larger images
are refused from their header, before decoding. --gpu_ids is accepted and ignored: the WebGPU adapter picks the GPU.

Every command also takes --debug (print the stack on failure) and --verbose (show Dawn's warnings).
Options and defaults follow the official pytorch-CycleGAN-and-pix2pix (e.g. --netG resnet_9blocks, --lr 0.0002).`;

/** Flags every command takes; main() removes them before the command parses its options. */
const GLOBAL_FLAGS = {
  '--debug': 'on failure, print the stack trace as well',
  '--verbose': "show Dawn's own warnings (hidden by default)",
};

export async function main(args = process.argv.slice(2)): Promise<number> {
  const debug = args.includes('--debug');
  const argv = args.filter((a) => !Object.hasOwn(GLOBAL_FLAGS, a));
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === '-h' || command === 'help') {
    console.log(USAGE);
    return command ? 0 : 2;
  }
  // Every command but export runs on the GPU; export only reads a checkpoint and writes a file.
  const commands: Record<string, (argv: string[], device: Device | null) => Promise<void>> = {
    train: (argv, device) => cmdTrain(argv, device!),
    test: (argv, device) => runTest(argv, device!),
    translate: (argv, device) => cmdTranslate(argv, device!),
    export: async (argv) => {
      await runExport(argv);
    },
    evaluate: async (argv, device) => {
      await runEvaluate(argv, device!);
    },
    demo: async (argv, device) => {
      await runDemo(argv, device!);
    },
  };
  const run = commands[command];
  if (!run) {
    log(`unknown command '${command}'\n${USAGE}`);
    return 2;
  }
  let device: Device | null = null;
  try {
    if (command !== 'export') device = await requestDevice();
    await run(rest, device);
    return 0;
  } catch (e) {
    log(`\n${describeError(e, debug)}`);
    return 1;
  } finally {
    device?.release();
  }
}

const isMain = process.argv[1] && resolve(process.argv[1]) === resolve(new URL(import.meta.url).pathname);
if (isMain) {
  // Dawn prints its warnings from C++ to stderr: the command runs in a child whose stderr is filtered.
  const runHere = process.argv.includes('--verbose') || isDawnFilteredChild();
  if (runHere) adoptParentTerminal();
  (runHere ? main() : rerunWithDawnWarningsFiltered()).then((code) => {
    process.exitCode = code;
  });
}
