import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dawnWarningFilter } from '@cg/tensor-core/node';
import { describe, expect, it } from 'vitest';

const here = fileURLToPath(new URL('.', import.meta.url));

// What Dawn 0.6.2 printed here: without libvulkan, then on every device.
const VULKAN_MISSING =
  "Warning: Couldn't load Vulkan: libvulkan.so.1: cannot open shared object file: No such file or directory\n" +
  '    at operator() (/home/runner/work/node-webgpu/node-webgpu/third_party/dawn/src/dawn/native/vulkan/BackendVk.cpp:368)\n' +
  '\n';
const LIMITS =
  'Warning: maxDynamicUniformBuffersPerPipelineLayout artificially reduced from 90 to 16 to fit dynamic offset allocation limit.\n' +
  'Warning: maxDynamicStorageBuffersPerPipelineLayout artificially reduced from 80 to 16 to fit dynamic offset allocation limit.\n';

function run(chunks: string[]): string {
  const f = dawnWarningFilter();
  return chunks.map((c) => f.push(c)).join('') + f.end();
}

describe("Dawn's stderr warnings", () => {
  it('drops the warning blocks and keeps our own lines', () => {
    const ours = 'loaded g.pth: resnet_9blocks\nCheckpointError: g.pth: key model.1.weight is NaN\n';
    expect(run([VULKAN_MISSING, LIMITS, ours])).toBe(ours);
  });

  it('works whatever the chunking, one character at a time included', () => {
    const text = `first\n${VULKAN_MISSING}${LIMITS}last line\n`;
    expect(run([...text])).toBe('first\nlast line\n');
    expect(run([text.slice(0, 37), text.slice(37, 200), text.slice(200)])).toBe('first\nlast line\n');
  });

  it('passes progress bars (no newline, \\r-led) through at once, so they draw live', () => {
    const f = dawnWarningFilter();
    expect(f.push('\r\x1b[K[████░░░░] 3/8 a.png')).toBe('\r\x1b[K[████░░░░] 3/8 a.png');
    expect(f.push('\r\x1b[K[█████░░░] 4/8 b.png')).toBe('\r\x1b[K[█████░░░] 4/8 b.png');
  });

  it('keeps indented lines and blank lines that do not follow a Dawn warning', () => {
    const ours = 'usage: pnpm cyclegan <command>\n\n  train      --dataroot DIR\n';
    expect(run([ours])).toBe(ours);
  });

  it('a CLI run through the filter prints none of them; --verbose shows them', () => {
    const script = `${here}/fixtures/dawn_warnings.mjs`;
    const quiet = spawnSync(process.execPath, [script], { encoding: 'utf8', timeout: 60_000 });
    expect(quiet.status, quiet.stderr).toBe(0);
    expect(quiet.stdout).toContain('device ok');
    expect(quiet.stderr).not.toMatch(/Warning:|artificially reduced|BackendVk/);
    const verbose = spawnSync(process.execPath, [script, '--verbose'], { encoding: 'utf8', timeout: 60_000 });
    expect(verbose.status, verbose.stderr).toBe(0);
    expect(verbose.stderr).toMatch(/Warning: .*artificially reduced/);
  });
});
