// The only file that touches Dawn (the `webgpu` package).
import { create } from 'webgpu';
import { type AdapterSummary, Device } from '../device.js';
import { ArgumentError, DeviceError } from '../errors.js';
import { isSoftwareAdapter, requiredFeatures, requiredLimits } from './limits.js';

export {
  adoptParentTerminal,
  dawnWarningFilter,
  isDawnFilteredChild,
  rerunWithDawnWarningsFiltered,
} from './node-stderr.js';
export { Device };

export const MESA_INSTALL_HINT = [
  'No core WebGPU adapter. On Debian 12 without a GPU, install Mesa 25 (lavapipe) from bookworm-backports:',
  '  1. add an apt source with `Suites: bookworm-backports` for the Debian mirror your',
  '     /etc/apt/sources.list.d/debian.sources already uses (same URIs and Signed-By);',
  '  2. apt-get update',
  '  3. apt-get install -y --no-install-recommends -t bookworm-backports mesa-vulkan-drivers libvulkan1',
  'or run `bash scripts/setup.sh demo --install-system` (as root, or with CG_USE_SUDO=1), which does exactly that.',
  'A machine with a real GPU needs only its Vulkan driver.',
].join('\n');

export interface NodeDeviceOptions {
  /**
   * Try only these backends, in order. Default: a real GPU, then any core adapter (lavapipe).
   * 'compat' (Mesa's OpenGL through EGL, WebGPU compatibility mode) is only for diagnosis: the
   * kernels are not verified there, and one of them was measured wrong on it
   * (scripts/repro/gl-compat-planemoments.mjs), so the library never falls back to it by itself.
   */
  attempts?: readonly ('gpu' | 'core' | 'compat')[];
  dumpWgsl?: boolean;
  /** Extra Dawn toggles for experiments (`CG_DAWN_FEATURES` adds to them): e.g. ['skip_validation']. */
  dawnFeatures?: readonly string[];
  /**
   * false: Dawn does not clamp every storage-buffer access (its robustness
   * transform), which made the generator forward ~1.5× faster on lavapipe.
   * For trusted runs only: an out-of-bounds access would then read or write
   * another buffer instead of being clamped. Our kernels guard their own
   * indices, every dispatch's shapes are checked before it is recorded, and CI
   * runs the kernel suite with it off. Default true; `CG_ROBUSTNESS=off` sets
   * it false.
   */
  robustness?: boolean;
}

function robustnessFrom(options: NodeDeviceOptions): boolean {
  if (options.robustness !== undefined) return options.robustness;
  const env = process.env.CG_ROBUSTNESS;
  if (env === undefined || env === '' || env === 'on') return true;
  if (env === 'off') return false;
  throw new ArgumentError(`CG_ROBUSTNESS must be on or off (got ${JSON.stringify(env)})`);
}

function dawnToggles(options: NodeDeviceOptions): string[] {
  const features = [...(options.dawnFeatures ?? []), ...(process.env.CG_DAWN_FEATURES?.split(',') ?? [])].filter(
    Boolean,
  );
  if (!robustnessFrom(options)) features.push('disable_robustness');
  return features.length ? [`enable-dawn-features=${['allow_unsafe_apis', ...features].join(',')}`] : [];
}

type Instance = ReturnType<typeof create>;

/**
 * Every Dawn instance this process created, held until exit. dawn.node
 * 0.6.2 crashes when an instance is garbage-collected under a live device
 * (docs/ARCHITECTURE.md §9) and also, measured here, when it is collected after its device
 * was destroyed (SIGSEGV at exit, 7 of 7 runs). Holding them does not keep
 * the process alive; it costs a few kilobytes per device.
 */
const instances: Instance[] = [];

function newInstance(flags: string[]): Instance {
  const instance = create(flags);
  instances.push(instance);
  return instance;
}

