import { OptionError } from '@cg/cyclegan';
import { describe, expect, it, vi } from 'vitest';
import { parseArgs } from '../../src/cli_args.js';

const defaults = { n_epochs: 100, name: 'experiment_name', continue_train: false };

describe('parseArgs', () => {
  it('accepts the official --gpu_ids anywhere, drops it and says once why', () => {
    const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      expect(parseArgs(['--gpu_ids', '0', '--n_epochs', '3'], defaults)).toEqual({ n_epochs: 3 });
      expect(parseArgs(['--gpu_ids=-1'], defaults)).toEqual({});
      expect(parseArgs(['--gpu_ids', '-1', '--continue_train'], defaults)).toEqual({ continue_train: true });
      const lines = err.mock.calls.map((c) => String(c[0])).filter((l) => l.includes('--gpu_ids'));
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/ignored; WebGPU has no device index, so the adapter chooses the GPU/);
    } finally {
      err.mockRestore();
    }
    expect(() => parseArgs(['--gpu_ids'], defaults)).toThrow('--gpu_ids needs a value');
  });

  it('refuses empty values instead of reading 0 or an empty name', () => {
    for (const argv of [['--n_epochs', ''], ['--n_epochs='], ['--n_epochs', '  ']]) {
      expect(() => parseArgs(argv, defaults)).toThrow(OptionError);
      expect(() => parseArgs(argv, defaults)).toThrow('--n_epochs needs a number (got an empty one)');
    }
    for (const argv of [['--name', ''], ['--name=']]) {
      expect(() => parseArgs(argv, defaults)).toThrow('--name needs a value (got an empty one)');
    }
  });

  it('still refuses trailing garbage in numbers and booleans', () => {
    expect(() => parseArgs(['--n_epochs', '3x'], defaults)).toThrow("--n_epochs must be a number (got '3x')");
    expect(() => parseArgs(['--continue_train=yes'], defaults)).toThrow('--continue_train takes true or false');
    expect(() => parseArgs(['--continue_train='], defaults)).toThrow('--continue_train takes true or false');
    expect(parseArgs(['--n_epochs=0', '--continue_train', 'false'], defaults)).toEqual({
      n_epochs: 0,
      continue_train: false,
    });
  });
});
