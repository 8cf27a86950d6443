import { ArgumentError, type Device, Rng } from '@cg/tensor-core';

/**
 * Module-level defaults for building layers: the device their parameters
 * live on and the generator their initialisation (and dropout) draws from.
 * Both can be overridden per layer with the `device` and `rng` options.
 */

let defaultDevice: Device | null = null;
let defaultRng = new Rng(0);

/** Options every layer with parameters or randomness accepts. */
export interface LayerOptions {
  device?: Device;
  rng?: Rng;
}

/** The device layers use when not given one (like torch.set_default_device). */
export function setDefaultDevice(device: Device | null): void {
  defaultDevice = device;
}

export function getDefaultDevice(): Device {
  if (!defaultDevice) {
    throw new ArgumentError('nn: no device for this layer; pass { device } or call nn.setDefaultDevice(device) first');
  }
  return defaultDevice;
}

/** Reseeds the default generator used by layer init, nn.init and dropout (torch.manual_seed). */
export function manualSeed(seed: number): void {
  defaultRng = new Rng(seed);
}

export function getDefaultRng(): Rng {
  return defaultRng;
}
