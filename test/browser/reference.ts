// Node's side of the browser tests: makes the fixtures (a tiny seeded generator saved both ways, an input
// image, a corrupt checkpoint) and computes what the page must reproduce, with the same packages on Dawn.
import {
  defineG,
  loadGenerator,
  MemoryImageSource,
  makeSyntheticDomains,
  type RgbImage,
  readCheckpoint,
  saveCheckpoint,
  type TrainerIO,
  tensorToImages,
  train,
  translateAnySize,
  translateImage,
} from '@cg/cyclegan';
import { decodeImage, encodePng } from '@cg/cyclegan/node';
import { type Device, Rng } from '@cg/tensor-core';

export interface Fixtures {
  files: Record<string, Uint8Array>;
  /** What Node's translateImage makes of the input image with the fixture weights. */
  expected: RgbImage;
  /** What Node makes of the large photo (`large.png`) with the same weights. */
  expectedLarge: RgbImage;
}

/** A photo-like test image: smooth shapes and gradients with a little noise, so norms see real statistics. */
function photo(width: number, height: number, seed: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  let s = seed >>> 0;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      const noise = (s >>> 28) - 8;
      const u = x / width;
      const v = y / height;
      const ring = Math.sin(Math.hypot(u - 0.4, v - 0.6) * 40);
      const i = (y * width + x) * 3;
      data[i] = Math.max(0, Math.min(255, 120 + 90 * ring * u + noise));
      data[i + 1] = Math.max(0, Math.min(255, 60 + 150 * v + 40 * Math.sin(x / 23) + noise));
      data[i + 2] = Math.max(0, Math.min(255, 200 - 140 * u * v + 30 * Math.cos(y / 17) + noise));
    }
  }
  return { width, height, channels: 3, data };
}

/**
 * resnet_2blocks, ngf 2: about 2 MFLOP per 32² image, a few ms on SwiftShader once compiled. `large` is the
 * size of the large photo the pages translate in tiles.
 */
export async function makeFixtures(device: Device, large: [number, number]): Promise<Fixtures> {
  // init_gain 0.1 (not the official 0.02) so the output spreads over many levels: a stronger comparison.
  const net = defineG(
    {
      input_nc: 3,
      output_nc: 3,
      ngf: 2,
      netG: 'resnet_2blocks',
      norm: 'instance',
      use_dropout: false,
      init_type: 'normal',
      init_gain: 0.1,
    },
    { device, rng: new Rng(7) },
  );
  const safetensors = await saveCheckpoint(net, 'safetensors');
  const pth = await saveCheckpoint(net, 'pth');
  net.dispose();
  // 32×32 like the training crops, so training in the same page reuses these pipelines.
  const scenes = makeSyntheticDomains(2, 32, new Rng(5));
  const png = encodePng(scenes.A[0]);
  // The reference goes through the same steps as the page: bytes → state dict → inferred generator.
  const { net: loaded, spec } = loadGenerator(device, readCheckpoint(safetensors, 'gen.safetensors'));
  const expected = await translateImage(loaded, decodeImage(png, 'input.png'), {
    multiple: 4,
    input_nc: spec.input_nc,
  });
  // Whole-image when it fits Dawn's bindings, else tiles: the same floats either way (within 1e-4).
  const largePhoto = photo(large[0], large[1], 9);
  const largeOut = await translateAnySize(loaded, largePhoto, { multiple: 4, input_nc: spec.input_nc });
  const expectedLarge = tensorToImages(largeOut.data, largeOut.shape)[0];
  loaded.dispose();
  // A .pth cut short (as by an interrupted download): its zip directory is missing.
  const corrupt = pth.slice(0, Math.floor(pth.length * 0.6));
  return {
    files: {
      'gen.safetensors': safetensors,
      'gen.pth': pth,
      'input.png': png,
      'corrupt.pth': corrupt,
      // Two small domains to drop into the Train tab.
      'a1.png': encodePng(scenes.A[1]),
      'b0.png': encodePng(scenes.B[0]),
      'b1.png': encodePng(scenes.B[1]),
      'large.png': encodePng(largePhoto),
    },
    expected,
    expectedLarge,
  };
}

export interface TrainReference {
  /** Losses by iteration, as the page logs them (print_freq 1). */
  losses: Record<string, number>[];
}

/** The Node trainer on the same synthetic data and options as the page. */
export async function nodeTraining(
  device: Device,
  data: { n: number; size: number; seed: number },
  options: Parameters<typeof train>[0],
): Promise<TrainReference> {
  const d = makeSyntheticDomains(data.n, data.size, new Rng(data.seed));
  const source = new MemoryImageSource();
  source.addAll(`${options.dataroot}/trainA`, d.A);
  source.addAll(`${options.dataroot}/trainB`, d.B);
  const files = new Map<string, Uint8Array>();
  const io: TrainerIO = {
    async writeFile(path, bytes) {
      files.set(path, bytes);
    },
    async readFile(path) {
      return files.get(path) ?? null;
    },
    encodePng: async (image) => encodePng(image),
  };
  const result = await train(options, { device, source, io });
  const losses = result.history.map((p) => p.losses);
  result.model.dispose();
  return { losses };
}
