/** Limits worth raising above the WebGPU defaults when the adapter allows it. */
const WANTED_LIMITS = [
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxStorageBuffersPerShaderStage',
] as const;

export function requiredLimits(adapter: GPUAdapter): Record<string, number> {
  const out: Record<string, number> = {};
  for (const name of WANTED_LIMITS) {
    const v = (adapter.limits as unknown as Record<string, number>)[name];
    if (typeof v === 'number') out[name] = v;
  }
  return out;
}

const SOFTWARE = /llvmpipe|lavapipe|swiftshader|warp|software/i;

export function isSoftwareAdapter(adapter: GPUAdapter): boolean {
  const info = adapter.info;
  const text = `${info?.vendor ?? ''} ${info?.architecture ?? ''} ${info?.description ?? ''} ${info?.device ?? ''}`;
  const fallback = (info as { isFallbackAdapter?: boolean } | undefined)?.isFallbackAdapter ?? false;
  return fallback || SOFTWARE.test(text);
}
