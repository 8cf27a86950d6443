import { spawn } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RgbImage } from '@cg/cyclegan';
import { decodeImage, encodePng } from '@cg/cyclegan/node';
import { beforeAll, describe, expect, it } from 'vitest';
import { pngWithHeader } from '../../packages/cyclegan/test/data/hostile_images.js';

/**
 * `pnpm cyclegan translate` end to end: the built CLI (packages/cyclegan/dist,
 * so run `pnpm build` first; `npm test` does) in a child process, on the
 * torch-written parity fixtures. Output PNGs are compared with PyTorch's
 * (test/fixtures/make_generator_parity.py) within ±1 level.
 */

const here = dirname(fileURLToPath(import.meta.url));
const CLI = resolve(here, '../../packages/cyclegan/dist/cli.js');
const PARITY = resolve(here, '../fixtures/parity');
const WEIGHTS = join(PARITY, 'resnet9_instance_zip.pth');

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** stderr without the adapter's own warnings and blank lines. */
  lines: string[];
}

function translate(args: string[], cwd: string): Promise<CliResult> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [CLI, 'translate', ...args], { cwd });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    child.on('error', fail);
    child.on('close', (code) => {
      const lines = stderr
        .split(/[\r\n]+/)
        .map((l) => l.replaceAll(`${String.fromCharCode(27)}[K`, ''))
        .filter((l) => l.trim() !== '' && !l.startsWith('Warning: '));
      done({ code, stdout, stderr, lines });
    });
  });
}

const readPng = (path: string): RgbImage => decodeImage(readFileSync(path), path);

/** Largest per-value difference of two same-sized images. */
function maxLevelDiff(a: RgbImage, b: RgbImage): number {
  expect([a.width, a.height, a.channels]).toEqual([b.width, b.height, b.channels]);
  let m = 0;
  for (let i = 0; i < a.data.length; i++) m = Math.max(m, Math.abs(a.data[i] - b.data[i]));
  return m;
}

let dir: string;
beforeAll(() => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`pnpm build\` before these tests`);
  dir = mkdtempSync(join(tmpdir(), 'cg-translate-'));
});

