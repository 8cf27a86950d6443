import { createHash } from 'node:crypto';
import { CheckpointError } from '@cg/cyclegan';
import { Rng } from '@cg/tensor-core';
import { describe, expect, it } from 'vitest';
import { manifestName, readCheckpointSet, writeCheckpointSet } from '../../src/checkpoint_set.js';
import { sha256Hex, sha256Portable } from '../../src/sha256.js';

/** An in-memory file system with the TrainerIO contract. */
function memoryIO() {
  const files = new Map<string, Uint8Array>();
  return {
    files,
    async writeFile(path: string, bytes: Uint8Array) {
      files.set(path, bytes);
    },
    async readFile(path: string) {
      return files.get(path) ?? null;
    },
  };
}

const bytes = (...v: number[]) => new Uint8Array(v);
const set = [
  { name: 'latest_net_G_A.safetensors', bytes: async () => bytes(1, 2, 3) },
  { name: 'latest_train_state.safetensors', bytes: async () => bytes(4, 5) },
];
const names = set.map((f) => f.name);

describe('checkpoint sets', () => {
  it('hashes with SHA-256, through Web Crypto or the portable rounds alike', async () => {
    expect(await sha256Hex(new TextEncoder().encode('abc'))).toBe(
      'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    );
    const rng = new Rng(7);
    // Lengths around the 55/56/64-byte padding edges, and one of several blocks.
    for (const n of [0, 1, 55, 56, 63, 64, 65, 119, 120, 1000, 100_003]) {
      const bytes = Uint8Array.from({ length: n }, () => rng.int(0, 255));
      const expected = createHash('sha256').update(bytes).digest('hex');
      expect(Buffer.from(sha256Portable(bytes)).toString('hex'), `${n} bytes`).toBe(expected);
      expect(await sha256Hex(bytes)).toBe(expected);
    }
  });

  it('writes the manifest last, and reads back a consistent set', async () => {
    const io = memoryIO();
    await writeCheckpointSet(io, 'ck/run', 'latest', set, { epoch: 2, totalIters: 7 });
    expect([...io.files.keys()].at(-1)).toBe(`ck/run/${manifestName('latest')}`);
    const r = await readCheckpointSet(io, 'ck/run', 'latest', names);
    expect(r.manifest?.totalIters).toBe(7);
    expect(r.files.get('latest_train_state.safetensors')).toEqual(bytes(4, 5));
  });

  it('refuses a set where one file was replaced, truncated or removed, naming the file', async () => {
    const io = memoryIO();
    await writeCheckpointSet(io, 'ck/run', 'latest', set, { epoch: 2, totalIters: 7 });
    // A later save that died after the first file: new net, old state, old manifest.
    io.files.set('ck/run/latest_net_G_A.safetensors', bytes(9, 9, 9));
    await expect(readCheckpointSet(io, 'ck/run', 'latest', names)).rejects.toThrow(
      /latest_net_G_A.safetensors: not the file .*latest_manifest.json lists \(same size, different contents.*--epoch <N>/,
    );
    io.files.set('ck/run/latest_net_G_A.safetensors', bytes(1, 2));
    await expect(readCheckpointSet(io, 'ck/run', 'latest', names)).rejects.toThrow(/2 bytes, expected 3/);
    io.files.delete('ck/run/latest_net_G_A.safetensors');
    await expect(readCheckpointSet(io, 'ck/run', 'latest', names)).rejects.toThrow(
      /latest_net_G_A.safetensors: missing from the checkpoint set/,
    );
  });

  it('reads a set without a manifest (older runs) as unverified, and names a corrupt manifest', async () => {
    const io = memoryIO();
    io.files.set('ck/run/latest_net_G_A.safetensors', bytes(1));
    const r = await readCheckpointSet(io, 'ck/run', 'latest', names);
    expect(r.manifest).toBeNull();
    expect(r.files.get('latest_train_state.safetensors')).toBeNull();
    io.files.set(`ck/run/${manifestName('latest')}`, new TextEncoder().encode('{"format": '));
    const bad = readCheckpointSet(io, 'ck/run', 'latest', names);
    await expect(bad).rejects.toThrow(CheckpointError);
    await expect(bad).rejects.toThrow(/latest_manifest.json: unreadable/);
  });
});
