// `pnpm cyclegan translate`: one image or a folder through a generator checkpoint, at the input's size.
import { access, constants, mkdir, readdir, stat } from 'node:fs/promises';
import { basename, dirname, extname, join, resolve } from 'node:path';
import type { CgError, Device } from '@cg/tensor-core';
import { bar, parseArgs } from './cli_args.js';
import {
  MAX_HOST_MEMORY_OPTION,
  MAX_MEMORY_OPTION,
  MAX_PIXELS_OPTION,
  maxGpuBytesFrom,
  maxHostBytesFrom,
  maxPixelsFrom,
} from './cli-image-limit.js';
import { log } from './cli-log.js';
import { isImageFile } from './data/files.js';
import { fsError, fsErrorAt, NodeImageSource, writeImage } from './data/fs-images.js';
import { tensorToImages } from './data/grid.js';
import type { RgbImage } from './data/image.js';
import { DataError, OptionError } from './errors.js';
import { sizeMultiple } from './generator_io.js';
import { netGName } from './infer.js';
import { loadGeneratorFile } from './node.js';
import type { TrainOptions } from './options.js';
import { translateAnySize } from './tiled/translate_any_size.js';

interface Inputs {
  isDir: boolean;
  paths: string[];
}

/** The images to translate: `input` itself, or the image-named entries of the folder `input`, sorted. */
async function listInputs(input: string): Promise<Inputs> {
  let isDir: boolean;
  try {
    isDir = (await stat(input)).isDirectory();
  } catch (e) {
    throw await fsErrorAt(input, 'open --input', e);
  }
  if (!isDir) return { isDir, paths: [input] };
  let names: string[];
  try {
    names = await readdir(input);
  } catch (e) {
    throw fsError(input, 'list the --input folder', e);
  }
  // Entries named like images are all kept, even folders and broken links, so each gets its own failure line.
  const paths = names
    .filter(isImageFile)
    .sort()
    .map((f) => join(input, f));
  if (paths.length === 0) {
    throw new DataError(`${input}: no PNG or JPEG images in the folder; check the --input path`);
  }
  const skipped = names.length - paths.length;
  if (skipped > 0) log(`skipping ${skipped} file(s) in ${input} without a PNG/JPEG extension`);
  return { isDir, paths };
}

/**
 * The output file name (`<stem>.png`) of each input, made unique: `same.png` and `same.jpg` become
 * `same_png.png` and `same_jpg.png`, and any name still taken gets `_2`, `_3`, …. Names are compared
 * case-insensitively because macOS and Windows disks are, so `A.png` and `a.png` would overwrite each other.
 * Returns the names in input order and a note for each group that had to be renamed.
 */
export function outputNames(inputs: readonly string[]): { names: string[]; notes: string[] } {
  const stem = (p: string) => basename(p, extname(p));
  const key = (name: string) => name.toLowerCase();
  const groups = new Map<string, number[]>();
  inputs.forEach((p, i) => {
    const k = key(stem(p));
    groups.set(k, [...(groups.get(k) ?? []), i]);
  });
  const wanted = inputs.map((p, i) => {
    const clash = (groups.get(key(stem(p))) ?? []).length > 1;
    return clash ? `${stem(p)}_${extname(p).slice(1)}.png` : `${stem(inputs[i])}.png`;
  });
  const used = new Set<string>();
  const names = wanted.map((name) => {
    let out = name;
    for (let n = 2; used.has(key(out)); n++) out = `${name.slice(0, -4)}_${n}.png`;
    used.add(key(out));
    return out;
  });
  const notes: string[] = [];
  for (const members of groups.values()) {
    if (members.length < 2) continue;
    const from = members.map((i) => basename(inputs[i])).join(', ');
    const to = members.map((i) => names[i]).join(', ');
    notes.push(`${from} would all be written as ${stem(inputs[members[0]])}.png: writing ${to} instead`);
  }
  inputs.forEach((p, i) => {
    const single = (groups.get(key(stem(p))) ?? []).length === 1;
    if (single && names[i] !== wanted[i]) notes.push(`${basename(p)}: ${wanted[i]} is taken, writing ${names[i]}`);
  });
  return { names, notes };
}

/** Creates the output folder (or the output file's folder) and checks that it can be written to. */
async function prepareOutputFolder(folder: string, isOutputItself: boolean): Promise<void> {
  const what = isOutputItself ? 'the --output folder' : "the --output file's folder";
  const existing = await stat(folder).catch(() => null);
  if (existing && !existing.isDirectory()) {
    throw new DataError(
      `${folder}: cannot use ${what} (it is a file, not a folder); ` +
        (isOutputItself ? 'with a folder as --input, --output must be a folder too' : 'check the --output path'),
    );
  }
  try {
    await mkdir(folder, { recursive: true });
    await access(folder, constants.W_OK);
  } catch (e) {
    throw fsError(folder, `write to ${what}`, e);
  }
}

