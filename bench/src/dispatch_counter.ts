// The Device does not count its dispatches, so the bench wraps the two
// methods on one device instance (nothing else is touched): every recorded
// compute dispatch, and every submit (`flush()` with work pending).
import type { Device } from '@cg/tensor-core';

export interface DispatchCounter {
  readonly dispatches: number;
  readonly submits: number;
  /** Puts the device's own methods back. */
  restore(): void;
}

export function countDispatches(device: Device): DispatchCounter {
  const counts = { dispatches: 0, submits: 0 };
  const dispatch = device.dispatch;
  const flush = device.flush;
  // Own properties shadow the prototype's methods on this instance only.
  device.dispatch = function (this: Device, ...args: Parameters<Device['dispatch']>) {
    counts.dispatches++;
    return dispatch.apply(this, args);
  };
  device.flush = function (this: Device) {
    // flush() is a no-op without an open encoder; count only submits that happen.
    if ((this as unknown as { encoder: unknown }).encoder) counts.submits++;
    return flush.apply(this);
  };
  return {
    get dispatches() {
      return counts.dispatches;
    },
    get submits() {
      return counts.submits;
    },
    restore() {
      delete (device as Partial<Device>).dispatch;
      delete (device as Partial<Device>).flush;
    },
  };
}
