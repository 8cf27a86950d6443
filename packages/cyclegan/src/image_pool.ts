import { Variable } from '@cg/autograd';
import { concat, split } from '@cg/kernels-wgsl';
import { type Device, keep, type Rng, Tensor } from '@cg/tensor-core';

/** A saved pool for exact resume. */
export interface ImagePoolState {
  images: { shape: number[]; data: Float32Array }[];
}

/**
 * util.ImagePool: a history of generated images that the discriminators
 * also see (Shrivastava et al.). Until the pool is full every image goes in
 * and comes out unchanged; after that each image is, with probability ½,
 * swapped for a random stored one (which is returned) or returned as is.
 *
 * Owns the tensors it stores (kept out of tidy scopes) until it is disposed.
 */
export class ImagePool {
  private images: Tensor[] = [];

  constructor(
    readonly poolSize: number,
    private readonly rng: Rng,
  ) {}

  get size(): number {
    return this.images.length;
  }

  /**
   * `images`: a detached batch [N, C, H, W]. Returns a batch of the same
   * shape, outside any graph, owned by the current scope.
   */
  query(images: Variable): Variable {
    if (this.poolSize === 0) return images;
    const input = images.data;
    const n = input.shape[0];
    // Views share storage, so storing or returning an image copies nothing.
    const singles = n === 1 ? [input.reshape(input.shape)] : split(input, new Array(n).fill(1), 0);
    const out: Tensor[] = [];
    for (const image of singles) {
      if (this.images.length < this.poolSize) {
        this.images.push(keep(image.reshape(image.shape)));
        out.push(image);
      } else if (this.rng.random() > 0.5) {
        const id = this.rng.int(0, this.poolSize - 1);
        const old = this.images[id];
        out.push(old.reshape(old.shape)); // a scope-owned handle for the caller
        old.dispose();
        this.images[id] = keep(image);
      } else {
        out.push(image);
      }
    }
    if (out.length === 1) return new Variable(out[0]);
    const batch = concat(out, 0);
    for (const t of out) if (!this.images.includes(t)) t.dispose();
    return new Variable(batch);
  }

  async getState(): Promise<ImagePoolState> {
    const data = await Promise.all(this.images.map((t) => t.toArray()));
    return { images: this.images.map((t, i) => ({ shape: [...t.shape], data: data[i] })) };
  }

  setState(device: Device, state: ImagePoolState): void {
    this.dispose();
    this.images = state.images.map((im) => keep(Tensor.fromArray(device, im.data, im.shape)));
  }

  dispose(): void {
    for (const t of this.images) t.dispose();
    this.images = [];
  }
}
