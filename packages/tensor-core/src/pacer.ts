import type { Device } from './device.js';

/**
 * Waits for repeated GPU work (training steps) without keeping the host busy.
 *
 * Why: dawn.node resolves its promises by polling Dawn from `setImmediate`
 * for as long as any of them is pending, so awaiting `device.fence()` right
 * after a submit keeps the JS thread spinning for the whole step. On a
 * software adapter that thread takes a core from the driver's own threads:
 * measured on lavapipe (2 cores, CycleGAN step at 64², ngf 32), the spin cost
 * 5.4–6.7 s of main-thread CPU per step, and steps were 11–13 % slower than
 * with the wait below (0.3 s of CPU per step). Browsers do not poll, so there
 * the pacer only sleeps through time the GPU is busy anyway.
 *
 * The pacer sleeps (a timer: nothing pending in Dawn) for `fraction` of the
 * shortest of the last few measured step times, then fences, which then
 * polls only for the remainder. The shortest, not the mean, so one slow step
 * on a shared machine does not make the next wait oversleep.
 */
export class StepPacer {
  private readonly recent: number[] = [];

  constructor(
    private readonly device: Device,
    private readonly fraction = 0.85,
    private readonly window = 3,
  ) {}

  /**
   * Resolves when every submitted step is done; call right after submitting
   * one step. `ask` replaces the fence when the step ends in a readback
   * (`() => tensor.toArray()`), whose result is returned. `guessMs` is the
   * expected time while nothing has been measured yet (0: fence at once).
   */
  async wait<T = void>(ask?: () => Promise<T>, guessMs = 0): Promise<T> {
    // While compileAhead records, nothing runs on the GPU: no timer (device.ts), and no time to learn from.
    if (this.device.isRecording) return ask ? ask() : ((await this.device.fence()) as T);
    const t0 = performance.now();
    this.device.flush();
    const expected = this.recent.length ? Math.min(...this.recent) : guessMs;
    const nap = this.fraction * expected;
    if (nap >= 1) await new Promise((resolve) => setTimeout(resolve, nap));
    const result = ask ? await ask() : ((await this.device.fence()) as T);
    this.recent.push(performance.now() - t0);
    if (this.recent.length > this.window) this.recent.shift();
    return result;
  }

  /** Forget the measured times (the work per step changed, e.g. a new image size). */
  reset(): void {
    this.recent.length = 0;
  }
}
