import type { nn } from '@cg/autograd';
import { StepPacer, type Tensor } from '@cg/tensor-core';

/** Input shapes remembered per generator (the oldest is forgotten first). */
const MAX_SHAPES = 16;
const pacers = new WeakMap<nn.Module, Map<string, StepPacer>>();

/**
 * Reads back the output of a whole-image forward of `net` through a
 * StepPacer kept per generator and input shape, so a translation of a size
 * seen before sleeps through most of the forward instead of letting
 * dawn.node poll on a core the adapter needs (StepPacer). Measured on
 * lavapipe (2026-12, resnet_6blocks ngf 32 at 256², 6 pairs alternating in
 * one process): 775–826 ms a translation paced against 902–1008 ms polled.
 * The first translation of a size reads back at once, as before.
 */
export function readPaced(net: nn.Module, inputShape: readonly number[], out: Tensor): Promise<Float32Array> {
  let bySize = pacers.get(net);
  if (!bySize) pacers.set(net, (bySize = new Map()));
  const key = inputShape.join('×');
  let pacer = bySize.get(key);
  if (!pacer) {
    bySize.set(key, (pacer = new StepPacer(out.device)));
    if (bySize.size > MAX_SHAPES) bySize.delete(bySize.keys().next().value as string);
  }
  return pacer.wait(() => out.toArray());
}
