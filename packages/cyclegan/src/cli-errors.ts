// Every failure a user can reach ends as one line that names the file, option or shape and says what
// to do. The CLI decides by class: our own errors carry their message; Node's file-system errors are
// put into words with their path; anything else is a bug, reported as one line unless --debug.
import { CgError } from '@cg/tensor-core';

/** What Node's fs errors mean, in the words a user acts on. */
const FS_CODES: Record<string, string> = {
  ENOENT: 'no such file or directory; check the path',
  ENOTDIR: 'a part of the path is a file, not a folder; check the path',
  EISDIR: 'is a folder where a file was expected',
  EACCES: 'permission denied; check its permissions or choose another path',
  EPERM: 'operation not permitted; check its permissions or choose another path',
  EROFS: 'read-only file system; choose a writable path',
  ELOOP: 'too many symbolic links (a symlink loop); fix or remove the link',
  ENOSPC: 'no space left on the device; free some space and run again',
  EDQUOT: 'disk quota exceeded; free some space and run again',
  EMFILE: 'too many open files; raise the limit (ulimit -n) and run again',
  EEXIST: 'already exists',
  ENAMETOOLONG: 'the file name is too long',
};

interface SystemError extends Error {
  code?: string;
  path?: string;
  dest?: string;
  syscall?: string;
}

/** The one line printed for `e` (plus its stack with `debug`). */
export function describeError(e: unknown, debug = false): string {
  // The stack's own first line repeats the message: keep only its frames.
  const frames = debug && e instanceof Error && e.stack ? e.stack.split('\n').filter((l) => /^\s+at /.test(l)) : [];
  const stack = frames.length ? `\n${frames.join('\n')}` : '';
  if (e instanceof CgError) return `${e.name}: ${e.message}${stack}`;
  const err = e as SystemError;
  if (err && typeof err.code === 'string' && FS_CODES[err.code]) {
    const where = err.path ? `${err.path}: ` : '';
    return `FileError: ${where}${FS_CODES[err.code]} (${err.code}${err.syscall ? ` in ${err.syscall}` : ''})${stack}`;
  }
  const message = e instanceof Error ? e.message : String(e);
  return `internal error: ${message.split('\n')[0]}. This is a bug in cyclegan-webgpu; run again with --debug for the stack and report it.${stack}`;
}
