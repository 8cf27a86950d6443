// Our side of the bench: a device from @cg/tensor-core/node and the kernels,
// looked up by name at run time so a kernel that has not landed yet makes
// its cases "skipped (not implemented)" instead of breaking the build.

import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import * as kernels from '@cg/kernels-wgsl';
import { type Device, Device as DeviceClass, type Tensor } from '@cg/tensor-core';
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

/** Dawn instances behind subgroup devices, held until exit (dawn.node crashes if one is collected under its device). */
const dawnInstances: unknown[] = [];

/**
 * `CG_BENCH_SUBGROUPS=1`: when requestDevice() gives a device without the
 * `subgroups` feature but the adapter has it, bench on a device that has it
 * (same adapter, limits raised the same way), so the conv kernels' subgroup
 * variants (kernels-wgsl conv_strategy.ts useSubgroups) run.
 */
async function benchDevice(): Promise<Device> {
  const device = await requestDevice();
  if (process.env.CG_BENCH_SUBGROUPS !== '1' || device.gpu.features.has('subgroups')) return device;
  if (!device.adapter.features.includes('subgroups')) return device;
  const req = createRequire(import.meta.resolve('@cg/tensor-core/node'));
  const dawn = (await import(pathToFileURL(req.resolve('webgpu')).href)) as {
    create(flags: string[]): GPU;
  };
  const instance = dawn.create([]);
  dawnInstances.push(instance);
  const adapter = await instance.requestAdapter();
  if (!adapter) return device;
  const gpu = await adapter.requestDevice({
    // @webgpu/types 0.1.74 does not list 'subgroups' among GPUFeatureName yet.
    requiredFeatures: ['subgroups' as GPUFeatureName],
    requiredLimits: {
      maxStorageBufferBindingSize: device.gpu.limits.maxStorageBufferBindingSize,
      maxBufferSize: device.gpu.limits.maxBufferSize,
      maxComputeWorkgroupStorageSize: device.gpu.limits.maxComputeWorkgroupStorageSize,
    },
    label: 'cg-subgroups',
  });
  const summary = device.adapter;
  device.release();
  return new DeviceClass(gpu, { adapter: summary, keepAlive: instance });
}

export async function loadOurs(): Promise<Ours> {
  let device = await benchDevice();
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
        device = await benchDevice();
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
