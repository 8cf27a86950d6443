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

/**
 * Optional features the kernels use when present: `subgroups` lets the conv
 * kernels share each loaded weight across lanes with subgroupBroadcast
 * (2–5× faster convs on lavapipe; kernels-wgsl conv_strategy.ts decides per
 * device whether to use it, from the subgroup size).
 */
export function requiredFeatures(adapter: GPUAdapter): GPUFeatureName[] {
  return adapter.features.has('subgroups') ? ['subgroups' as GPUFeatureName] : [];
}

const SOFTWARE = /llvmpipe|lavapipe|swiftshader|warp|software/i;

export function isSoftwareAdapter(adapter: GPUAdapter): boolean {
  const info = adapter.info;
  const text = `${info?.vendor ?? ''} ${info?.architecture ?? ''} ${info?.description ?? ''} ${info?.device ?? ''}`;
  const fallback = (info as { isFallbackAdapter?: boolean } | undefined)?.isFallbackAdapter ?? false;
  return fallback || SOFTWARE.test(text);
}
