// `pnpm cyclegan export`: a generator or discriminator checkpoint as an ONNX model.
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Device } from '@cg/tensor-core';
import { parseArgs } from './cli_args.js';
import { log } from './cli-log.js';
import { writeFileAtomic } from './data/fs-images.js';
import { DataError, OptionError } from './errors.js';
import { readCheckpointFile } from './node.js';
import { describeOnnxNetwork, exportOnnx, inferOnnxNetwork } from './onnx/export.js';
import { type ExportOnnxOptions, ONNX_OPSET } from './onnx/options.js';
import type { Norm } from './options.js';

export const EXPORT_USAGE =
  'export     --weights FILE(.pth|.safetensors) --format onnx --output FILE.onnx [--mode eval|train] [--netG auto] [--ngf N]\n' +
  '           [--norm instance|batch|none] [--use_dropout] [--netD basic|n_layers|pixel] [--n_layers_D 3] [--ndf N]\n' +
  `           ONNX opset ${ONNX_OPSET}, input [N, C, H, W] with dynamic N, H, W. --mode eval (default): batch norm uses the\n` +
  '           running statistics, dropout is the identity; --mode train: batch statistics, as test.py without --eval.';

const NORMS: readonly string[] = ['instance', 'batch', 'none'];
const NET_DS: readonly string[] = ['basic', 'n_layers', 'pixel'];

function parseExportArgs(argv: readonly string[]): { weights: string; output: string; options: ExportOnnxOptions } {
  const defaults = {
    weights: '',
    format: 'onnx',
    output: '',
    mode: 'eval',
    netG: 'auto',
    ngf: 0,
    norm: '',
    use_dropout: false,
    netD: '',
    n_layers_D: 0,
    ndf: 0,
  };
  const a = { ...defaults, ...parseArgs(argv, defaults) };
  if (!a.weights || !a.output) throw new OptionError('export: --weights and --output are required');
  if (a.format !== 'onnx') throw new OptionError(`export: --format ${a.format} is not supported; use --format onnx`);
  if (a.mode !== 'eval' && a.mode !== 'train')
    throw new OptionError(`export: --mode must be eval or train (got ${a.mode})`);
  if (a.norm && !NORMS.includes(a.norm))
    throw new OptionError(`export: --norm must be instance, batch or none (got ${a.norm})`);
  if (a.netD && !NET_DS.includes(a.netD))
    throw new OptionError(`export: --netD must be basic, n_layers or pixel (got ${a.netD})`);
  for (const k of ['ngf', 'ndf', 'n_layers_D'] as const) {
    const v = a[k];
    if (!Number.isInteger(v) || v < 0)
      throw new OptionError(`export: --${k} must be a positive whole number (got ${v})`);
  }
  return {
    weights: a.weights,
    output: a.output,
    options: {
      mode: a.mode,
      netG: a.netG,
      ngf: a.ngf || undefined,
      norm: (a.norm || undefined) as Norm | undefined,
      use_dropout: a.use_dropout || undefined,
      netD: (a.netD || undefined) as ExportOnnxOptions['netD'],
      n_layers_D: a.n_layers_D || undefined,
      ndf: a.ndf || undefined,
      source: a.weights,
      log,
    },
  };
}

/**
 * Reads the checkpoint, builds the whole ONNX model in memory (any key problem is a CheckpointError
 * before a byte is written), then writes it atomically. Needs no GPU: `device` is accepted so the
 * CLI can call every command alike, and unused.
 */
export async function runExport(argv: readonly string[], _device?: Device): Promise<{ path: string; bytes: number }> {
  const { weights, output, options } = parseExportArgs(argv);
  if (!/\.onnx$/i.test(output)) log(`${output}: the file name does not end in .onnx; writing it anyway`);
  if ((await stat(output).catch(() => null))?.isDirectory()) {
    throw new DataError(`${output}: is a folder; give a file name such as g.onnx as --output`);
  }
  if (resolve(output) === resolve(weights)) {
    throw new DataError(`${output}: the output would overwrite the checkpoint; choose another --output`);
  }
  const t0 = performance.now();
  const sd = await readCheckpointFile(weights, log);
  const bytes = exportOnnx(sd, options);
  const what = describeOnnxNetwork(inferOnnxNetwork(sd, options));
  await writeFileAtomic(output, bytes);
  const mb = (bytes.length / 1024 ** 2).toFixed(1);
  const s = ((performance.now() - t0) / 1000).toFixed(2);
  log(`wrote ${output}: ${what}, ${options.mode} mode, ONNX opset ${ONNX_OPSET}, ${mb} MB (${s} s)`);
  return { path: output, bytes: bytes.length };
}
