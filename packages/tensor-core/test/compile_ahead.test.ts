import { type Device, Tensor } from '@cg/tensor-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { testDevice } from '../../../test/helpers/device.js';

let device: Device;
beforeAll(async () => {
  device = await testDevice();
});

// Keys unique to this file's run: the shared device may have compiled other probes.
const run = `${Date.now()}`;

/** x *= k, in place: one pipeline per k. */
function scale(x: Tensor, k: number): void {
  const p = device.pipeline(
    `probeScale|${run}|${k}`,
    'probeScale',
    () => /* wgsl */ `@group(0) @binding(0) var<storage, read_write> a: array<f32>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3u) {
  if (g.x < arrayLength(&a)) { a[g.x] = a[g.x] * ${k}.0; }
}`,
  );
  device.dispatch(p, [{ buffer: x.buffer, bytes: x.byteLength }], null, [Math.ceil(x.size / 64), 1, 1]);
}

const counts = () => {
  const m = device.memory();
  return { liveTensors: m.liveTensors, liveBuffers: m.liveBuffers, liveBytes: m.liveBytes };
};

describe('Device.compileAhead', () => {
  it('primes each compiled pipeline: one one-workgroup dispatch on scratch buffers of its first use', async () => {
    const x = Tensor.fromArray(device, [1, 2, 3, 4, 5], [5]);
    const seen: { label: string; bytes: number[]; params: number[] | null; workgroups: readonly number[] }[] = [];
    const dispatch = device.dispatch.bind(device);
    device.dispatch = (pipeline, buffers, params, workgroups) => {
      seen.push({
        label: pipeline.label,
        bytes: buffers.map((b) => b.bytes),
        params: params && [...new Uint32Array(params)],
        workgroups,
      });
      // Scratch buffers, never the recorded run's: x must stay as it is.
      if (!device.isRecording) expect(buffers.some((b) => b.buffer === x.buffer)).toBe(false);
      dispatch(pipeline, buffers, params, workgroups);
    };
    try {
      const k = 11;
      const p = () =>
        device.pipeline(
          `probeOffset|${run}`,
          'probeOffset',
          () => /* wgsl */ `@group(0) @binding(0) var<storage, read_write> a: array<f32>;
struct P { k: u32 }
@group(0) @binding(1) var<uniform> u: P;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3u) {
  if (g.x < arrayLength(&a)) { a[g.x] = a[g.x] + f32(u.k); }
}`,
        );
      const params = Uint32Array.of(k).buffer;
      await device.compileAhead(() => {
        device.dispatch(p(), [{ buffer: x.buffer, bytes: x.byteLength }], params, [1, 1, 1]);
        device.dispatch(p(), [{ buffer: x.buffer, bytes: 4 }], Uint32Array.of(99).buffer, [7, 1, 1]);
      });
      // Recorded twice (nothing ran), then primed once with the first use's sizes and uniforms.
      expect(seen.map((d) => d.workgroups)).toEqual([
        [1, 1, 1],
        [7, 1, 1],
        [1, 1, 1],
      ]);
      expect(seen[2]).toMatchObject({ bytes: [20], params: [k] });
      expect([...(await x.toArray())]).toEqual([1, 2, 3, 4, 5]);
    } finally {
      device.dispatch = dispatch;
    }
    x.dispose();
  });

  it('records misses instead of compiling, runs nothing, then compiles them all ahead', async () => {
    const x = Tensor.fromArray(device, [1, 2, 3, 4], [4]);
    const before = counts();
    const { pipelinesCompiled: compiled0, pipelinesCompiledAhead: ahead0 } = device.memory();
    const progress: [number, number][] = [];
    const r = await device.compileAhead(
      async () => {
        scale(x, 2);
        scale(x, 3);
        scale(x, 2);
        // Created inside, so disposed when fn settles; writes and clears are skipped.
        Tensor.zeros(device, [1000]);
        Tensor.fromArray(device, [5, 6], [2]).reshape([1, 2]);
        // Reads settle at once with zeros instead of waiting on the GPU.
        expect([...(await x.toArray())]).toEqual([0, 0, 0, 0]);
        await device.fence();
        await device.sync();
      },
      { onProgress: (done, total) => progress.push([done, total]) },
    );
    expect(r).toEqual({ recorded: 2, compiled: 2 });
    // Two compiled, then both primed in one batch.
    expect(progress).toEqual([
      [0, 4],
      [1, 4],
      [2, 4],
      [4, 4],
    ]);
    expect(counts()).toEqual(before);
    expect(device.memory()).toMatchObject({ pipelinesCompiled: compiled0 + 2, pipelinesCompiledAhead: ahead0 + 2 });
    // Nothing ran while recording.
    expect([...(await x.toArray())]).toEqual([1, 2, 3, 4]);

    // The real run finds every pipeline compiled.
    scale(x, 2);
    scale(x, 3);
    expect([...(await x.toArray())]).toEqual([6, 12, 18, 24]);
    expect(device.memory().pipelinesCompiled).toBe(compiled0 + 2);

    // Again: everything is cached, nothing to compile.
    expect(await device.compileAhead(() => scale(x, 3))).toEqual({ recorded: 0, compiled: 0 });
    x.dispose();
  });

  it('disposes what fn created when it throws, and leaves recording', async () => {
    const before = counts();
    await expect(
      device.compileAhead(() => {
        Tensor.zeros(device, [64]);
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(counts()).toEqual(before);
    const x = Tensor.fromArray(device, [1], [1]);
    scale(x, 5); // compiles synchronously and runs: recording is over
    expect(await x.item()).toBe(5);
    x.dispose();
  });

  it('runs calls made together one after another, each recording alone', async () => {
    const x = Tensor.fromArray(device, [1], [1]);
    const [a, b] = await Promise.all([
      device.compileAhead(() => scale(x, 7)),
      device.compileAhead(async () => {
        await x.toArray();
        scale(x, 11);
      }),
    ]);
    expect([a, b]).toEqual([
      { recorded: 1, compiled: 1 },
      { recorded: 1, compiled: 1 },
    ]);
    expect(await x.item()).toBe(1);
    x.dispose();
  });

  it('refuses a function that awaits something other than the device', async () => {
    // Other code could have run in that time, with its dispatches skipped.
    await expect(device.compileAhead(() => new Promise((r) => setTimeout(r, 5)))).rejects.toThrow(
      /awaited something other than this device/,
    );
  });

  it('cannot nest', async () => {
    await expect(device.compileAhead(() => device.compileAhead(() => {}))).rejects.toThrow(/cannot nest/);
  });

  it('names a pipeline that fails to compile', async () => {
    const x = Tensor.fromArray(device, [1], [1]);
    const bad = () => {
      // A valid module without the `main` entry point: the pipeline, not the module, fails.
      const p = device.pipeline(`probeBad|${run}`, 'probeBad', () => '@compute @workgroup_size(1) fn other() {}');
      device.dispatch(p, [{ buffer: x.buffer, bytes: 4 }], null, [1, 1, 1]);
    };
    await expect(device.compileAhead(bad)).rejects.toThrow(/"probeBad" pipeline did not compile/);
    device.check(); // a rejected async pipeline is not a device error
    x.dispose();
  });
});
