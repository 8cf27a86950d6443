import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { DeviceError } from '@cg/tensor-core';
import { requestDevice } from '@cg/tensor-core/node';
import { describe, expect, it } from 'vitest';

const here = fileURLToPath(new URL('.', import.meta.url));

describe('device acquisition', () => {
  it('finds an adapter here and describes it', async () => {
    const device = await requestDevice();
    expect(device.adapter.description.length + device.adapter.architecture.length).toBeGreaterThan(0);
    expect(['core', 'compatibility']).toContain(device.adapter.featureLevel);
    device.release();
    expect(() => device.check()).toThrow(DeviceError);
  });

  it('fails with one DeviceError listing every attempt and the fix when no backend works', async () => {
    // No ICD: point the Vulkan loader at nothing; Dawn's OpenGL path cannot start without EGL either.
    const r = spawnSync(process.execPath, [`${here}/fixtures/no_adapter.mjs`], {
      encoding: 'utf8',
      env: {
        ...process.env,
        VK_ICD_FILENAMES: '/nonexistent.json',
        VK_DRIVER_FILES: '/nonexistent.json',
        EGL_PLATFORM: 'none',
      },
      timeout: 60_000,
    });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/could not get a WebGPU device\. Tried:/);
    expect(r.stdout).toMatch(/bookworm-backports/);
  });

  it('release() lets a process exit cleanly, used or not (dawn.node exit-crash regression)', () => {
    for (const mode of ['idle', 'use', 'idle']) {
      const r = spawnSync(process.execPath, [`${here}/fixtures/release_exit.mjs`, mode], {
        encoding: 'utf8',
        timeout: 60_000,
      });
      expect(r.status, `${mode}: status ${r.status} signal ${r.signal}\n${r.stderr}`).toBe(0);
      expect(r.stdout).toContain('released');
    }
  });

  it('survives garbage collection of the Dawn instance while a device is alive (dawn.node 0.6.2 crash regression)', () => {
    const r = spawnSync(process.execPath, ['--expose-gc', `${here}/fixtures/gc_alive.mjs`], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout).toContain('gc-ok 42');
  });
});
