import { join } from 'node:path';
import { DataError } from '@cg/cyclegan';
import { Rng } from '@cg/tensor-core';
import { describe, expect, it } from 'vitest';
import { UnalignedDataset } from '../../src/data/dataset.js';
import { NodeImageSource } from '../../src/data/fs-images.js';
import { newImage } from '../../src/data/image.js';
import { MemoryImageSource } from '../../src/data/memory_source.js';
import { validateDataset } from '../../src/data/validate.js';
import { datasetWriter, png } from './helpers.js';
import { pngWithHeader } from './hostile_images.js';

const dataset = datasetWriter('cg-small-skipped-');

describe('train/test datasets: skipped GIF/WebP files are reported in DatasetReport.warnings', () => {
  it('names the unsupported images apart from other skipped files, with how to convert them', async () => {
    const dir = dataset('gif', {
      'trainA/1.png': png(8, 8),
      'trainA/anim.gif': 'GIF89a',
      'trainA/photo.webp': 'RIFF....WEBP',
      'trainA/notes.txt': 'x',
      'trainB/1.png': png(8, 8),
    });
    const r = await validateDataset({ dataroot: dir, load_size: 8, crop_size: 8 }, new NodeImageSource());
    expect(r.warnings).toEqual([
      expect.stringMatching(
        /trainA: skipping 2 image\(s\) in formats we do not read .*anim\.gif, .*photo\.webp; convert/,
      ),
      expect.stringMatching(/trainA: skipping 1 file\(s\) without an image extension, e\.g\. .*notes\.txt/),
    ]);
  });

  it('a domain of only GIFs is a problem that says to convert them', async () => {
    const dir = dataset('only-gif', { 'trainA/a.gif': 'GIF89a', 'trainB/1.png': png(8, 8) });
    await expect(validateDataset({ dataroot: dir, load_size: 8, crop_size: 8 }, new NodeImageSource())).rejects.toThrow(
      /trainA: no images .*convert GIF\/WebP\/HEIC images to PNG/,
    );
  });

  it('a decompression bomb in a dataset is refused by the header check, before any training', async () => {
    const dir = dataset('bomb', { 'trainA/bomb.png': pngWithHeader(20000, 20000), 'trainB/1.png': png(8, 8) });
    await expect(validateDataset({ dataroot: dir, load_size: 8, crop_size: 8 }, new NodeImageSource())).rejects.toThrow(
      /bomb\.png: 20000×20000 \(400\.0 MP\) is over the limit/,
    );
    const lenient = new NodeImageSource({ maxPixels: 1e9 });
    await expect(lenient.probe(join(dir, 'trainA/bomb.png'))).resolves.toMatchObject({ width: 20000 });
  });
});

describe('--preprocess none: images too small for the generators are DataErrors, not ShapeErrors', () => {
  const opts = { dataroot: 'data', preprocess: 'none' as const, serial_batches: true, no_flip: true };
  const source = (w: number, h: number) => {
    const s = new MemoryImageSource();
    s.addAll('data/trainA', [newImage(w, h, 3)], 'a');
    s.addAll('data/trainB', [newImage(8, 8, 3)], 'b');
    return s;
  };

  // Sides round half-to-even to a multiple of 4: 2 → 0, 3..5 → 4 (too small for a resnet), 6 → 8.
  it.each([
    [5, 9, '4×8'],
    [9, 3, '8×4'],
    [2, 8, '0×8'],
  ])('%i×%i (rounds to %s) is refused by validateDataset and by the dataset itself', async (w, h, rounded) => {
    const want = new RegExp(`trainA/a0\\.png: ${w}×${h} is too small for --preprocess none: it rounds to ${rounded}`);
    await expect(validateDataset(opts, source(w, h))).rejects.toThrow(want);
    // cli-test reads through the dataset without validating first.
    const ds = await UnalignedDataset.open(opts, source(w, h));
    const e = await ds.getItem(0, new Rng(0)).then(
      () => null,
      (err: unknown) => err,
    );
    expect(e).toBeInstanceOf(DataError);
    expect((e as DataError).message).toMatch(/both sides must be 6 pixels or more/);
  });

  it('6×6 rounds to 8×8 and is accepted', async () => {
    await expect(validateDataset(opts, source(6, 6))).resolves.toMatchObject({ A: { count: 1 } });
    const ds = await UnalignedDataset.open(opts, source(6, 6));
    expect((await ds.getItem(0, new Rng(0))).A).toMatchObject({ width: 8, height: 8 });
  });
});
