import { fmtShape, ShapeError, type Tensor } from '@cg/tensor-core';

/** Threads per workgroup of the elementwise kernels, and of the one-workgroup-per-reduction kernels. */
export const WG = 64;
export const RED_WG = 128;

/** @internal Checks that x is [N, C, H, W] with no empty dimension; returns the dims. */
export function expectImages(op: string, name: string, x: Tensor): [number, number, number, number] {
  if (x.rank !== 4 || x.shape.some((d) => d < 1)) {
    throw new ShapeError(
      `${op}: ${name} must be [N,C,H,W] with every dimension ≥ 1 (got ${name} ${fmtShape(x.shape)})`,
    );
  }
  return x.shape as unknown as [number, number, number, number];
}