describe('pnpm cyclegan translate', () => {
  it('translates one image as PyTorch does (official tensor2im PNG, ±1 level)', async () => {
    const r = await translate(
      ['--weights', WEIGHTS, '--input', join(PARITY, 'input_32x24.png'), '--output', 'out.png'],
      dir,
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/dropped 69 stale InstanceNorm running-stat keys/);
    expect(r.stderr).toMatch(/resnet_9blocks, ngf 4, norm instance, 3→3 channels/);
    expect(r.stderr).toMatch(/\(32×24\) → out\.png in \d+ ms/);
    expect(
      maxLevelDiff(readPng(join(dir, 'out.png')), readPng(join(PARITY, 'resnet9_instance.train.png'))),
    ).toBeLessThanOrEqual(1);
  });

  it('keeps a non-multiple-of-4 size exactly: reflect-pad, translate, crop back (no resize)', async () => {
    const r = await translate(
      ['--weights', WEIGHTS, '--input', join(PARITY, 'input_31x21.png'), '--output', 'odd.png'],
      dir,
    );
    expect(r.code, r.stderr).toBe(0);
    const out = readPng(join(dir, 'odd.png'));
    expect([out.width, out.height]).toEqual([31, 21]);
    // PyTorch on F.pad(x, (0, 1, 1, 2), 'reflect'), cropped back to 31×21.
    expect(maxLevelDiff(out, readPng(join(PARITY, 'resnet9_instance.padded.png')))).toBeLessThanOrEqual(1);
  });

  it('--max_memory below what the image needs runs the exact tiled executor: still PyTorch within ±1 level', async () => {
    // 31×21 padded to 32×24 in ngf 4 needs ~50 KB per activation; 0.02 MB forces tiles in every layer.
    for (const [input, want, out] of [
      ['input_31x21.png', 'resnet9_instance.padded.png', 'tiled_odd.png'],
      ['input_32x24.png', 'resnet9_instance.train.png', 'tiled.png'],
    ]) {
      const r = await translate(
        ['--weights', WEIGHTS, '--input', join(PARITY, input), '--output', out, '--max_memory', '0.02'],
        dir,
      );
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/ms, tiled, peak GPU \d+ MB/);
      expect(maxLevelDiff(readPng(join(dir, out)), readPng(join(PARITY, want))), input).toBeLessThanOrEqual(1);
    }
  });

  it('translates a folder with a progress bar, skipping non-images', async () => {
    const input = join(dir, 'in');
    mkdirSync(input);
    copyFileSync(join(PARITY, 'input_32x24.png'), join(input, 'a.png'));
    copyFileSync(join(PARITY, 'input_31x21.png'), join(input, 'b.png'));
    copyFileSync(join(PARITY, 'input_32x24.png'), join(input, 'c.png'));
    writeFileSync(join(input, 'notes.txt'), 'not an image\n');
    const r = await translate(['--weights', WEIGHTS, '--input', input, '--output', 'out_dir'], dir);
    expect(r.code, r.stderr).toBe(0);
    expect(readdirSync(join(dir, 'out_dir')).sort()).toEqual(['a.png', 'b.png', 'c.png']);
    for (const n of ['1/3', '2/3', '3/3']) expect(r.lines.some((l) => l.includes('[') && l.includes(n))).toBe(true);
    expect(r.stderr).toMatch(/wrote 3 images to out_dir/);
    expect([readPng(join(dir, 'out_dir/b.png')).width, readPng(join(dir, 'out_dir/b.png')).height]).toEqual([31, 21]);
    expect(readFileSync(join(dir, 'out_dir/c.png'))).toEqual(readFileSync(join(dir, 'out_dir/a.png')));
  });

  it('--load_size 256 resizes like the official test (256×256 output)', async () => {
    const weights = join(PARITY, 'resnet6_dropout_legacy.pth'); // the smallest net: ngf 2
    const args = ['--weights', weights, '--input', join(PARITY, 'input_31x21.png'), '--output', 'big.png'];
    const r = await translate([...args, '--load_size', '256', '--eval'], dir);
    expect(r.code, r.stderr).toBe(0);
    const out = readPng(join(dir, 'big.png'));
    expect([out.width, out.height]).toEqual([256, 256]);
  });

  it('a corrupt checkpoint exits with code 1 and one CheckpointError line, no stack trace', async () => {
    const bytes = readFileSync(WEIGHTS);
    writeFileSync(join(dir, 'truncated.pth'), bytes.subarray(0, bytes.length >> 1));
    const r = await translate(
      ['--weights', 'truncated.pth', '--input', join(PARITY, 'input_32x24.png'), '--output', 'x.png'],
      dir,
    );
    expect(r.code).toBe(1);
    expect(r.lines, r.stderr).toHaveLength(1);
    expect(r.lines[0]).toMatch(/^CheckpointError: truncated\.pth: .*(truncated|re-download)/);
    expect(r.stderr).not.toMatch(/^\s+at /m);
    expect(existsSync(join(dir, 'x.png'))).toBe(false);
  });
});

/** Exit code 1 and exactly one `<Error>: …` line that names `file`, with no stack trace. */
function expectOneErrorLine(r: CliResult, name: RegExp, file: string): string {
  expect(r.code, r.stderr).toBe(1);
  expect(r.lines, r.stderr).toHaveLength(1);
  expect(r.lines[0]).toMatch(name);
  expect(r.lines[0]).toContain(file);
  expect(r.stderr).not.toMatch(/^\s+at /m);
  return r.lines[0];
}

const isRoot = process.getuid?.() === 0;

