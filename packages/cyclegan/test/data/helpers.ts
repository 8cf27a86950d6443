import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { encodePng } from '../../src/data/fs-images.js';
import { newImage } from '../../src/data/image.js';

/** A black RGB PNG of `w × h` pixels. */
export const png = (w: number, h: number): Uint8Array => encodePng(newImage(w, h, 3));

/**
 * A writer of dataset folders under one temporary folder (named after `prefix`), removed after the calling
 * file's tests: `dataset(name, files)` writes each `files` entry (relative path → bytes or text) under
 * `<tmp>/<name>` and returns that folder.
 */
export function datasetWriter(prefix: string): (name: string, files: Record<string, Uint8Array | string>) => string {
  const root = mkdtempSync(join(tmpdir(), prefix));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  return (name, files) => {
    const dir = join(root, name);
    for (const [rel, bytes] of Object.entries(files)) {
      mkdirSync(join(dir, rel, '..'), { recursive: true });
      writeFileSync(join(dir, rel), bytes);
    }
    return dir;
  };
}
