import { CgError, Rng } from '@cg/tensor-core';
import { DataError } from '../errors.js';
import { domainDirs, type ImageSource, listDomain } from './files.js';
import { checkImage, type RgbImage } from './image.js';
import { type DataOptions, resolveDataOptions } from './options.js';
import { augment, toTensor } from './transforms.js';
import { sizeProblem } from './validate.js';

/**
 * One batch, already in the model's view: `A` is what the model calls real_A (input_nc channels) and `B` is
 * real_B (output_nc channels). With direction BtoA that means A comes from the `B` folder and vice versa,
 * which the official code does in two places (UnalignedDataset's nc swap, then the model's set_input); here
 * the dataset does both, so the model must NOT swap again.
 */
export interface Batch {
  A: Float32Array;
  B: Float32Array;
  /** `[N, C, H, W]` */
  shapeA: [number, number, number, number];
  shapeB: [number, number, number, number];
  pathsA: string[];
  pathsB: string[];
  /** The epoch (counted from 0 by this dataset) and this batch's index in it. */
  epoch: number;
  index: number;
}

/** Where the data stream stands, for an exact `--continue_train`. Plain JSON. */
export interface DataState {
  /** Epochs completed. */
  epoch: number;
  /** Items of the current epoch already handed out. */
  position: number;
  /** The generator state at the start of the current epoch: it determines the epoch's order and augmentations. */
  rng: number[];
  /** Dataset length when saved; resuming on a different dataset cannot reproduce the stream. */
  size: number;
}

/** One dataset item before batching, in the model's view (see Batch). */
export interface Item {
  A: RgbImage;
  B: RgbImage;
  pathA: string;
  pathB: string;
}

interface EpochPlan {
  order: number[];
  seed: number;
  next: number[];
}

function wrapError(e: unknown, path: string): CgError {
  if (e instanceof CgError) return e;
  return new DataError(`${path}: ${e instanceof Error ? e.message : String(e)}`);
}

/**
 * The official UnalignedDataset and the DataLoader around it. Item i takes A from `Afolder[i % lenA]` and B
 * from `Bfolder[i % lenB]` with serial_batches, otherwise from a random index (so pairs are not fixed). Each
 * epoch visits all max(lenA, lenB) items, shuffled unless serial_batches, in batches of batch_size (the last
 * one may be smaller, like PyTorch's default drop_last=False).
 *
 * Randomness: at the start of each epoch the order and an epoch seed are drawn from the dataset's Rng; every
 * item then gets its own Rng from (epoch seed, position). So the stream does not depend on how far ahead the
 * prefetcher has run, and the state to save is just (epoch, position, Rng state at epoch start).
 */
export class UnalignedDataset {
  readonly opts: DataOptions;
  /** Sorted, capped files of the `<phase>A` and `<phase>B` folders (folder view, not swapped). */
  readonly folderA: readonly string[];
  readonly folderB: readonly string[];
  private readonly source: ImageSource;
  private epochIndex = 0;
  private position = 0;
  private epochStart: number[];
  private plan: EpochPlan | null = null;
  /** Bumped by setState so a running iterator notices it was overtaken. */
  private generation = 0;

  constructor(opts: DataOptions, source: ImageSource, folderA: readonly string[], folderB: readonly string[]) {
    if (folderA.length === 0 || folderB.length === 0) {
      const which = folderA.length === 0 ? `${opts.phase}A` : `${opts.phase}B`;
      throw new DataError(
        `${opts.dataroot}: no images in ${which}; run validateDataset for a full report of what is wrong`,
      );
    }
    this.opts = opts;
    this.source = source;
    this.folderA = folderA;
    this.folderB = folderB;
    this.epochStart = new Rng(opts.seed).getState();
  }

