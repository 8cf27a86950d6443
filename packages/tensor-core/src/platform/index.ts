// Type surface of `@cg/tensor-core/platform`; the package's exports map picks
// node.js or browser.js at resolve time, both with this signature.
import type { Device } from '../device.js';

export type { Device };
export declare function requestDevice(options?: { dumpWgsl?: boolean }): Promise<Device>;
