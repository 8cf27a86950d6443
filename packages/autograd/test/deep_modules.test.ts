import { describe, expect, it } from 'vitest';
import * as nn from '../src/nn/index.js';
import type { Variable } from '../src/variable.js';

/**
 * Module trees whose depth or width comes from a file (a checkpoint's keys)
 * must not overflow the call stack: traversal is iterative, and
 * Sequential.from takes any number of layers. No device is needed: these
 * modules have no tensors.
 */

class Link extends nn.Module {
  forward(x: Variable): Variable {
    return x;
  }
}

/** root → inner → inner → …, `depth` modules below the root, each one `inner` of its parent. */
function chain(depth: number): nn.Module {
  const root = new Link();
  let m: nn.Module = root;
  for (let i = 0; i < depth; i++) m = m.registerModule('inner', new Link());
  return root;
}

describe('deep and wide module trees', () => {
  it('namedModules, modules, stateDict, apply, train and dispose on a 50,000-deep chain', () => {
    const root = chain(50_000);
    const names = [...root.namedModules()].map(([n]) => n);
    expect(names).toHaveLength(50_001);
    expect(names[2]).toBe('inner.inner');
    expect(root.modules()).toHaveLength(50_001);
    expect(root.stateDict().size).toBe(0);
    let visited = 0;
    root.apply(() => visited++);
    expect(visited).toBe(50_001);
    root.eval();
    expect(root.modules().every((m) => !m.training)).toBe(true);
    expect(() => root.dispose()).not.toThrow();
  });

  it('keeps the recursive orders: pre-order names, children-first apply', () => {
    const root = new Link();
    const a = root.registerModule('a', new Link());
    a.registerModule('x', new Link());
    a.registerModule('y', new Link());
    root.registerModule('b', new Link());
    expect([...root.namedModules('net')].map(([n]) => n)).toEqual(['net', 'net.a', 'net.a.x', 'net.a.y', 'net.b']);
    const order: nn.Module[] = [];
    root.apply((m) => order.push(m));
    const name = new Map([...root.namedModules()].map(([n, m]) => [m, n]));
    expect(order.map((m) => name.get(m))).toEqual(['a.x', 'a.y', 'a', 'b', '']);
  });

  it('Sequential.from builds 200,000 layers (spreading them into the constructor would overflow)', () => {
    const layers = Array.from({ length: 200_000 }, () => new nn.Identity());
    const seq = nn.Sequential.from(layers);
    expect(seq.length).toBe(200_000);
    expect([...seq.namedChildren()][199_999][0]).toBe('199999');
  });
});
