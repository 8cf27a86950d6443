import { describe, expect, it } from 'vitest';
import type { Device } from '../src/device.js';
import { StepPacer } from '../src/pacer.js';

/** A device whose every fence takes `stepMs` from the moment it is asked for, recording when that was. */
function fakeDevice(stepMs: number) {
  const askedAt: number[] = [];
  let flushes = 0;
  const device = {
    isRecording: false,
    flush: () => {
      flushes++;
    },
    fence: () => {
      askedAt.push(performance.now());
      // While recording nothing runs, and compileAhead's fences settle at once.
      return new Promise<void>((resolve) => setTimeout(resolve, device.isRecording ? 0 : stepMs));
    },
  } as unknown as Device;
  return { device, askedAt, flushes: () => flushes };
}

describe('StepPacer', () => {
  it('fences at once with nothing measured, then sleeps most of the shortest recent step before asking', async () => {
    const fake = fakeDevice(200);
    const pacer = new StepPacer(fake.device, 0.85, 3);
    const t0 = performance.now();
    await pacer.wait();
    const first = performance.now() - t0;
    expect(fake.askedAt[0] - t0).toBeLessThan(100);
    expect(first).toBeGreaterThanOrEqual(190);

    const t1 = performance.now();
    await pacer.wait();
    // Asked only after ~0.85 of the measured step: the wait itself still ends when the fence does.
    expect(fake.askedAt[1] - t1).toBeGreaterThanOrEqual(0.8 * first);
    expect(performance.now() - t1).toBeGreaterThanOrEqual(fake.askedAt[1] - t1 + 190);
    expect(fake.flushes()).toBe(2);
  });

  it('reset forgets the measured steps', async () => {
    const fake = fakeDevice(200);
    const pacer = new StepPacer(fake.device);
    await pacer.wait();
    pacer.reset();
    const t = performance.now();
    await pacer.wait();
    expect(fake.askedAt[1] - t).toBeLessThan(100);
  });
});

describe('StepPacer while compileAhead records', () => {
  it('never sleeps on a timer (compileAhead forbids timers while recording)', async () => {
    const fake = fakeDevice(200);
    const pacer = new StepPacer(fake.device);
    await pacer.wait(); // measures ~200 ms
    (fake.device as unknown as { isRecording: boolean }).isRecording = true;
    const t = performance.now();
    await pacer.wait();
    expect(fake.askedAt[1] - t).toBeLessThan(100);
  });
});

describe('StepPacer after compileAhead recorded', () => {
  it('learns nothing from a recorded wait (its fence settles at once)', async () => {
    const fake = fakeDevice(200);
    const pacer = new StepPacer(fake.device);
    const recording = fake.device as unknown as { isRecording: boolean };
    recording.isRecording = true;
    await pacer.wait();
    recording.isRecording = false;
    await pacer.wait(); // nothing measured yet: asks at once, and measures ~200 ms
    const t = performance.now();
    await pacer.wait();
    expect(fake.askedAt[2] - t).toBeGreaterThanOrEqual(150);
  });
});
