// Set-up the parity and export suites share: the worker's device as nn's default for the whole file, and
// a JSON artifact of what was measured, written when the file's tests are done.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { nn } from '@cg/autograd';
import type { Device } from '@cg/tensor-core';
import { afterAll, beforeAll } from 'vitest';
import { testDevice } from './device.js';

/** Registers a beforeAll that makes the test device nn's default; call the result inside tests. */
export function useNnDevice(): () => Device {
  let device: Device | null = null;
  beforeAll(async () => {
    device = await testDevice();
    nn.setDefaultDevice(device);
  });
  return () => {
    if (!device) throw new Error('useNnDevice: the device is only there inside tests');
    return device;
  };
}

/** Writes `data()` as JSON to `path` after the file's tests, for the notes and the CI log. */
export function writeArtifactAfterAll(path: string, data: () => unknown): void {
  afterAll(() => {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, `${JSON.stringify(data(), null, 1)}\n`);
  });
}
