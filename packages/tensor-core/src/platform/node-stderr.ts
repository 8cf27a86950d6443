// Dawn's own warnings, kept off a normal command line. Dawn prints them from C++ straight to file
// descriptor 2 ("Warning: maxDynamicUniformBuffersPerPipelineLayout artificially reduced …", and
// "Warning: Couldn't load Vulkan …" with a path on Dawn's build machine), where no JavaScript hook sees
// them. The only place to drop them is outside the process: a CLI re-runs itself as a child whose
// stderr it reads, and passes everything else through unchanged, as it comes.
import { spawn } from 'node:child_process';

/** Set in the child so that it does not re-run itself again. */
const CHILD_ENV = 'CG_DAWN_STDERR_FILTERED';
/** The parent's stderr was a terminal: the child keeps drawing progress bars as if it were. */
const TTY_ENV = 'CG_STDERR_IS_TTY';
const COLUMNS_ENV = 'CG_STDERR_COLUMNS';

/** A Dawn log line: `Warning: …` or `Info: …` at the start of a line (its errors reach us as exceptions). */
const DAWN_LINE = /^(Warning|Info): /;
/** The source location Dawn appends to some warnings: `    at operator() (/…/BackendVk.cpp:368)`. */
const DAWN_LOCATION = /^\s+at .*\.(cpp|cc|h):\d+\)?\s*$/;

/**
 * A streaming filter over stderr text that removes Dawn's warning blocks
 * (the warning line, its source-location lines and the blank line after
 * them). Text is passed on as soon as it cannot be the start of a Dawn line,
 * so `\r` progress bars still draw live.
 */
export function dawnWarningFilter(): { push(text: string): string; end(): string } {
  let pending = '';
  let inBlock = false;
  const keep = (line: string): boolean => {
    if (DAWN_LINE.test(line)) {
      inBlock = true;
      return false;
    }
    if (inBlock && (DAWN_LOCATION.test(line) || line.trim() === '')) return false;
    inBlock = false;
    return true;
  };
  // Could `text` still grow into a line we would drop? Then hold it until its newline comes.
  const mayBeDawn = (text: string) =>
    ['Warning: ', 'Info: '].some((p) => p.startsWith(text) || text.startsWith(p)) ||
    (inBlock && /^(\s*|\s+(a|at( .*)?))$/.test(text));
  return {
    push(text) {
      pending += text;
      let out = '';
      for (let nl = pending.indexOf('\n'); nl >= 0; nl = pending.indexOf('\n')) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        if (keep(line)) out += `${line}\n`;
      }
      if (pending && !mayBeDawn(pending)) {
        out += pending;
        pending = '';
        inBlock = false;
      }
      return out;
    },
    end() {
      const rest = pending && keep(pending) ? pending : '';
      pending = '';
      return rest;
    },
  };
}

/** True in the process that should do the work (the child, or a run with filtering turned off). */
export function isDawnFilteredChild(): boolean {
  return process.env[CHILD_ENV] === '1';
}

/**
 * Runs this same script again as a child with Dawn's warnings removed from
 * its stderr, and resolves with the child's exit code. Call it from a CLI's
 * entry point unless the user asked for `--verbose`, or `isDawnFilteredChild()`.
 */
export function rerunWithDawnWarningsFiltered(): Promise<number> {
  return new Promise((resolvePromise) => {
    const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
      stdio: ['inherit', 'inherit', 'pipe'],
      env: {
        ...process.env,
        [CHILD_ENV]: '1',
        [TTY_ENV]: process.stderr.isTTY ? '1' : '0',
        [COLUMNS_ENV]: String(process.stderr.columns ?? 0),
      },
    });
    const filter = dawnWarningFilter();
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      const out = filter.push(chunk);
      if (out) process.stderr.write(out);
    });
    // Ctrl-C reaches the whole process group: the child handles it; the parent waits for its exit.
    const ignore = () => {};
    process.on('SIGINT', ignore);
    const forward = () => child.kill('SIGTERM');
    process.on('SIGTERM', forward);
    child.on('close', (code, signal) => {
      const rest = filter.end();
      if (rest) process.stderr.write(rest);
      process.off('SIGINT', ignore);
      process.off('SIGTERM', forward);
      resolvePromise(code ?? (signal === 'SIGINT' ? 130 : 1));
    });
  });
}

/**
 * In the child: stderr is a pipe to the parent, but the user looks at a
 * terminal, so code that asks `process.stderr.isTTY` (progress bars) keeps
 * drawing as it would without the filter.
 */
export function adoptParentTerminal(): void {
  if (process.env[TTY_ENV] !== '1') return;
  Object.defineProperty(process.stderr, 'isTTY', { value: true, configurable: true });
  const columns = Number(process.env[COLUMNS_ENV]);
  if (columns > 0) Object.defineProperty(process.stderr, 'columns', { value: columns, configurable: true });
}
