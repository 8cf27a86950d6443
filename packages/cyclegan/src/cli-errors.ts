// Every failure a user can reach ends as one line that names the file, option or shape and says what
// to do. The CLI decides by class: our own errors carry their message; Node's file-system errors are
// put into words with their path; anything else is a bug, reported as one line unless --debug.
import { CgError } from '@cg/tensor-core';
import { describeFsError, isFsError } from './fs-errors.js';

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
  if (isFsError(e)) {
    const { words, fix } = describeFsError(e);
    const where = err.path ? `${err.path}: ` : '';
    return `FileError: ${where}${words}; ${fix} (${err.code}${err.syscall ? ` in ${err.syscall}` : ''})${stack}`;
  }
  const message = e instanceof Error ? e.message : String(e);
  return `internal error: ${message.split('\n')[0]}. This is a bug in cyclegan-webgpu; run again with --debug for the stack and report it.${stack}`;
}
