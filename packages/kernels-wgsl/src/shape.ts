import { fmtShape, type Shape, ShapeError, sizeOf, type Tensor } from '@cg/tensor-core';

export { sizeOf };

/** Row-major strides of a contiguous shape. */
export function stridesOf(shape: Shape): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

/** NumPy broadcasting of two shapes; throws a ShapeError naming the op when they don't broadcast. */
export function broadcastShapes(op: string, a: Shape, b: Shape): number[] {
  const rank = Math.max(a.length, b.length);
  const out = new Array<number>(rank);
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new ShapeError(
        `${op}: shapes ${fmtShape(a)} and ${fmtShape(b)} do not broadcast (dimension ${i}: ${da} vs ${db})`,
      );
    }
    out[i] = da === 1 ? db : da;
  }
  return out;
}

/** Strides to read `shape` (right-aligned) while walking `outShape`; 0 on broadcast dimensions. */
export function broadcastStrides(shape: Shape, outShape: Shape): number[] {
  const own = stridesOf(shape);
  const off = outShape.length - shape.length;
  return outShape.map((_, i) => {
    const j = i - off;
    return j < 0 || shape[j] === 1 ? 0 : own[j];
  });
}

export function expectRank(op: string, name: string, t: Tensor, rank: number, layout = ''): void {
  if (t.rank !== rank) {
    throw new ShapeError(
      `${op}: ${name} must have rank ${rank}${layout ? ` (${layout})` : ''}, got ${fmtShape(t.shape)}`,
    );
  }
}

export function expectSameShape(op: string, a: Tensor, b: Tensor, names = ['a', 'b']): void {
  if (a.shape.length !== b.shape.length || a.shape.some((d, i) => d !== b.shape[i])) {
    throw new ShapeError(
      `${op}: ${names[0]} ${fmtShape(a.shape)} and ${names[1]} ${fmtShape(b.shape)} must have the same shape`,
    );
  }
}

/** Pads a list of dims to a fixed length for a uniform array. */
export function padTo(values: readonly number[], n: number, fill = 0): number[] {
  if (values.length > n) throw new ShapeError(`rank ${values.length} is above the supported maximum ${n}`);
  return [...values, ...new Array<number>(n - values.length).fill(fill)];
}
