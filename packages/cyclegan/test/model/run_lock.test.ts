import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CheckpointError } from '@cg/cyclegan';
import { CgError, type Device } from '@cg/tensor-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cmdTrain } from '../../src/cli-train.js';
import { acquireRunLock } from '../../src/fs-lock.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cg-lock-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A pid that surely belongs to no process: one that has just exited. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '']);
  await new Promise((r) => child.once('exit', r));
  return child.pid!;
}

describe('one train per --name', () => {
  it('refuses a second lock with one line naming the lock file and the pid, and frees it on release', async () => {
    const run = join(dir, 'twice');
    await mkdir(run);
    const lock = acquireRunLock(run, () => {});
    expect((await readFile(lock.path, 'utf8')).trim()).toBe(String(process.pid));
    let err: unknown;
    try {
      acquireRunLock(run, () => {});
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CgError);
    expect((err as Error).message).toContain(`${join(run, '.lock')}: another train run (pid ${process.pid})`);
    expect((err as Error).message).not.toContain('\n');
    lock.release();
    expect(existsSync(lock.path)).toBe(false);
    acquireRunLock(run, () => {}).release();
  });

  it('respects a lock held by another live process, and takes over one whose process is gone', async () => {
    const run = join(dir, 'other');
    await mkdir(run);
    const holder = spawn('sleep', ['30']);
    try {
      await writeFile(join(run, '.lock'), `${holder.pid}\n`);
      expect(() => acquireRunLock(run, () => {})).toThrow(`another train run (pid ${holder.pid})`);
    } finally {
      holder.kill();
    }
    const stale = await deadPid();
    await writeFile(join(run, '.lock'), `${stale}\n`);
    const lines: string[] = [];
    const lock = acquireRunLock(run, (l) => lines.push(l));
    expect(lines).toEqual([`${lock.path}: taking over a lock left by pid ${stale}, which is no longer running`]);
    expect((await readFile(lock.path, 'utf8')).trim()).toBe(String(process.pid));
    lock.release();
  });

  it('train refuses while the lock is held, and releases it when training fails', async () => {
    const fakeDevice = {} as Device; // never reached: both runs stop before training starts
    const argv = ['--dataroot', join(dir, 'no-such-data'), '--checkpoints_dir', dir, '--name', 'cli'];
    await mkdir(join(dir, 'cli'), { recursive: true });
    const held = acquireRunLock(join(dir, 'cli'), () => {});
    await expect(cmdTrain(argv, fakeDevice)).rejects.toThrow(/\.lock: another train run/);
    held.release();
    await expect(cmdTrain(argv, fakeDevice)).rejects.toThrow(/no-such-data/);
    expect(existsSync(join(dir, 'cli', '.lock'))).toBe(false);
  });

  it('names the folder when the lock cannot be written there', async () => {
    const file = join(dir, 'lock-in-a-file');
    await writeFile(file, 'not a folder');
    expect(() => acquireRunLock(file, () => {})).toThrow(CheckpointError);
    expect(() => acquireRunLock(file, () => {})).toThrow(
      `${file}: cannot create the lock file .lock (ENOTDIR); choose a writable --checkpoints_dir`,
    );
  });

  it('names the checkpoints folder in one line when it cannot be created', async () => {
    const file = join(dir, 'a-file');
    await writeFile(file, 'not a folder');
    const argv = ['--dataroot', 'data', '--checkpoints_dir', join(file, 'checkpoints'), '--name', 'x'];
    const run = cmdTrain(argv, {} as Device);
    await expect(run).rejects.toThrow(CheckpointError);
    await expect(run).rejects.toThrow(
      `${join(file, 'checkpoints', 'x')}: cannot create the checkpoints folder (ENOTDIR); choose a writable --checkpoints_dir`,
    );
  });
});
