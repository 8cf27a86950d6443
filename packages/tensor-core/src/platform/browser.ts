// The only file that touches navigator.gpu.
import { type AdapterSummary, Device } from '../device.js';
import { DeviceError } from '../errors.js';
import { isSoftwareAdapter, requiredFeatures, requiredLimits } from './limits.js';

export { Device };

export interface BrowserDeviceOptions {
  powerPreference?: GPUPowerPreference;
  dumpWgsl?: boolean;
}

/** Acquires a device from `navigator.gpu`, with a message that says what the browser needs when it can't. */
export async function requestDevice(options: BrowserDeviceOptions = {}): Promise<Device> {
  const gpu = (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu;
  if (!gpu) {
    throw new DeviceError(
      'WebGPU is not available in this browser (navigator.gpu is missing). Use a current Chrome/Edge, ' +
        'Firefox with dom.webgpu.enabled, or Safari 26+, served over https or from localhost.',
    );
  }
  const adapter = await gpu.requestAdapter({ powerPreference: options.powerPreference ?? 'high-performance' });
  if (!adapter) {
    throw new DeviceError(
      'navigator.gpu.requestAdapter() returned null: the browser has WebGPU but no usable adapter ' +
        '(GPU blocklisted or disabled). In Chromium try --enable-unsafe-webgpu; check chrome://gpu.',
    );
  }
  const device = await adapter.requestDevice({
    requiredLimits: requiredLimits(adapter),
    requiredFeatures: requiredFeatures(adapter),
    label: 'cg',
  });
  const info = adapter.info;
  const summary: AdapterSummary = {
    vendor: info?.vendor ?? '',
    architecture: info?.architecture ?? '',
    description: info?.description ?? '',
    isSoftware: isSoftwareAdapter(adapter),
    backend: 'browser',
    featureLevel: 'core',
    features: [...adapter.features],
  };
  return new Device(device, { adapter: summary, dumpWgsl: options.dumpWgsl ?? false });
}
