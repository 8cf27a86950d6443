// One `train` per run folder: a second run on the same --name would write the same checkpoints and
// interleave its loss log with the first one's.
import { linkSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CheckpointError, RunLockedError } from './errors.js';

export interface RunLock {
  path: string;
  /** Idempotent and synchronous, so it also works from 'exit' and signal handlers. */
  release(): void;
}

export const LOCK_FILE = '.lock';

/**
 * Creates `<dir>/.lock` holding our pid. The pid goes into a temporary file first, which is then hard-linked
 * to `.lock`: the link fails if `.lock` exists (like O_EXCL), and a lock is never seen without its pid,
 * which a plain `open(path, 'wx')` then write would allow for a moment. A lock whose pid is
 * no longer running is left over from a crash and is taken over with a log line. Two processes taking over
 * the same stale lock at the same instant could both win; that needs a crash and two restarts racing.
 */
export function acquireRunLock(dir: string, log: (line: string) => void): RunLock {
  const path = join(dir, LOCK_FILE);
  for (let attempt = 0; ; attempt++) {
    if (createWithPid(dir, path)) return heldLock(path);
    const pid = readPid(path);
    if (pid !== null && isRunning(pid)) {
      throw new RunLockedError(
        `${path}: another train run (pid ${pid}) is using this --name; wait for it to finish or choose another --name (if pid ${pid} is not a cyclegan train, delete ${path})`,
      );
    }
    if (attempt > 0) throw new RunLockedError(`${path}: cannot take over the lock (it keeps coming back); try again`);
    log(`${path}: taking over a lock left by pid ${pid ?? '?'}, which is no longer running`);
    try {
      unlinkSync(path);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT') throw new CheckpointError(`${path}: cannot remove the stale lock (${code}); delete it`);
    }
  }
}

/** true if we created the lock; false if it exists. */
function createWithPid(dir: string, path: string): boolean {
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, `${process.pid}\n`);
    linkSync(tmp, path);
    return true;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    throw new CheckpointError(
      `${dir}: cannot create the lock file ${LOCK_FILE} (${code ?? (e as Error).message}); choose a writable --checkpoints_dir`,
    );
  } finally {
    try {
      unlinkSync(tmp);
    } catch {
      // Never created (the folder is not writable).
    }
  }
}

function heldLock(path: string): RunLock {
  let held = true;
  const release = () => {
    if (!held) return;
    held = false;
    process.off('exit', release);
    // Never remove a lock that another process has since taken over.
    if (readPid(path) === process.pid) {
      try {
        unlinkSync(path);
      } catch {
        // Already gone: nothing to release.
      }
    }
  };
  process.on('exit', release);
  return { path, release };
}

function readPid(path: string): number | null {
  try {
    const pid = Number.parseInt(readFileSync(path, 'utf8'), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/** Signal 0 checks existence: ESRCH means no such process; EPERM means it exists but is someone else's. */
function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
