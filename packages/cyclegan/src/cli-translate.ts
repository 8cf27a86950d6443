// `pnpm cyclegan translate`: one image or a folder through a generator checkpoint, at the input's size.
import { mkdir, readdir, readFile, stat } from 'node:fs/promises';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { CgError, type Device } from '@cg/tensor-core';
import { bar, parseArgs } from './cli_args.js';
import { log } from './cli-log.js';
import { isImageFile } from './data/files.js';
import { decodeImage, writeImage } from './data/fs-images.js';
import { sizeMultiple, translateImage } from './generator_io.js';
import { netGName } from './infer.js';
import { loadGeneratorFile } from './node.js';
import type { TrainOptions } from './options.js';

async function listImages(dir: string): Promise<string[]> {
  return (await readdir(dir))
    .filter(isImageFile)
    .sort()
    .map((f) => join(dir, f));
}

export async function cmdTranslate(argv: string[], device: Device): Promise<void> {
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
