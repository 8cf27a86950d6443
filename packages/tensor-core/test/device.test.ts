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
    // Never the OpenGL compatibility adapter: the kernels are verified on core adapters only.
    expect(device.adapter.featureLevel).toBe('core');
    device.release();
    expect(() => device.check()).toThrow(DeviceError);
  });

  it('fails with one DeviceError listing every attempt and the fix when no backend works', async () => {
    // No ICD: point the Vulkan loader at nothing; Dawn's OpenGL path cannot start without EGL either.
    const r = spawnSync(process.execPath, [`${here}/fixtures/compat_only.mjs`], {
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

  it('does not fall back to an OpenGL compatibility adapter; names it and says what to install', () => {
    // Vulkan hidden, Mesa's GL left as it is: the state of a machine with Debian's chromium and no lavapipe.
    const r = spawnSync(process.execPath, [`${here}/fixtures/compat_only.mjs`], {
      encoding: 'utf8',
      env: { ...process.env, VK_ICD_FILENAMES: '/nonexistent.json', VK_DRIVER_FILES: '/nonexistent.json' },
      timeout: 60_000,
    });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/could not get a WebGPU device/);
    expect(r.stdout).toMatch(/mesa-vulkan-drivers/);
    // Where Dawn can open Mesa's GL here (it depends on which Mesa packages apt mixed), the message names it.
    const compat = /^compat adapter: (.*)$/m.exec(r.stdout)?.[1];
    if (compat && compat !== 'none') {
      expect(r.stdout).toContain(`OpenGL compatibility adapter (${compat}); this library does not use it`);
    }
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