/**
 * Acquires a GPUDevice through Dawn: a real GPU adapter first, then any core
 * adapter (lavapipe). Throws one DeviceError that lists every attempt, says
 * what else Dawn could see and what to install, when all fail.
 */
export async function requestDevice(options: NodeDeviceOptions = {}): Promise<Device> {
  process.env.XDG_RUNTIME_DIR ??= '/tmp';
  const attempts = options.attempts ?? ['gpu', 'core'];
  const toggles = dawnToggles(options); // before the attempts: a bad CG_ROBUSTNESS is the user's error, not an adapter's
  const tried: string[] = [];
  let vulkan: Instance | null = null;
  let software: GPUAdapter | null = null;

  for (const attempt of attempts) {
    try {
      if (attempt === 'gpu' || attempt === 'core') {
        vulkan ??= newInstance(toggles);
        const adapter = await vulkan.requestAdapter({ powerPreference: 'high-performance' });
        if (!adapter) {
          tried.push(`${attempt}: requestAdapter() returned null`);
          continue;
        }
        if (attempt === 'gpu' && isSoftwareAdapter(adapter)) {
          software = adapter;
          tried.push(`gpu: only a software adapter (${adapter.info.architecture || adapter.info.description})`);
          continue;
        }
        return await openDevice(software ?? adapter, vulkan, 'core', options);
      }
      // Dawn reads EGL_PLATFORM when the OpenGL backend starts.
      process.env.EGL_PLATFORM ??= 'surfaceless';
      const gl = newInstance(['backend=opengl']);
      const adapter = await gl.requestAdapter({ featureLevel: 'compatibility' } as GPURequestAdapterOptions);
      if (!adapter) {
        tried.push('compat: OpenGL (EGL surfaceless) requestAdapter() returned null');
        continue;
      }
      return await openDevice(adapter, gl, 'compatibility', options);
    } catch (e) {
      tried.push(`${attempt}: ${(e as Error).message}`);
    }
  }
  const seen = attempts.includes('compat') ? '' : await describeCompatAdapter();
  throw new DeviceError(`could not get a WebGPU device. Tried:\n  ${tried.join('\n  ')}\n${seen}${MESA_INSTALL_HINT}`);
}

/**
 * Names the OpenGL compatibility adapter when that is all Dawn has, so the
 * user learns why "an adapter exists" is not enough (Debian's chromium pulls
 * in Mesa's GL, which gives one).
 */
async function describeCompatAdapter(): Promise<string> {
  try {
    process.env.EGL_PLATFORM ??= 'surfaceless';
    const adapter = await newInstance(['backend=opengl']).requestAdapter({
      featureLevel: 'compatibility',
    } as GPURequestAdapterOptions);
    if (!adapter) return '';
    const what = adapter.info.description || adapter.info.architecture || 'OpenGL';
    return `Dawn also offers an OpenGL compatibility adapter (${what}); this library does not use it: its kernels are verified on core adapters only.\n`;
  } catch {
    return '';
  }
}

async function openDevice(
  adapter: GPUAdapter,
  instance: Instance,
  featureLevel: 'core' | 'compatibility',
  options: NodeDeviceOptions,
): Promise<Device> {
  const gpu = await adapter.requestDevice({
    requiredLimits: requiredLimits(adapter),
    requiredFeatures: requiredFeatures(adapter),
    label: 'cg',
  });
  const info = adapter.info;
  const summary: AdapterSummary = {
    vendor: info.vendor,
    architecture: info.architecture,
    description: info.description,
    isSoftware: isSoftwareAdapter(adapter),
    backend: featureLevel === 'compatibility' ? 'opengl' : 'vulkan',
    featureLevel,
    features: [...adapter.features],
  };
  return new Device(gpu, {
    adapter: summary,
    keepAlive: instance, // dawn.node crashes if this is collected under a live device
    dumpWgsl: options.dumpWgsl ?? process.env.CG_DUMP_WGSL === '1',
  });
}
