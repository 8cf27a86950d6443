// PyTorch on the CPU of the same machine, as a reference for a machine
// without a GPU: bench/torch_step.py run by Debian's /usr/bin/python3 (with
// python3-torch) in a child process, one JSON line back. Skipped with a note
// when torch is not installed.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from './peer_ort.js';

const run = promisify(execFile);
const PYTHON = process.env.CG_BENCH_PYTHON ?? '/usr/bin/python3';
const SCRIPT = join(REPO_ROOT, 'bench', 'torch_step.py');

export interface TorchInfo {
  python: string;
  version: string;
  threads: number;
}

/** torch's version and intra-op threads, or why it cannot be used. */
export async function probeTorch(): Promise<TorchInfo | { missing: string }> {
  try {
    const { stdout } = await run(PYTHON, ['-c', 'import torch; print(torch.__version__, torch.get_num_threads())'], {
      timeout: 60_000,
    });
    const [version, threads] = stdout.trim().split(/\s+/);
    return { python: PYTHON, version, threads: Number(threads) };
  } catch (e) {
    const msg = (e as { stderr?: string }).stderr?.trim().split('\n').at(-1) ?? (e as Error).message;
    return { missing: `no torch for ${PYTHON} (${msg}); install Debian's python3-torch to get these rows` };
  }
}

/** Runs torch_step.py with `args` and returns its JSON result (the last stdout line). */
export async function runTorch<T>(args: string[], timeoutS: number): Promise<T> {
  const { stdout } = await run(PYTHON, [SCRIPT, ...args], {
    timeout: timeoutS * 1000,
    maxBuffer: 16 << 20,
    env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' },
  });
  const last = stdout.trim().split('\n').at(-1) ?? '';
  return JSON.parse(last) as T;
}
