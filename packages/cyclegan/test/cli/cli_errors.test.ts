import { readFile } from 'node:fs/promises';
import { CheckpointError } from '@cg/cyclegan';
import { describe, expect, it } from 'vitest';
import { describeError } from '../../src/cli-errors.js';

describe('the CLI prints one line per failure', () => {
  it('our own errors: class name and message', () => {
    expect(describeError(new CheckpointError('g.pth: model.1.weight holds NaN; re-export it'))).toBe(
      'CheckpointError: g.pth: model.1.weight holds NaN; re-export it',
    );
  });

  it("Node's file-system errors: the path, the problem in words, what to do", async () => {
    const e = await readFile('/no/such/dir/x.png').catch((err: unknown) => err);
    const line = describeError(e);
    expect(line).toMatch(/^FileError: \/no\/such\/dir\/x\.png: no such file or directory; check the path \(ENOENT/);
    expect(line.split('\n')).toHaveLength(1);
  });

  it('anything else is a bug: one line that says so and how to get the stack', () => {
    const line = describeError(new TypeError("Cannot read properties of undefined (reading 'shape')"));
    expect(line).toMatch(/^internal error: Cannot read properties .* run again with --debug/);
    expect(line.split('\n')).toHaveLength(1);
  });

  it('--debug adds the stack frames, without repeating the message', () => {
    const lines = describeError(new CheckpointError('bad'), true).split('\n');
    expect(lines[0]).toBe('CheckpointError: bad');
    expect(lines.length).toBeGreaterThan(1);
    expect(lines.slice(1).every((l) => /^\s+at /.test(l))).toBe(true);
  });
});
