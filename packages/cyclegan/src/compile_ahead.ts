import type { nn } from '@cg/autograd';
import { newImage } from './data/image.js';
import type { TranslateOptions } from './generator_io.js';
import { translateAnySize } from './tiled/index.js';

export interface CompileGeneratorOptions extends Pick<TranslateOptions, 'multiple' | 'input_nc' | 'eval'> {
  /** Compile for photo-sized images, whole and tiled (default true). */
  photos?: boolean;
  /**
   * Image sizes ([width, height]) to compile for exactly: small images select narrower conv tiles than
   * photos do. Sizes over EXACT_MAX_PIXELS are left to the photo-sized dummies, which cover them.
   */
  sizes?: readonly (readonly [number, number])[];
  /** Steps done and in all: two per pipeline, compiled then primed (Device.compileAhead's progress). */
  onProgress?: (done: number, total: number) => void;
}

/** Largest image compiled for at its own size; its dummy forward allocates what the real one will reuse. */
export const EXACT_MAX_PIXELS = 512 * 512;

/**
 * Side of the photo-sized dummies: rows of 48 and more at every resnet level (the transposed convs' phases
 * too) select the widest conv tiles, and the bottleneck's planes are large enough for a GPU's chunked norms,
 * as a photo's are.
 */
const PHOTO_SIDE = 192;

/**
 * Compiles, without blocking, the pipelines translateAnySize needs with this
 * generator, so the first real translation compiles none
 * (Device.compileAhead). Image sizes are uniforms (ARCHITECTURE §3), so
 * blank images stand in for photos; they cover what a size still bakes:
 *
 * - the whole image at 192² (the multiple's nearest);
 * - 195², which is padded to the multiple as most photos are (reflection)
 *   and whose 49×49 bottleneck has odd planes, which select the norms'
 *   scalar variant (vec4 needs H·W % 4 = 0); a U-Net, whose multiple would
 *   make that image large, gets 255² instead of both;
 * - the tiled path (images past one binding), which runs the convolutions
 *   unpadded on tiles;
 * - each of `sizes` at its own size.
 *
 * Pipelines a size reaches beyond these still compile on first use, as
 * before. Dropout in train mode draws its seeds as a real forward would.
 */
export async function compileGeneratorAhead(
  net: nn.Module,
  o: CompileGeneratorOptions,
): Promise<{ recorded: number; compiled: number }> {
  const device = net.parameters()[0].device;
  const side = o.multiple * Math.ceil(PHOTO_SIDE / o.multiple);
  const photos = o.photos ?? true;
  const whole: (readonly [number, number])[] = [];
  if (photos) {
    const sides = o.multiple <= 16 ? [side, side + o.multiple - 1] : [side - 1];
    for (const s of sides) whole.push([s, s]);
  }
  whole.push(...(o.sizes ?? []).filter(([w, h]) => w * h <= EXACT_MAX_PIXELS));
  const t = { multiple: o.multiple, input_nc: o.input_nc, eval: o.eval };
  const blank = (w: number, h: number) => newImage(w, h, o.input_nc === 1 ? 1 : 3);
  const result = await device.compileAhead(
    async () => {
      for (const [w, h] of whole) await translateAnySize(net, blank(w, h), t);
      // Two tiles split the rows only, so tile rows stay as wide as a photo's (the tile size picks conv tiles).
      if (photos) await translateAnySize(net, blank(side, side), { ...t, forceTiled: true, minTiles: 2 });
    },
    { onProgress: o.onProgress },
  );
  // The dummies' buffers (never written) would otherwise wait in the pool for sizes nobody may ask for.
  device.trimPool();
  return result;
}
