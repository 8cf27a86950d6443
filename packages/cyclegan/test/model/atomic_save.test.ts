import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { readCheckpoint } from '../../src/index.js';

const script = fileURLToPath(new URL('./fixtures/save_forever.mjs', import.meta.url));
const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

/** Starts a child that saves in a loop, kills it with SIGKILL after `ms` once it has saved once. */
async function killDuringSaves(path: string, ms: number): Promise<void> {
  const child = spawn(process.execPath, [script, path], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`saver exited early (${code})`)));
  });
  await new Promise((r) => setTimeout(r, ms));
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await exited;
}

describe('checkpoint writes are atomic', () => {
  it('a process killed mid-save always leaves a complete previous or new checkpoint', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cg-atomic-'));
    dirs.push(dir);
    const path = join(dir, 'latest_net_G_A.safetensors');
    const versions = new Set<number>();
    for (const ms of [3, 17, 41, 66, 90, 133]) {
      await killDuringSaves(path, ms);
      const sd = readCheckpoint(await readFile(path), path); // throws on a torn file
      const w = sd.get('model.1.weight')!.data;
      const k = w[0];
      expect(k).toBeGreaterThanOrEqual(1);
      expect(w.every((v) => v === k)).toBe(true);
      expect(sd.get('model.1.bias')!.data.every((v) => v === k)).toBe(true);
      versions.add(k);
    }
    // Leftover temp files are harmless and never take the checkpoint's name.
    expect((await readdir(dir)).filter((f) => !f.endsWith('.tmp'))).toEqual(['latest_net_G_A.safetensors']);
    expect(versions.size).toBeGreaterThan(0);
  });
});
