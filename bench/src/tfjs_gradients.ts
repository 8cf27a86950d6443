// tfjs-core's Node bundle registers no gradients (the @tensorflow/tfjs union
// package imports `register_all_gradients`, which is not loadable from Node
// on its own). The rules below are transcribed from
// @tensorflow/tfjs-core 4.22.0 `dist/gradients/<Kernel>_grad.js`, for just the
// kernels the instance-norm peer records (tf.moments + normalize), so
// tf.grad runs the same backward kernels a tfjs user would get.
import type * as tfc from '@tensorflow/tfjs-core';

type Tf = typeof tfc;
type T = tfc.Tensor;

/** Registers each rule that tfjs does not already have. Returns the kernel names registered. */
export function registerTfjsGradients(tf: Tf): string[] {
  const { getReductionAxes, assertAndGetBroadcastShape } = tf.broadcast_util;
  /** Sums `res` over the axes `shape` was broadcast along (as Add/Sub/Mul_grad do). */
  const unbroadcast = (res: T, shape: number[], outShape: number[]) => {
    const axes = getReductionAxes(shape, outShape);
    return tf.reshape(axes.length > 0 ? tf.sum(res, axes) : res, shape);
  };
  const one = (dy: T | T[]) => dy as T;

  const rules: tfc.GradConfig[] = [
    {
      kernelName: 'Add',
      inputsToSave: ['a', 'b'],
      gradFunc: (dy, [a, b]) => {
        const out = assertAndGetBroadcastShape(a.shape, b.shape);
        return { a: () => unbroadcast(one(dy), a.shape, out), b: () => unbroadcast(one(dy), b.shape, out) };
      },
    },
    {
      kernelName: 'Sub',
      inputsToSave: ['a', 'b'],
      gradFunc: (dy, [a, b]) => {
        const out = assertAndGetBroadcastShape(a.shape, b.shape);
        return {
          a: () => unbroadcast(one(dy), a.shape, out),
          b: () => {
            const axes = getReductionAxes(b.shape, out);
            const res = axes.length > 0 ? tf.sum(one(dy), axes) : one(dy);
            return tf.reshape(tf.neg(res), b.shape);
          },
        };
      },
    },
    {
      kernelName: 'Multiply',
      inputsToSave: ['a', 'b'],
      gradFunc: (dy, [a, b]) => {
        const out = assertAndGetBroadcastShape(a.shape, b.shape);
        const der = (self: T, other: T) => {
          const res = tf.mul(one(dy), tf.cast(other, 'float32'));
          const axes = getReductionAxes(self.shape, out);
          return axes.length > 0 ? tf.reshape(tf.sum(res, axes), self.shape) : res;
        };
        return { a: () => der(a, b), b: () => der(b, a) };
      },
    },
    {
      kernelName: 'Rsqrt',
      inputsToSave: ['x'],
      gradFunc: (dy, [x]) => ({ x: () => tf.neg(tf.div(one(dy), tf.mul(tf.pow(x, 1.5), 2))) }),
    },
    {
      kernelName: 'Square',
      inputsToSave: ['x'],
      gradFunc: (dy, [x]) => ({ x: () => tf.mul(one(dy), tf.mul(tf.cast(x, 'float32'), 2)) }),
    },
    {
      kernelName: 'Mean',
      inputsToSave: ['x'],
      gradFunc: (dy, [x], attrs) => {
        const axes = tf.util.parseAxisParam(attrs.axis as number | number[], x.shape);
        const reduceSize = axes.reduce((n, ax) => n * x.shape[ax], 1);
        return {
          x: () => {
            const expanded = x.shape.slice();
            for (const ax of axes) expanded[ax] = 1;
            return tf.div(tf.mul(tf.reshape(one(dy), expanded), tf.ones(x.shape, 'float32')), reduceSize);
          },
        };
      },
    },
    {
      kernelName: 'Reshape',
      inputsToSave: ['x'],
      gradFunc: (dy, [x]) => ({ x: () => tf.reshape(one(dy), x.shape) }),
    },
    {
      kernelName: 'Cast',
      gradFunc: (dy) => ({ x: () => one(dy).clone() }),
    },
  ];
  const added: string[] = [];
  for (const r of rules) {
    if (tf.getGradient(r.kernelName) == null) {
      tf.registerGradient(r);
      added.push(r.kernelName);
    }
  }
  return added;
}
