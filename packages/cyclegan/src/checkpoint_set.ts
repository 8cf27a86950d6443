import { CheckpointError } from './errors.js';
import { sha256Hex } from './sha256.js';

/*
 * A checkpoint set: the files one save writes (four nets, and for 'latest' the training state) plus
 * `<label>_manifest.json`, written last, listing each file's size and SHA-256. Each file is written
 * atomically on its own, so a save that dies half-way (full disk, kill) leaves new files beside old ones;
 * the manifest still describes the old set, so the mix is caught on resume instead of training on nets
 * from one iteration with optimizer state from another.
 */

/** The file system as a checkpoint set needs it (a subset of TrainerIO). */
export interface SetIO {
  writeFile(path: string, bytes: Uint8Array): Promise<void>;
  readFile(path: string): Promise<Uint8Array | null>;
}

/** Where the run stood when the set was written. */
export interface SetPosition {
  epoch: number;
  totalIters: number;
}

export interface ManifestEntry {
  /** File name inside the run folder. */
  name: string;
  bytes: number;
  sha256: string;
}

export interface Manifest extends SetPosition {
  format: typeof FORMAT;
  label: string;
  files: ManifestEntry[];
}

export interface LoadedSet {
  /** Bytes by file name; null where a file does not exist (only possible without a manifest). */
  files: Map<string, Uint8Array | null>;
  /** null for a set written before manifests existed: nothing could be checked. */
  manifest: Manifest | null;
}

const FORMAT = 'cyclegan-webgpu/checkpoint-set/1';

const joinPath = (dir: string, name: string) => `${dir}/${name}`.replace(/\/+/g, '/');

export function manifestName(label: string): string {
  return `${label}_manifest.json`;
}

/**
 * Writes every file, then the manifest: the set counts as saved only once its manifest is. Each file's
 * bytes are made when it is written, so only one file of a large set is in memory at a time.
 */
export async function writeCheckpointSet(
  io: SetIO,
  dir: string,
  label: string,
  files: readonly { name: string; bytes: () => Promise<Uint8Array> }[],
  at: SetPosition,
): Promise<void> {
  const entries: ManifestEntry[] = [];
  for (const f of files) {
    const bytes = await f.bytes();
    await io.writeFile(joinPath(dir, f.name), bytes);
    entries.push({ name: f.name, bytes: bytes.length, sha256: await sha256Hex(bytes) });
  }
  const manifest: Manifest = { format: FORMAT, label, epoch: at.epoch, totalIters: at.totalIters, files: entries };
  await io.writeFile(joinPath(dir, manifestName(label)), new TextEncoder().encode(JSON.stringify(manifest, null, 1)));
}

/**
 * Reads the files of the set `label` and checks them against its manifest. `names` are the files the caller
 * wants; with a manifest, each one it lists must be present, of the listed size and hash. Throws a
 * CheckpointError naming the first bad file and what to do.
 */
export async function readCheckpointSet(
  io: SetIO,
  dir: string,
  label: string,
  names: readonly string[],
): Promise<LoadedSet> {
  const manifestPath = joinPath(dir, manifestName(label));
  const manifestBytes = await io.readFile(manifestPath);
  const manifest = manifestBytes ? parseManifest(manifestBytes, manifestPath, label) : null;
  const files = new Map<string, Uint8Array | null>();
  for (const name of names) {
    const path = joinPath(dir, name);
    const bytes = await io.readFile(path);
    files.set(name, bytes);
    const entry = manifest?.files.find((e) => e.name === name);
    if (!entry) continue;
    const fix = `resume from an earlier save with --epoch <N> (an epoch saved every --save_epoch_freq), or start over without --continue_train`;
    if (!bytes) throw new CheckpointError(`${path}: missing from the checkpoint set in ${manifestPath}; ${fix}`);
    if (bytes.length !== entry.bytes || (await sha256Hex(bytes)) !== entry.sha256) {
      throw new CheckpointError(
        `${path}: not the file ${manifestPath} lists (${bytes.length === entry.bytes ? 'same size, different contents' : `${bytes.length} bytes, expected ${entry.bytes}`}; ` +
          `an interrupted save or another run wrote it), so this set mixes iterations; ${fix}`,
      );
    }
  }
  return { files, manifest };
}

function parseManifest(bytes: Uint8Array, path: string, label: string): Manifest {
  let m: Manifest;
  try {
    m = JSON.parse(new TextDecoder().decode(bytes));
  } catch (e) {
    throw new CheckpointError(
      `${path}: unreadable (${(e as Error).message}); resume from an earlier save with --epoch <N>, or start over without --continue_train`,
    );
  }
  if (m?.format !== FORMAT || m.label !== label || !Array.isArray(m.files)) {
    throw new CheckpointError(`${path}: not a checkpoint-set manifest of this project for '${label}'`);
  }
  return m;
}
