import { binaryMap, sum } from '@cg/kernels-wgsl';
import { type Shape, Tensor } from '@cg/tensor-core';

/**
 * The gradient of a broadcast input: `dy` summed over the axes along which
 * `shape` was broadcast (leading axes it lacks, and its size-1 axes).
 * Returns `dy` itself when nothing was broadcast; the caller owns any new tensor.
 */
export function sumTo(dy: Tensor, shape: Shape): Tensor {
  if (dy.rank === shape.length && dy.shape.every((d, i) => d === shape[i])) return dy;
  const off = dy.rank - shape.length;
  const axes: number[] = [];
  dy.shape.forEach((d, i) => {
    const target = i < off ? 1 : shape[i - off];
    if (target === 1 && d !== 1) axes.push(i);
  });
  if (axes.length === 0) return dy.reshape(shape);
  const s = sum(dy, axes, true);
  const out = s.reshape(shape);
  s.dispose();
  return out;
}

/**
 * The gradient of a reduction: `dy` (the reduced shape) repeated along the
 * reduced `axes` back to `shape`, times `scale` (1/n for a mean).
 */
export function expandTo(dy: Tensor, shape: Shape, axes: readonly number[], scale = 1): Tensor {
  const kept = shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const d = dy.reshape(kept);
  // binaryMap broadcasts b over a's shape; `a` is only there to carry that shape.
  const carrier = Tensor.empty(dy.device, shape);
  const out = binaryMap('expand', 'b * p', carrier, d, scale);
  carrier.dispose();
  d.dispose();
  return out;
}
