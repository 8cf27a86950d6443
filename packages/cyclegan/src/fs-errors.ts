// Node's file-system errors in the words a user acts on: what went wrong with which path, and what to do.
// Every file-facing part of the CLI (images, checkpoints, outputs) and its top-level error printer use it.
import { lstat, readlink } from 'node:fs/promises';
import { DataError } from './errors.js';

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** What Node's file-system error codes mean, in words, and what a user can do about each. */
const FS_PROBLEMS: Record<string, { words: string; fix: string }> = {
  ENOENT: { words: 'no such file or directory', fix: 'check the path' },
  ENOTDIR: { words: 'a part of the path is a file, not a folder', fix: 'check the path' },
  EISDIR: { words: 'is a directory', fix: 'a file was expected here: rename or move the folder' },
  EEXIST: { words: 'already exists', fix: 'remove it or choose another path' },
  EACCES: { words: 'permission denied', fix: 'check its permissions (ls -l) or choose another path' },
  EPERM: { words: 'operation not permitted', fix: 'check its permissions (ls -l) or choose another path' },
  EROFS: { words: 'read-only file system', fix: 'choose a path on a writable disk' },
  ELOOP: { words: 'too many symbolic links (a symlink loop)', fix: 'fix or remove the link' },
  ENAMETOOLONG: { words: 'file name too long', fix: 'use a shorter path' },
  ENOSPC: { words: 'no space left on device', fix: 'free some space and run again' },
  EDQUOT: { words: 'disk quota exceeded', fix: 'free some space and run again' },
  EMFILE: { words: 'too many open files', fix: 'raise the limit (ulimit -n) and run again' },
  ENFILE: { words: 'too many open files', fix: 'raise the limit (ulimit -n) and run again' },
  EIO: { words: 'input/output error', fix: 'check the disk' },
};

/** Is `e` a Node error whose code we can put in words? */
export function isFsError(e: unknown): e is NodeJS.ErrnoException {
  const code = (e as NodeJS.ErrnoException | null)?.code;
  return typeof code === 'string' && code in FS_PROBLEMS;
}

/** A Node fs error (or anything else) in words plus what to do: `no such file or directory; check the path`. */
export function describeFsError(e: unknown): { words: string; fix: string } {
  const code = (e as NodeJS.ErrnoException | null)?.code;
  if (typeof code === 'string' && code in FS_PROBLEMS) return FS_PROBLEMS[code];
  return { words: message(e), fix: 'check the path and its permissions' };
}

/** `${path}: cannot ${action} (${words}); ${fix}` as a DataError, for reads and writes alike. */
export function fsError(path: string, action: string, e: unknown): DataError {
  const { words, fix } = describeFsError(e);
  return new DataError(`${path}: cannot ${action} (${words}); ${fix}`);
}

/**
 * `fsError` that also says when an ENOENT comes from a symbolic link whose target is gone: the link itself
 * is listed by `ls`, so "no such file" alone would puzzle.
 */
export async function fsErrorAt(path: string, action: string, e: unknown): Promise<DataError> {
  if ((e as NodeJS.ErrnoException | null)?.code === 'ENOENT') {
    const target = await lstat(path).then(
      (s) => (s.isSymbolicLink() ? readlink(path) : null),
      () => null,
    );
    if (target !== null) {
      return new DataError(
        `${path}: cannot ${action} (a symbolic link to ${target}, which does not exist); fix or remove the link`,
      );
    }
  }
  return fsError(path, action, e);
}
