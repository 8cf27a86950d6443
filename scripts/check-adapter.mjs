// Exits 0 and prints the adapter when Dawn gives a core WebGPU adapter the library uses (a GPU's, or
// lavapipe from Mesa ≥ 25). Exits 1 otherwise, printing what was tried and what Dawn could see: an
// OpenGL compatibility adapter alone (Mesa's GL, which Debian's chromium pulls in) does not count.
//   node scripts/check-adapter.mjs [--quiet] [--verbose]   (--verbose shows Dawn's own warnings)
import {
  isDawnFilteredChild,
  requestDevice,
  rerunWithDawnWarningsFiltered,
} from '../packages/tensor-core/dist/platform/node.js';

const quiet = process.argv.includes('--quiet');
if (!process.argv.includes('--verbose') && !isDawnFilteredChild()) {
  process.exit(await rerunWithDawnWarningsFiltered());
}
try {
  const device = await requestDevice();
  const a = device.adapter;
  if (a.featureLevel !== 'core') throw new Error(`only a ${a.featureLevel} adapter: ${a.description}`);
  if (!quiet) {
    console.log(
      `[setup] WebGPU adapter: ${a.description || a.architecture} (${a.backend}, ${a.featureLevel}${a.isSoftware ? ', software' : ''})`,
    );
  }
  device.release();
} catch (e) {
  if (!quiet) console.error(e.message);
  process.exit(1);
}
