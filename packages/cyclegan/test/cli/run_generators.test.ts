import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CheckpointError } from '@cg/cyclegan';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testDevice } from '../../../../test/helpers/device.js';
import { loadRunGenerator } from '../../src/cli-run-generators.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cg-run-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

const run = (name: string) => ({
  checkpoints_dir: dir,
  name,
  checkpoint_format: 'safetensors' as const,
  epoch: 'latest',
});

describe('test and evaluate load a run’s generators the same way', () => {
  it('no checkpoint in either format: one CheckpointError naming the run folder and what to do', async () => {
    const err = await loadRunGenerator(await testDevice(), run('empty'), 'G_A', {}, 'test').catch((e) => e);
    expect(err).toBeInstanceOf(CheckpointError);
    expect(err.message).toMatch(/^test: no latest_net_G_A\.\{safetensors,pth\} in .*empty; train first/);
  });

  it('a file that is there but broken is reported as broken, never as missing', async () => {
    const folder = join(dir, 'broken');
    await mkdir(folder);
    await writeFile(join(folder, 'latest_net_G_A.pth'), new Uint8Array([1, 2, 3]));
    const err = await loadRunGenerator(await testDevice(), run('broken'), 'G_A', {}, 'test').catch((e) => e);
    expect(err).toBeInstanceOf(CheckpointError);
    expect(err.message).toContain('latest_net_G_A.pth');
    expect(err.message).not.toMatch(/train first/);
  });
});
