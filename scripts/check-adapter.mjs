// Exits 0 and prints the adapter when Dawn can get a WebGPU device; else prints what was tried.
import { requestDevice } from '../packages/tensor-core/dist/platform/node.js';

const quiet = process.argv.includes('--quiet');
try {
  const device = await requestDevice();
  const a = device.adapter;
  console.log(
    `[setup] WebGPU adapter: ${a.description || a.architecture} (${a.backend}, ${a.featureLevel}${a.isSoftware ? ', software' : ''})`,
  );
  device.release();
} catch (e) {
  if (!quiet) console.error(e.message);
  process.exit(1);
}
