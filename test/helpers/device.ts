import type { Device } from '@cg/tensor-core';
import { requestDevice } from '@cg/tensor-core/node';

let shared: Promise<Device> | null = null;

/** One device per test worker: acquiring one costs ~0.3 s and dawn.node prefers few. */
export function testDevice(): Promise<Device> {
  shared ??= requestDevice();
  return shared;
}