function parseTranslateArgs(argv: string[]) {
  const a = parseArgs(argv, {
    weights: '',
    input: '',
    output: '',
    netG: 'auto',
    ngf: 0,
    norm: '',
    load_size: 0,
    eval: false,
    ...MAX_PIXELS_OPTION,
    ...MAX_MEMORY_OPTION,
    ...MAX_HOST_MEMORY_OPTION,
  });
  if (!a.weights || !a.input || !a.output)
    throw new OptionError('translate: --weights, --input and --output are required');
  const maxPixels = maxPixelsFrom(a.max_pixels);
  return { ...a, weights: a.weights, input: a.input, output: a.output, maxPixels };
}

/** A message as one line, for the failure list. */
const oneLine = (e: CgError) => e.message.replace(/\s*\n\s*/g, ' ');

export async function cmdTranslate(argv: string[], device: Device): Promise<void> {
  const a = parseTranslateArgs(argv);
  // Inputs and outputs are checked before the model loads, so a typo fails in a moment.
  const { isDir, paths } = await listInputs(a.input);
  let outputs: string[];
  if (isDir) {
    const { names, notes } = outputNames(paths);
    for (const note of notes) log(note);
    outputs = names.map((n) => join(a.output, n));
    const inputSet = new Set(paths.map((p) => resolve(p).toLowerCase()));
    const clobbered = outputs.find((p) => inputSet.has(resolve(p).toLowerCase()));
    if (clobbered) {
      throw new DataError(`${clobbered}: the output would overwrite this input; choose another --output folder`);
    }
    await prepareOutputFolder(a.output, true);
  } else {
    if (!/\.(png|jpe?g)$/i.test(a.output)) {
      throw new DataError(`${a.output}: cannot write this format; use a .png, .jpg or .jpeg --output file name`);
    }
    if ((await stat(a.output).catch(() => null))?.isDirectory()) {
      throw new DataError(`${a.output}: is a folder; give an image file name as --output, or a folder as --input`);
    }
    if (resolve(a.output) === resolve(a.input)) {
      throw new DataError(`${a.output}: the output would overwrite the input; choose another --output`);
    }
    outputs = [a.output];
    await prepareOutputFolder(dirname(resolve(a.output)), false);
  }

  const source = new NodeImageSource({ maxPixels: a.maxPixels, warn: log });
  // One image is decoded before the model loads, so an unusable file fails at once.
  const single = isDir ? null : await source.read(paths[0]);

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
  const opts = {
    multiple: sizeMultiple(spec),
    input_nc: spec.input_nc,
    load_size: a.load_size || undefined,
    eval: a.eval,
    // Whole-image inference when it fits; past the adapter's binding limit (or --max_memory), exact tiles.
    maxGpuBytes: maxGpuBytesFrom(a.max_memory),
    // Tiled activations live in host memory: an image that would need more than this is refused up front.
    maxHostBytes: maxHostBytesFrom(a.max_host_memory),
  };
  const failures: string[] = [];
  let written = 0;
  try {
    for (const [i, path] of paths.entries()) {
      const started = performance.now();
      let out: RgbImage;
      let size = '';
      let how = '';
      try {
        const img = single ?? (await source.read(path));
        size = `${img.width}×${img.height}`;
        const r = await translateAnySize(net, img, { ...opts, name: path });
        out = tensorToImages(r.data, r.shape)[0];
        if (r.report) how = `, tiled, peak GPU ${(r.report.peakGpuBytes / 2 ** 20).toFixed(0)} MB`;
      } catch (e) {
        // A bad input is its own problem: a batch goes on with the rest. Anything else (the device) stops it.
        if (!(e instanceof DataError) || !isDir) throw e;
        failures.push(oneLine(e));
        process.stderr.write(`\r\x1b[K${bar(i + 1, paths.length)} ${basename(path)} failed`);
        continue;
      }
      try {
        await writeImage(outputs[i], out);
      } catch (e) {
        // The output side fails the same way for every image (read-only, full disk): stop at the first.
        if (!(e instanceof DataError) || !isDir) throw e;
        throw new DataError(`${oneLine(e)} (stopped after writing ${written} of ${paths.length} images)`);
      }
      written++;
      const ms = performance.now() - started;
      if (isDir) process.stderr.write(`\r\x1b[K${bar(i + 1, paths.length)} ${basename(path)} (${ms.toFixed(0)} ms)`);
      else log(`${path} (${size}) → ${outputs[i]} in ${ms.toFixed(0)} ms${how}`);
    }
  } finally {
    net.dispose();
  }
  if (!isDir) return;
  if (failures.length === 0) {
    log(`\nwrote ${written} images to ${a.output}`);
    return;
  }
  log(`\n${failures.length} image(s) failed:`);
  for (const f of failures) log(`  ${f}`);
  log(`wrote ${written} of ${paths.length} images to ${a.output}`);
  throw new DataError(
    `translate: ${failures.length} of ${paths.length} images failed (listed above); fix or remove them and run again`,
  );
}
