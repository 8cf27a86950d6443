import { log } from './cli-log.js';
import { OptionError } from './errors.js';

export { formatDuration } from './format.js';

export type ArgValue = string | number | boolean;

/** Official options accepted by every command and dropped, each with the reason printed once. */
const IGNORED_OPTIONS: Record<string, string> = {
  gpu_ids: 'WebGPU has no device index, so the adapter chooses the GPU',
};
const noted = new Set<string>();

/**
 * Parses `--key value`, `--key=value` and bare `--flag` against a table of
 * defaults whose types decide how values are read (numbers, booleans,
 * strings). Unknown options are an error naming the closest known one; an empty value (`--n_epochs ""`,
 * `--name=`) is an error too, where Number('') would quietly read 0.
 */
export function parseArgs<T extends Record<string, ArgValue | undefined>>(
  argv: readonly string[],
  defaults: T,
  extraStrings: readonly string[] = [],
): Partial<T> {
  const known = new Set([...Object.keys(defaults), ...extraStrings]);
  const out: Record<string, ArgValue> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('--')) throw new OptionError(`unexpected argument '${arg}' (options look like --name value)`);
    let [key, value] = arg.slice(2).split(/=(.*)/s, 2) as [string, string | undefined];
    if (Object.hasOwn(IGNORED_OPTIONS, key) && !known.has(key)) {
      if (value === undefined && ++i >= argv.length) throw new OptionError(`--${key} needs a value`);
      if (!noted.has(key)) log(`--${key}: ignored; ${IGNORED_OPTIONS[key]}`);
      noted.add(key);
      continue;
    }
    if (!known.has(key)) {
      throw new OptionError(`unknown option --${key}${suggest(key, [...known])}`);
    }
    const def = defaults[key];
    if (typeof def === 'boolean') {
      if (value === undefined && (argv[i + 1] === 'true' || argv[i + 1] === 'false')) value = argv[++i];
      if (value !== undefined && !['true', 'false', '1', '0'].includes(value))
        throw new OptionError(`--${key} takes true or false (got '${value}'), or nothing for true`);
      out[key] = value === undefined ? true : value === 'true' || value === '1';
      continue;
    }
    if (value === undefined) {
      if (i + 1 >= argv.length) throw new OptionError(`--${key} needs a value`);
      value = argv[++i];
    }
    if (value.trim() === '') {
      const what = typeof def === 'number' ? 'a number' : 'a value';
      throw new OptionError(`--${key} needs ${what} (got an empty one); give one or leave the option out`);
    }
    if (typeof def === 'number') {
      const n = value === 'inf' ? Number.POSITIVE_INFINITY : Number(value);
      if (Number.isNaN(n)) throw new OptionError(`--${key} must be a number (got '${value}')`);
      out[key] = n;
    } else {
      out[key] = value;
    }
  }
  return out as Partial<T>;
}

function suggest(key: string, known: string[]): string {
  let best = '';
  let bestD = Number.POSITIVE_INFINITY;
  for (const k of known) {
    const d = distance(key, k);
    if (d < bestD) [best, bestD] = [k, d];
  }
  return bestD <= Math.max(2, key.length / 3) ? ` (did you mean --${best}?)` : '';
}

function distance(a: string, b: string): number {
  const dp = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) dp[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      dp[i][j] = Math.min(dp[i - 1][j] + 1, dp[i][j - 1] + 1, dp[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
  }
  return dp[a.length][b.length];
}

/** A one-line progress bar: `[████░░░░] 12/40`. */
export function bar(done: number, total: number, width = 24): string {
  const f = total > 0 ? Math.min(1, done / total) : 0;
  const full = Math.round(f * width);
  return `[${'█'.repeat(full)}${'░'.repeat(width - full)}] ${done}/${total}`;
}
