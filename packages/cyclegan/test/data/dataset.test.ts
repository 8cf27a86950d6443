import { DataError, OptionError } from '@cg/cyclegan';
import { Rng } from '@cg/tensor-core';
import { describe, expect, it } from 'vitest';
import { type Batch, UnalignedDataset } from '../../src/data/dataset.js';
import { newImage, type RgbImage } from '../../src/data/image.js';
import { MemoryImageSource } from '../../src/data/memory_source.js';
import type { DataOptions } from '../../src/data/options.js';

/** A flat image whose value identifies it (flips and crops keep it), or noise when `noisy`. */
function flat(value: number, size = 8, c: 1 | 3 = 3): RgbImage {
  const img = newImage(size, size, c);
  img.data.fill(value);
  return img;
}

function noisy(seed: number, size = 12): RgbImage {
  const img = newImage(size, size, 3);
  const r = new Rng(seed);
  for (let i = 0; i < img.data.length; i++) img.data[i] = r.int(0, 255);
  return img;
}

function source(
  nA: number,
  nB: number,
  make: (domain: 'A' | 'B', i: number) => RgbImage = (d, i) => flat((d === 'A' ? 0 : 100) + i),
) {
  const s = new MemoryImageSource();
  s.addAll(
    'data/trainA',
    Array.from({ length: nA }, (_, i) => make('A', i)),
    'a',
  );
  s.addAll(
    'data/trainB',
    Array.from({ length: nB }, (_, i) => make('B', i)),
    'b',
  );
  return s;
}

const base: Partial<DataOptions> & { dataroot: string } = {
  dataroot: 'data',
  preprocess: 'none',
  no_flip: true,
};

async function collect(ds: UnalignedDataset, prefetch = 2, maxBatches = Number.POSITIVE_INFINITY): Promise<Batch[]> {
  const out: Batch[] = [];
  for await (const b of ds.epoch(prefetch)) {
    out.push(b);
    if (out.length >= maxBatches) break;
  }
  return out;
}

/** Which image each batch entry came from, by file name. */
const names = (batches: Batch[]) =>
  batches.flatMap((b) => b.pathsA.map((p, i) => `${p.split('/').pop()}|${b.pathsB[i].split('/').pop()}`));
const digest = (batches: Batch[]) => batches.map((b) => [Array.from(b.A.slice(0, 20)), Array.from(b.B.slice(0, 20))]);

