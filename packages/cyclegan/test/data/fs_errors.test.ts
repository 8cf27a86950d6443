import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataError } from '@cg/cyclegan';
import { afterAll, describe, expect, it } from 'vitest';
import { describeFsError, fsError, NodeImageSource, writeImage } from '../../src/data/fs-images.js';
import { newImage } from '../../src/data/image.js';

/** Every file-system failure a user can reach becomes a DataError naming the path and the problem in words. */

const dir = mkdtempSync(join(tmpdir(), 'cg-fs-errors-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const src = new NodeImageSource();
const isRoot = process.getuid?.() === 0;

async function readError(path: string): Promise<string> {
  const e = await src.read(path).then(
    () => null,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(DataError);
  return (e as DataError).message;
}

/** A Node-style fs error, for codes a test cannot produce (EACCES as root, EROFS without a read-only mount). */
function fakeFsError(code: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: fake, open '/x'`), { code, syscall: 'open', path: '/x' });
}

describe('reading images: fs errors in words', () => {
  it('a missing file', async () => {
    expect(await readError(join(dir, 'missing.png'))).toMatch(
      /missing\.png: cannot read the file \(no such file or directory\); check the path$/,
    );
  });

  it('a dangling symlink says where it points', async () => {
    const link = join(dir, 'dangling.png');
    symlinkSync(join(dir, 'gone.png'), link);
    expect(await readError(link)).toMatch(
      /dangling\.png: cannot read the file \(a symbolic link to .*gone\.png, which does not exist\); fix or remove/,
    );
  });

  it('a symlink loop', async () => {
    symlinkSync(join(dir, 'loop-b.png'), join(dir, 'loop-a.png'));
    symlinkSync(join(dir, 'loop-a.png'), join(dir, 'loop-b.png'));
    expect(await readError(join(dir, 'loop-a.png'))).toMatch(
      /loop-a\.png: cannot read the file \(too many symbolic links \(a symlink loop\)\); fix or remove the link/,
    );
  });

  it('a folder named x.png', async () => {
    mkdirSync(join(dir, 'x.png'));
    expect(await readError(join(dir, 'x.png'))).toMatch(/x\.png: cannot read the file \(is a directory\)/);
  });

  it.skipIf(isRoot)('an unreadable file (skipped as root: root reads files whatever their mode)', async () => {
    const p = join(dir, 'secret.png');
    writeFileSync(p, 'x');
    chmodSync(p, 0o000);
    expect(await readError(p)).toMatch(/secret\.png: cannot read the file \(permission denied\)/);
  });
});

describe('writing images: fs errors in words', () => {
  const img = newImage(2, 2, 3);

  it('a path under a regular file (ENOTDIR), the read-only case a root test can reach', async () => {
    const file = join(dir, 'plain-file');
    writeFileSync(file, 'x');
    const e = await writeImage(join(file, 'out', 'a.png'), img).then(
      () => null,
      (err: unknown) => err,
    );
    expect(e).toBeInstanceOf(DataError);
    expect((e as DataError).message).toMatch(
      /plain-file\/out: cannot create the folder \(a part of the path is a file, not a folder\); check the path/,
    );
  });

  it('permission denied and read-only file system, mapped from fake errors', () => {
    expect(fsError('/out/a.png', 'write the file', fakeFsError('EACCES')).message).toBe(
      '/out/a.png: cannot write the file (permission denied); check its permissions (ls -l) or choose another path',
    );
    expect(fsError('/out/a.png', 'write the file', fakeFsError('EROFS')).message).toBe(
      '/out/a.png: cannot write the file (read-only file system); choose a path on a writable disk',
    );
    expect(describeFsError(fakeFsError('ENOSPC')).words).toBe('no space left on device');
    // Anything else keeps Node's own message rather than inventing one.
    expect(describeFsError(fakeFsError('EWHATEVER')).words).toBe("EWHATEVER: fake, open '/x'");
  });
});