  /** Lists `<dataroot>/<phase>A` and `<phase>B` through `source`. Run validateDataset first for a full report. */
  static async open(opts: Partial<DataOptions> & { dataroot: string }, source: ImageSource): Promise<UnalignedDataset> {
    const o = resolveDataOptions(opts);
    const dirs = domainDirs(o.dataroot, o.phase);
    const [a, b] = await Promise.all([
      listDomain(source, dirs.A, o.max_dataset_size),
      listDomain(source, dirs.B, o.max_dataset_size),
    ]);
    return new UnalignedDataset(o, source, a.images, b.images);
  }

  /** max(lenA, lenB), as official `__len__`. */
  get length(): number {
    return Math.max(this.folderA.length, this.folderB.length);
  }

  get batchesPerEpoch(): number {
    return Math.ceil(this.length / this.opts.batch_size);
  }

  /** Channels of the model's A and B (input_nc, output_nc). */
  get channels(): { A: 1 | 3; B: 1 | 3 } {
    return { A: this.opts.input_nc, B: this.opts.output_nc };
  }

  /**
   * Official `__getitem__(index)`: the B index first (random unless serial_batches), then transform A, then
   * transform B, all from `rng`. Returned in the model's view (swapped for BtoA).
   */
  async getItem(index: number, rng: Rng): Promise<Item> {
    const o = this.opts;
    const pathA = this.folderA[index % this.folderA.length];
    const indexB = o.serial_batches ? index % this.folderB.length : rng.int(0, this.folderB.length - 1);
    const pathB = this.folderB[indexB];
    const [imgA, imgB] = await Promise.all([this.read(pathA), this.read(pathB)]);
    // Official: transform_A makes the folder-A images input_nc channels for AtoB, output_nc for BtoA.
    const btoA = o.direction === 'BtoA';
    const ncA = btoA ? o.output_nc : o.input_nc;
    const ncB = btoA ? o.input_nc : o.output_nc;
    const A = augment(imgA, o, ncA, rng, pathA);
    const B = augment(imgB, o, ncB, rng, pathB);
    return btoA ? { A: B, B: A, pathA: pathB, pathB: pathA } : { A, B, pathA, pathB };
  }

  private async read(path: string): Promise<RgbImage> {
    let img: RgbImage;
    try {
      img = await this.source.read(path);
    } catch (e) {
      throw wrapError(e, path);
    }
    checkImage(img, path);
    // The same size check as validateDataset, for callers that skip it (test): else a too-small image fails
    // deep in the generator with a ShapeError that does not name the file.
    const why = sizeProblem(this.opts, path, img.width, img.height);
    if (why !== null) throw new DataError(why);
    return img;
  }

  private currentPlan(): EpochPlan {
    if (this.plan === null) {
      const rng = new Rng();
      rng.setState(this.epochStart);
      const order = Array.from({ length: this.length }, (_, i) => i);
      // PyTorch's DataLoader(shuffle=not serial_batches): a fresh permutation every epoch.
      if (!this.opts.serial_batches) rng.shuffle(order);
      const seed = rng.nextU32();
      this.plan = { order, seed, next: rng.getState() };
    }
    return this.plan;
  }

  /** The Rng for the item at `position` of an epoch; any position can be redone independently. */
  private static itemRng(epochSeed: number, position: number): Rng {
    return new Rng((epochSeed ^ Math.imul(position + 1, 0x9e3779b1)) >>> 0);
  }

  private async loadBatch(plan: EpochPlan, start: number, epoch: number): Promise<Batch> {
    const end = Math.min(start + this.opts.batch_size, this.length);
    const positions = Array.from({ length: end - start }, (_, k) => start + k);
    const items = await Promise.all(
      positions.map((p) => this.getItem(plan.order[p], UnalignedDataset.itemRng(plan.seed, p))),
    );
    const [A, shapeA] = stack(items.map((it) => ({ img: it.A, path: it.pathA })));
    const [B, shapeB] = stack(items.map((it) => ({ img: it.B, path: it.pathB })));
    return {
      A,
      B,
      shapeA,
      shapeB,
      pathsA: items.map((it) => it.pathA),
      pathsB: items.map((it) => it.pathB),
      epoch,
      index: Math.floor(start / this.opts.batch_size),
    };
  }

