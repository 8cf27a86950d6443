/**
 * Whether nn.Sequential (and the networks' residual blocks) run the fused
 * kernels for the layer chains the CycleGAN networks always build:
 * [InstanceNorm2d, ReLU | LeakyReLU] as one norm dispatch with the
 * activation in its output write; a residual block's closing
 * InstanceNorm2d with the skip add in it; [ReflectionPad2d |
 * ReplicationPad2d | ZeroPad2d, Conv2d] as one conv reading through the pad
 * (also a Conv2d's own reflect/replicate paddingMode), and [Conv2d, Tanh |
 * ReLU] with the activation after the bias in the conv's output write. The modules, their order and
 * their state_dict keys are the same either way (the tiled executor, ONNX
 * export and checkpoints walk that tree); fused and unfused give the same
 * values (the same expressions, in the same order).
 *
 * First match wins: setFusion(), then CG_FUSION=0 (off) / 1 (on) in the
 * environment, then on.
 */

let override: boolean | null = null;

/** Turns fusion on or off for every module (null: back to the environment's choice). */
export function setFusion(on: boolean | null): void {
  override = on;
}

export function fusionEnabled(): boolean {
  if (override !== null) return override;
  // Read without importing node:process so this module stays browser-safe.
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
  return env?.CG_FUSION !== '0';
}