describe('translate: every failure a user can reach is one line', () => {
  const IMG = join(PARITY, 'input_32x24.png');
  const run = (input: string, output = 'x.png', extra: string[] = []) =>
    translate(['--weights', WEIGHTS, '--input', input, '--output', output, ...extra], dir);

  it('a missing --input', async () => {
    const line = expectOneErrorLine(await run('nope.png'), /^DataError: /, 'nope.png');
    expect(line).toMatch(/cannot open --input \(no such file or directory\); check the path/);
  });

  it('a dangling symlink and a symlink loop as --input', async () => {
    symlinkSync(join(dir, 'gone.png'), join(dir, 'dangling.png'));
    expect(expectOneErrorLine(await run('dangling.png'), /^DataError: /, 'dangling.png')).toMatch(
      /a symbolic link to .*gone\.png, which does not exist/,
    );
    symlinkSync(join(dir, 'loop2.png'), join(dir, 'loop1.png'));
    symlinkSync(join(dir, 'loop1.png'), join(dir, 'loop2.png'));
    expect(expectOneErrorLine(await run('loop1.png'), /^DataError: /, 'loop1.png')).toMatch(/too many symbolic links/);
  });

  it('a 20000×20000 PNG of a few hundred bytes fails in under 2 s, naming its size and --max_pixels', async () => {
    writeFileSync(join(dir, 'bomb.png'), pngWithHeader(20000, 20000));
    const t0 = performance.now();
    const r = await run('bomb.png');
    const seconds = (performance.now() - t0) / 1000;
    const line = expectOneErrorLine(r, /^DataError: /, 'bomb.png');
    expect(line).toMatch(/20000×20000 \(400\.0 MP\) is over the limit of 178956970 pixels.*--max_pixels/);
    // Before: 46 s and 6.2 GB, then a DeviceError. The process (with Node's start-up) now ends at once.
    expect(seconds).toBeLessThan(2);
    expect(existsSync(join(dir, 'x.png'))).toBe(false);
  });

  it('an image whose tiled activations exceed --max_host_memory is refused before it runs, naming both sizes', async () => {
    const t0 = performance.now();
    const r = await translate(
      [
        '--weights',
        WEIGHTS,
        '--input',
        join(PARITY, 'input_32x24.png'),
        '--output',
        'host.png',
        '--max_memory',
        '0.02',
        '--max_host_memory',
        '0.01',
      ],
      dir,
    );
    expect(r.code).toBe(1);
    expect(r.lines.at(-1)).toMatch(
      /^DataError: .*input_32x24\.png: a 32×24 image needs up to [\d.]+ KiB of host memory .* over the 10\.2 KiB budget .*--max_host_memory/,
    );
    expect(existsSync(join(dir, 'host.png'))).toBe(false);
    expect(performance.now() - t0).toBeLessThan(60_000);
  });

  it('--max_pixels sets the limit', async () => {
    const line = expectOneErrorLine(await run(IMG, 'x.png', ['--max_pixels', '500']), /^DataError: /, 'input_32x24');
    expect(line).toMatch(/32×24 .* over the limit of 500 pixels/);
  });

  it('an image too small for the generator names the file, its size and the minimum', async () => {
    writeFileSync(join(dir, 'tiny.png'), encodePngForTest(4, 4));
    const r = await run('tiny.png');
    // The minimum depends on the generator, so the model's own lines come first; the error is the only one.
    expect(r.code, r.stderr).toBe(1);
    expect(r.lines.filter((l) => /Error/.test(l))).toHaveLength(1);
    expect(r.lines.at(-1)).toMatch(
      /^DataError: tiny\.png: 4×4 is too small for this generator: both sides must be at least 5 pixels/,
    );
    expect(r.stderr).not.toMatch(/^\s+at /m);
  });

  it('an output that cannot be written (under a regular file: what a read-only folder is for root)', async () => {
    writeFileSync(join(dir, 'a-file'), 'x');
    expect(expectOneErrorLine(await run(IMG, 'a-file/sub/out.png'), /^DataError: /, 'a-file/sub')).toMatch(
      /cannot write to the --output file's folder \(a part of the path is a file, not a folder\); check the path/,
    );
    expect(expectOneErrorLine(await run(IMG, 'a-file/out.png'), /^DataError: /, 'a-file')).toMatch(
      /cannot use the --output file's folder \(it is a file, not a folder\)/,
    );
    const folder = join(dir, 'folder-in');
    mkdirSync(folder);
    copyFileSync(IMG, join(folder, 'a.png'));
    expect(expectOneErrorLine(await run(folder, 'a-file'), /^DataError: /, 'a-file')).toMatch(
      /with a folder as --input, --output must be a folder too/,
    );
  });

  it('a write that fails mid-batch stops the batch: the output side fails the same way for every image', async () => {
    const input = join(dir, 'two');
    mkdirSync(input);
    copyFileSync(IMG, join(input, 'a.png'));
    copyFileSync(IMG, join(input, 'b.png'));
    mkdirSync(join(dir, 'two_out', 'b.png'), { recursive: true });
    const r = await run(input, 'two_out');
    expect(r.code, r.stderr).toBe(1);
    expect(r.lines.at(-1)).toMatch(
      /^DataError: two_out\/b\.png: cannot write the file \(is a directory\).*\(stopped after writing 1 of 2 images\)$/,
    );
    expect(r.stderr).not.toMatch(/wrote 2/);
  });

  it.skipIf(isRoot)(
    'a read-only output folder and an unreadable input (skipped as root: root ignores modes)',
    async () => {
      const ro = join(dir, 'ro_out');
      mkdirSync(ro);
      chmodSync(ro, 0o555);
      expect(expectOneErrorLine(await run(IMG, 'ro_out/x.png'), /^DataError: /, 'ro_out')).toMatch(/permission denied/);
      writeFileSync(join(dir, 'secret.png'), readFileSync(IMG));
      chmodSync(join(dir, 'secret.png'), 0o000);
      expect(expectOneErrorLine(await run('secret.png'), /^DataError: /, 'secret.png')).toMatch(/permission denied/);
    },
  );

  it('a folder: clashing names kept apart, bad files listed, the rest written, "wrote N of M", exit 1', async () => {
    const input = join(dir, 'mixed');
    mkdirSync(input);
    copyFileSync(IMG, join(input, 'same.png'));
    copyFileSync(join(PARITY, 'input_31x21.png'), join(input, 'same.jpg')); // PNG bytes: the content decides
    copyFileSync(IMG, join(input, 'ok.png'));
    mkdirSync(join(input, 'x.png'));
    symlinkSync(join(input, 'gone.png'), join(input, 'dangling.png'));
    writeFileSync(join(input, 'broken.jpg'), 'not a jpeg');
    const r = await run(input, 'mixed_out');
    expect(r.code, r.stderr).toBe(1);
    expect(readdirSync(join(dir, 'mixed_out')).sort()).toEqual(['ok.png', 'same_jpg.png', 'same_png.png']);
    expect(readPng(join(dir, 'mixed_out/same_jpg.png')).width).toBe(31);
    expect(readPng(join(dir, 'mixed_out/same_png.png')).width).toBe(32);
    expect(r.stderr).toMatch(
      /same\.jpg, same\.png would all be written as same\.png: writing same_jpg\.png, same_png\.png/,
    );
    expect(r.stderr).toMatch(/3 image\(s\) failed:/);
    expect(r.lines.filter((l) => /^ {2}\S/.test(l))).toEqual([
      expect.stringMatching(/broken\.jpg: not a PNG or JPEG image/),
      expect.stringMatching(/dangling\.png: cannot read the file \(a symbolic link to .*gone\.png/),
      expect.stringMatching(/x\.png: cannot read the file \(is a directory\)/),
    ]);
    expect(r.stderr).toMatch(/wrote 3 of 6 images to mixed_out/);
    expect(r.lines.at(-1)).toMatch(/^DataError: translate: 3 of 6 images failed \(listed above\)/);
    expect(r.stderr).not.toMatch(/^\s+at /m);
  });
});

function encodePngForTest(w: number, h: number): Uint8Array {
  return encodePng({ width: w, height: h, channels: 3, data: new Uint8Array(w * h * 3).fill(90) });
}
