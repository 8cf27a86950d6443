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

/** Per-thread Kahan sum then a workgroup tree; `treeSum` returns the workgroup's total in every thread. */
export const TREE = /* wgsl */ `
var<workgroup> partial: array<f32, ${RED_WG}>;
fn treeSum(lid: u32, v: f32) -> f32 {
  partial[lid] = v;
  workgroupBarrier();
  for (var s = ${RED_WG / 2}u; s > 0u; s = s >> 1u) {
    if (lid < s) { partial[lid] = partial[lid] + partial[lid + s]; }
    workgroupBarrier();
  }
  let total = partial[0];
  workgroupBarrier();
  return total;
}`;
