import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RgbImage } from '@cg/cyclegan';
import { decodeImage } from '@cg/cyclegan/node';
import { beforeAll, describe, expect, it } from 'vitest';

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
