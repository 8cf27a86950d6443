// Our side of the bench: a device from @cg/tensor-core/node and the kernels,
// looked up by name at run time so a kernel that has not landed yet makes
// its cases "skipped (not implemented)" instead of breaking the build.

import * as kernels from '@cg/kernels-wgsl';
import type { Device, Tensor } from '@cg/tensor-core';
import { requestDevice } from '@cg/tensor-core/node';
import { type Side, Skip } from './harness.js';

const registry = kernels as unknown as Record<string, unknown>;

export interface Ours extends Side {
  device: Device;
  /** The first of `names` that @cg/kernels-wgsl exports, or a Skip. */
  op<F>(...names: string[]): F;
  /** After a failed case poisoned the device (an uncaptured WebGPU error), start a fresh one. */
  recoverIfBroken(): Promise<boolean>;
  release(): void;
}

export async function loadOurs(): Promise<Ours> {
  let device = await requestDevice();
  return {
    name: 'ours',
    get device() {
      return device;
    },
    async sync() {
      await device.sync();
    },
    liveTensors: () => device.memory().liveTensors,
    op<F>(...names: string[]): F {
      for (const n of names) {
        if (typeof registry[n] === 'function') return registry[n] as F;
      }
      throw new Skip(`not implemented (${names[0]})`);
    },
    async recoverIfBroken() {
      try {
        device.check();
        return false;
      } catch {
        device.release();
        device = await requestDevice();
        return true;
      }
    },
    release() {
      device.release();
    },
  };
}

/** Disposes every tensor in a kernel's return value (a tensor, or arrays/objects of them). */
export function freeAll(value: unknown): void {
  if (value === null || typeof value !== 'object') return;
  if ((value as { isTensor?: boolean }).isTensor === true) {
    (value as Tensor).dispose();
    return;
  }
  for (const v of Array.isArray(value) ? value : Object.values(value)) freeAll(v);
}

/** The tensor a kernel returned, or the named field of what it returned (e.g. `dx`). */
export function pick(value: unknown, ...keys: string[]): Tensor {
  if ((value as { isTensor?: boolean })?.isTensor === true) return value as Tensor;
  for (const k of keys) {
    const v = (value as Record<string, unknown> | null)?.[k];
    if ((v as { isTensor?: boolean })?.isTensor === true) return v as Tensor;
  }
  throw new Error(`expected a tensor or one of {${keys.join(', ')}} in the kernel's result`);
}