describe('UnalignedDataset', () => {
  it('length is max(lenA, lenB); serial batches pair A[i % lenA] with B[i % lenB] in order', async () => {
    const ds = await UnalignedDataset.open({ ...base, serial_batches: true }, source(5, 3));
    expect(ds.length).toBe(5);
    expect(ds.batchesPerEpoch).toBe(5);
    expect(names(await collect(ds))).toEqual([
      'a0.png|b0.png',
      'a1.png|b1.png',
      'a2.png|b2.png',
      'a3.png|b0.png',
      'a4.png|b1.png',
    ]);
    const ds2 = await UnalignedDataset.open({ ...base, serial_batches: true }, source(2, 4));
    expect(names(await collect(ds2))).toEqual(['a0.png|b0.png', 'a1.png|b1.png', 'a0.png|b2.png', 'a1.png|b3.png']);
  });

  it('shuffled: every index once per epoch, a new order each epoch, B drawn at random', async () => {
    const ds = await UnalignedDataset.open({ ...base, seed: 7 }, source(12, 12));
    const e1 = names(await collect(ds));
    const e2 = names(await collect(ds));
    const aOf = (n: string[]) => n.map((s) => s.split('|')[0]);
    expect([...aOf(e1)].sort()).toEqual([...aOf(e2)].sort());
    expect(new Set(aOf(e1)).size).toBe(12);
    expect(aOf(e1)).not.toEqual(aOf(e2));
    // Random B: not the serial pairing, and some B repeats within an epoch (12 draws from 12 almost surely repeat).
    const bOf = (n: string[]) => n.map((s) => s.split('|')[1]);
    expect(new Set(bOf(e1)).size).toBeLessThan(12);
    expect(ds.getState().epoch).toBe(2);
  });

  it('the tensors hold the transformed images in [N, C, H, W]', async () => {
    const ds = await UnalignedDataset.open({ ...base, serial_batches: true }, source(1, 1));
    const [b] = await collect(ds);
    expect(b.shapeA).toEqual([1, 3, 8, 8]);
    expect(b.A[0]).toBeCloseTo(-1, 6); // value 0
    expect(b.B[0]).toBeCloseTo((100 / 255 - 0.5) / 0.5, 6);
  });

  it('is reproducible from the seed, whatever the prefetch depth, and differs between seeds', async () => {
    const opts = {
      ...base,
      preprocess: 'resize_and_crop' as const,
      load_size: 10,
      crop_size: 8,
      no_flip: false,
      seed: 3,
    };
    const mk = (d: 'A' | 'B', i: number) => noisy(d === 'A' ? i : 1000 + i);
    const runs: ReturnType<typeof digest>[] = [];
    for (const prefetch of [0, 1, 4]) {
      const ds = await UnalignedDataset.open(opts, source(6, 4, mk));
      runs.push([...digest(await collect(ds, prefetch)), ...digest(await collect(ds, prefetch))]);
    }
    expect(runs[1]).toEqual(runs[0]);
    expect(runs[2]).toEqual(runs[0]);
    const other = await UnalignedDataset.open({ ...opts, seed: 4 }, source(6, 4, mk));
    expect(digest(await collect(other))).not.toEqual(runs[0].slice(0, 6));
  });

  it('getState/setState resumes the exact same stream (mid-epoch and across epochs)', async () => {
    const opts = {
      ...base,
      preprocess: 'resize_and_crop' as const,
      load_size: 10,
      crop_size: 8,
      no_flip: false,
      seed: 11,
      batch_size: 2,
    };
    const mk = (d: 'A' | 'B', i: number) => noisy(d === 'A' ? i : 1000 + i);
    const ref = await UnalignedDataset.open(opts, source(7, 5, mk));
    const whole = [...(await collect(ref)), ...(await collect(ref)), ...(await collect(ref))];

    const first = await UnalignedDataset.open(opts, source(7, 5, mk));
    await collect(first); // epoch 0
    const part = await collect(first, 3, 2); // 2 of epoch 1's 4 batches (prefetch ran further ahead)
    const saved = JSON.parse(JSON.stringify(first.getState()));
    expect(saved).toMatchObject({ epoch: 1, position: 4, size: 7 });

    const resumed = await UnalignedDataset.open(opts, source(7, 5, mk));
    resumed.setState(saved);
    const rest = [...(await collect(resumed)), ...(await collect(resumed))];
    expect(digest([...whole.slice(0, 4), ...part, ...rest])).toEqual(digest(whole));
    expect(names(rest)).toEqual(names(whole.slice(6)));
    expect(rest.map((b) => [b.epoch, b.index])).toEqual([
      [1, 2],
      [1, 3],
      [2, 0],
      [2, 1],
      [2, 2],
      [2, 3],
    ]);
  });

  it('refuses a state saved for a different dataset size', async () => {
    const ds = await UnalignedDataset.open(base, source(3, 3));
    expect(() => ds.setState({ ...ds.getState(), size: 4 })).toThrow(/saved data state is for 4 items/);
  });

  it('batch_size > 1 stacks items and keeps the last partial batch', async () => {
    const ds = await UnalignedDataset.open({ ...base, batch_size: 2, serial_batches: true }, source(5, 2));
    const batches = await collect(ds);
    expect(batches.map((b) => b.shapeA)).toEqual([
      [2, 3, 8, 8],
      [2, 3, 8, 8],
      [1, 3, 8, 8],
    ]);
    expect(batches.map((b) => b.pathsA.length)).toEqual([2, 2, 1]);
    // Second item of the first batch is a1 (value 1), stored after the first item's 3·8·8 values.
    expect(batches[0].A[192]).toBeCloseTo(Math.fround(Math.fround(1 / 255) - 0.5) * 2, 7);
  });

  it('max_dataset_size keeps the first files in sorted order', async () => {
    const ds = await UnalignedDataset.open({ ...base, max_dataset_size: 3, serial_batches: true }, source(12, 12));
    expect(ds.folderA.map((p) => p.split('/').pop())).toEqual(['a00.png', 'a01.png', 'a02.png']);
    expect(ds.length).toBe(3);
  });

  it('direction BtoA: batch A comes from the B folder with input_nc channels, and vice versa', async () => {
    const opts = {
      ...base,
      direction: 'BtoA' as const,
      input_nc: 1 as const,
      output_nc: 3 as const,
      serial_batches: true,
    };
    const ds = await UnalignedDataset.open(opts, source(2, 2));
    const [b] = await collect(ds);
    expect(b.pathsA[0]).toMatch(/trainB\/b0\.png$/);
    expect(b.pathsB[0]).toMatch(/trainA\/a0\.png$/);
    expect(b.shapeA).toEqual([1, 1, 8, 8]);
    expect(b.shapeB).toEqual([1, 3, 8, 8]);
    expect(ds.channels).toEqual({ A: 1, B: 3 });
  });

  it('phase test takes the official test defaults (serial, no flip, load_size = crop_size)', async () => {
    const s = new MemoryImageSource();
    s.addAll('data/testA', [flat(1)]);
    s.addAll('data/testB', [flat(2)]);
    const ds = await UnalignedDataset.open({ dataroot: 'data', phase: 'test', crop_size: 8 }, s);
    expect(ds.opts).toMatchObject({ serial_batches: true, no_flip: true, load_size: 8, crop_size: 8 });
  });

  it('errors: different sizes in one batch, an unreadable file, bad options', async () => {
    const sizes = await UnalignedDataset.open(
      { ...base, batch_size: 2, serial_batches: true },
      source(2, 2, (_d, i) => flat(i, i === 0 ? 8 : 12)),
    );
    await expect(collect(sizes)).rejects.toThrow(/images in a batch must match: use --batch_size 1/);

    const broken = source(2, 2);
    broken.read = async (p) => {
      if (p.endsWith('a1.png')) throw new Error('boom');
      return flat(0);
    };
    const ds = await UnalignedDataset.open({ ...base, serial_batches: true }, broken);
    await expect(collect(ds)).rejects.toThrow(DataError);
    await expect(collect(ds)).rejects.toThrow(/a1\.png: boom/);

    await expect(UnalignedDataset.open({ ...base, preprocess: 'zoom' as never }, source(1, 1))).rejects.toThrow(
      OptionError,
    );
  });
});
