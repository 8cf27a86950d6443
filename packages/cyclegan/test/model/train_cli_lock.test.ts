import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Rng } from '@cg/tensor-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeSyntheticDomains } from '../../src/index.js';

// Spawns packages/cyclegan/dist/cli.js: run `npx tsc -b` first.
const cli = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cg-cli-lock-'));
  const { writePng } = await import('../../src/data/fs-images.js');
  const d = makeSyntheticDomains(4, 16, new Rng(5));
  for (const [k, img] of d.A.entries()) await writePng(join(dir, 'data', 'trainA', `a${k}.png`), img);
  for (const [k, img] of d.B.entries()) await writePng(join(dir, 'data', 'trainB', `b${k}.png`), img);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const trainArgs = (name: string) => [
  cli,
  'train',
  ...['--dataroot', join(dir, 'data'), '--checkpoints_dir', join(dir, 'ck'), '--name', name],
  ...['--netG', 'resnet_2blocks', '--ngf', '4', '--ndf', '4', '--netD', 'n_layers', '--n_layers_D', '2'],
  ...['--load_size', '18', '--crop_size', '16', '--n_epochs', '100000', '--diagnostics', 'false', '--gpu_ids', '0'],
];

async function waitFor(check: () => boolean, what: () => string, ms = 60_000): Promise<void> {
  const until = Date.now() + ms;
  while (!check()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('train holds a lock on its run folder', () => {
  it('refuses a second run on the same --name in one line, and Ctrl-C releases the lock', async () => {
    const lockPath = join(dir, 'ck', 'busy', '.lock');
    // Its own process group, so SIGINT reaches it and its Dawn-filtering child as Ctrl-C would.
    const first = spawn(process.execPath, trainArgs('busy'), { detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
    let firstErr = '';
    first.stderr.on('data', (c) => {
      firstErr += c;
    });
    const exited = new Promise<number | null>((r) =>
      first.once('exit', (code, signal) => r(code ?? (signal ? 130 : null))),
    );
    try {
      await waitFor(
        () => firstErr.includes('End of epoch 1 '),
        () => `the first run to train; it printed:\n${firstErr}`,
      );
      const pid = Number((await readFile(lockPath, 'utf8')).trim());
      const second = spawnSync(process.execPath, trainArgs('busy'), { encoding: 'utf8', timeout: 120_000 });
      expect(second.status).toBe(1);
      const lines = second.stderr.trim().split('\n');
      expect(lines.at(-1)).toBe(
        `RunLockedError: ${lockPath}: another train run (pid ${pid}) is using this --name; wait for it to finish or choose another --name (if pid ${pid} is not a cyclegan train, delete ${lockPath})`,
      );
      expect(lines.filter((l) => l.includes('--gpu_ids'))).toEqual([
        '--gpu_ids: ignored; WebGPU has no device index, so the adapter chooses the GPU',
      ]);
    } finally {
      process.kill(-first.pid!, 'SIGINT');
    }
    expect(await exited).toBe(130);
    expect(existsSync(lockPath)).toBe(false);
  }, 180_000);
});
