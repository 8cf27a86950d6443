import { DataError, OptionError } from '@cg/cyclegan';
import jpeg from 'jpeg-js';
import { describe, expect, it } from 'vitest';
import { NodeImageSource } from '../../src/data/fs-images.js';
import { newImage } from '../../src/data/image.js';
import { MemoryImageSource } from '../../src/data/memory_source.js';
import { validateDataset } from '../../src/data/validate.js';
import { datasetWriter, png } from './helpers.js';

const dataset = datasetWriter('cg-validate-');
const src = new NodeImageSource();

function jpg(w: number, h: number): Uint8Array {
  const data = new Uint8Array(w * h * 4).map((_, i) => (i * 31) % 256);
  return jpeg.encode({ width: w, height: h, data }, 90).data;
}

async function problems(p: Promise<unknown>): Promise<string> {
  const e = await p.then(
    () => null,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(DataError);
  return (e as DataError).message;
}

describe('validateDataset', () => {
  it('accepts a good dataset and warns about skipped non-image files', async () => {
    const dir = dataset('good', {
      'trainA/1.png': png(40, 30),
      'trainA/sub/2.jpg': jpg(32, 32),
      'trainA/README.txt': 'notes',
      'trainB/1.JPEG': jpg(20, 20),
    });
    for (const decode of [false, true]) {
      const r = await validateDataset({ dataroot: dir, load_size: 30, crop_size: 16 }, src, { decode });
      expect(r).toMatchObject({ A: { count: 2 }, B: { count: 1 }, checked: decode ? 'decode' : 'header' });
      expect(r.warnings).toHaveLength(1);
      expect(r.warnings[0]).toMatch(/skipping 1 file\(s\) without an image extension, e\.g\. .*README\.txt/);
    }
  });

  it('reports a missing folder and an empty folder together', async () => {
    const dir = dataset('empty', { 'trainB/labels.csv': 'x' });
    const msg = await problems(validateDataset({ dataroot: dir }, src));
    expect(msg).toMatch(/cannot be used \(2 problems\)/);
    expect(msg).toMatch(/trainA: folder not found; create it/);
    expect(msg).toMatch(/trainB: no images \(found only 1 other file\(s\), e\.g\. .*labels\.csv\)/);
    expect(msg).toMatch(/Expected layout: .*trainA\/ and .*trainB\/ holding PNG or JPEG images/);
  });

  it('names a truncated JPEG, a text file called .png, an unsupported BMP and an image smaller than the crop', async () => {
    const good = jpg(64, 48);
    const dir = dataset('broken', {
      'trainA/ok.jpg': good,
      'trainA/cut.jpg': good.subarray(0, Math.floor(good.length * 0.6)),
      'trainA/page.png': '<html>404 Not Found</html>',
      'trainB/ok.png': png(64, 64),
      'trainB/small.png': png(40, 64),
      'trainB/old.bmp': Uint8Array.of(0x42, 0x4d, 1, 2, 3),
      'trainB/cut.png': png(64, 64).subarray(0, 50),
    });
    for (const decode of [false, true]) {
      const msg = await problems(
        validateDataset({ dataroot: dir, preprocess: 'crop', crop_size: 48 }, src, { decode }),
      );
      expect(msg).toMatch(/\(5 problems\)/);
      expect(msg).toMatch(/cut\.jpg: .*(truncated|cannot decode)/);
      expect(msg).toMatch(/page\.png: not a PNG or JPEG image/);
      expect(msg).toMatch(/old\.bmp: BMP images are not supported/);
      expect(msg).toMatch(/cut\.png: truncated or corrupt PNG/);
      expect(msg).toMatch(/small\.png: 40×64 is smaller than --crop_size 48/);
      expect(msg).not.toMatch(/ok\.(jpg|png)/);
    }
    // With resize_and_crop every image is resized first, so the small one is fine.
    const msg = await problems(validateDataset({ dataroot: dir, load_size: 64, crop_size: 48 }, src));
    expect(msg).toMatch(/\(4 problems\)/);
  });

  it('lists at most 10 problems and counts the rest', async () => {
    const files: Record<string, string | Uint8Array> = { 'trainB/ok.png': png(8, 8) };
    for (let i = 0; i < 14; i++) files[`trainA/bad${String(i).padStart(2, '0')}.png`] = 'x';
    const msg = await problems(validateDataset({ dataroot: dataset('many', files) }, src));
    expect(msg).toMatch(/\(14 problems\)/);
    expect(msg).toMatch(/bad09\.png/);
    expect(msg).not.toMatch(/bad10\.png/);
    expect(msg).toMatch(/… and 4 more/);
  });

  it('decodes every image when the source has no probe', async () => {
    const mem = new MemoryImageSource();
    mem.addAll('d/trainA', [newImage(10, 10, 3)]);
    mem.addAll('d/trainB', [newImage(10, 10, 1)]);
    expect(await validateDataset({ dataroot: 'd', preprocess: 'none' }, mem)).toMatchObject({ checked: 'decode' });
  });

  it('rejects bad options with an OptionError before touching the files', async () => {
    // A folder that does not exist: no files, so the writer creates nothing.
    const opt = (o: object) => validateDataset({ dataroot: dataset('nowhere', {}), ...o }, src);
    await expect(opt({ load_size: 200, crop_size: 256 })).rejects.toThrow(OptionError);
    await expect(opt({ load_size: 200, crop_size: 256 })).rejects.toThrow(
      /--crop_size 256 is larger than --load_size 200/,
    );
    await expect(opt({ preprocess: 'scale_width_and_crop', load_size: 200, crop_size: 256 })).rejects.toThrow(
      OptionError,
    );
    await expect(opt({ preprocess: 'resize' })).rejects.toThrow(/--preprocess must be one of resize_and_crop, crop/);
    await expect(opt({ batch_size: 0, input_nc: 2 })).rejects.toThrow(
      /--input_nc must be 1 or 3.*--batch_size must be a positive integer/,
    );
    // crop_size > load_size is fine when nothing is resized to load_size first.
    await expect(opt({ preprocess: 'crop', load_size: 200, crop_size: 256 })).rejects.toThrow(DataError);
  });
});