  /**
   * The rest of the current epoch, batch by batch, decoding `prefetch` batches ahead while the caller works on
   * the current one. When the last batch is handed out the dataset moves to the next epoch; call again for it.
   * The state (getState) always describes the batches handed out so far, whatever has been prefetched.
   */
  async *epoch(prefetch = 2): AsyncGenerator<Batch, void, undefined> {
    const generation = ++this.generation;
    const plan = this.currentPlan();
    const epoch = this.epochIndex;
    const bs = this.opts.batch_size;
    let nextStart = this.position;
    const queue: { batch: Promise<Batch>; end: number }[] = [];
    const fill = (ahead: number) => {
      while (queue.length < ahead && nextStart < this.length) {
        const batch = this.loadBatch(plan, nextStart, epoch);
        // Batches abandoned by a `break` may fail later; that must not become an unhandled rejection.
        batch.catch(() => {});
        nextStart = Math.min(this.length, nextStart + bs);
        queue.push({ batch, end: nextStart });
      }
    };
    while (true) {
      fill(1);
      if (queue.length === 0) return;
      const { batch: pending, end } = queue.shift()!;
      const batch = await pending;
      if (generation !== this.generation) {
        throw new DataError('dataset: setState() or another epoch() was called while this epoch was being iterated');
      }
      this.position = end;
      if (this.position >= this.length) this.nextEpoch(plan);
      // Start decoding what comes next before handing this batch over, so it overlaps the caller's work.
      fill(prefetch);
      yield batch;
    }
  }

  private nextEpoch(plan: EpochPlan): void {
    this.epochIndex++;
    this.position = 0;
    this.epochStart = plan.next;
    this.plan = null;
  }

  getState(): DataState {
    return { epoch: this.epochIndex, position: this.position, rng: [...this.epochStart], size: this.length };
  }

  setState(state: DataState): void {
    if (state.size !== this.length) {
      throw new DataError(
        `dataset: the saved data state is for ${state.size} items but ${this.opts.dataroot} now has ${this.length}; ` +
          'restore the original images (and --max_dataset_size) to resume exactly, or start a new run',
      );
    }
    if (!Number.isInteger(state.position) || state.position < 0 || state.position > this.length) {
      throw new DataError(`dataset: saved position ${state.position} is outside 0..${this.length}`);
    }
    if (!Number.isInteger(state.epoch) || state.epoch < 0) {
      throw new DataError(`dataset: saved epoch ${state.epoch} is not a non-negative integer`);
    }
    const rng = new Rng();
    rng.setState(state.rng);
    this.epochIndex = state.epoch;
    this.position = state.position;
    this.epochStart = rng.getState();
    this.plan = null;
    this.generation++;
    if (this.position === this.length) {
      this.nextEpoch(this.currentPlan());
    }
  }
}

/** Stacks same-sized images into one `[N, C, H, W]` tensor, as PyTorch's default collate does. */
function stack(items: { img: RgbImage; path: string }[]): [Float32Array, [number, number, number, number]] {
  const { width: w, height: h, channels: c } = items[0].img;
  for (const { img, path } of items) {
    if (img.width !== w || img.height !== h || img.channels !== c) {
      throw new DataError(
        `${path}: ${img.width}×${img.height} after preprocessing, but ${items[0].path} is ${w}×${h}; images in a ` +
          'batch must match: use --batch_size 1, or a --preprocess with a crop (resize_and_crop, crop, scale_width_and_crop)',
      );
    }
  }
  const size = c * h * w;
  const out = new Float32Array(items.length * size);
  for (let n = 0; n < items.length; n++) toTensor(items[n].img, out, n * size);
  return [out, [items.length, c, h, w]];
}
