import { readFileSync } from 'node:fs';
import { CheckpointError } from '@cg/cyclegan';
import { expect } from 'vitest';
import { type StateDict, writeZip } from '../../src/checkpoint/index.js';

export const FIXTURES = new URL('../../../../test/fixtures/pth/', import.meta.url);

export function fixture(name: string): Uint8Array {
  return new Uint8Array(readFileSync(new URL(name, FIXTURES)));
}

export interface ExpectedKey {
  name: string;
  dtype: string;
  shape: number[];
  sum: number;
  checksum: number;
  head: number[];
}

export interface ExpectedFile {
  format: 'zip' | 'legacy' | 'safetensors';
  keys: ExpectedKey[];
}

export function expected(): { torch: string; files: Record<string, ExpectedFile> } {
  return JSON.parse(readFileSync(new URL('expected.json', FIXTURES), 'utf8'));
}

/** Compare a state dict with what the generating Python script recorded. */
export function expectMatches(sd: StateDict, want: ExpectedKey[]): void {
  expect([...sd.keys()]).toEqual(want.map((k) => k.name));
  for (const k of want) {
    const t = sd.get(k.name)!;
    expect(t.dtype, k.name).toBe(k.dtype);
    expect(t.shape, k.name).toEqual(k.shape);
    let sum = 0;
    let checksum = 0;
    let abs = 0;
    t.data.forEach((v, i) => {
      sum += v;
      checksum += v * ((i % 13) + 1);
      abs += Math.abs(v) * ((i % 13) + 1);
    });
    const tol = 1e-9 * (1 + abs);
    expect(Math.abs(sum - k.sum), `${k.name} sum`).toBeLessThanOrEqual(tol);
    expect(Math.abs(checksum - k.checksum), `${k.name} checksum`).toBeLessThanOrEqual(tol);
    expect([...t.data.subarray(0, k.head.length)], `${k.name} head`).toEqual(k.head);
  }
}

/** Run `fn`; it must either return or throw a CheckpointError. Returns the error, if any. */
export function checkpointErrorOrValue(fn: () => unknown): CheckpointError | undefined {
  try {
    fn();
    return undefined;
  } catch (e) {
    if (!(e instanceof CheckpointError)) throw new Error(`expected a CheckpointError, got ${String(e)}`, { cause: e });
    return e;
  }
}

export function concat(...parts: (Uint8Array | number[] | string)[]): Uint8Array {
  const arrays = parts.map((p) => (typeof p === 'string' ? new TextEncoder().encode(p) : Uint8Array.from(p)));
  const out = new Uint8Array(arrays.reduce((s, a) => s + a.length, 0));
  let o = 0;
  for (const a of arrays) {
    out.set(a, o);
    o += a.length;
  }
  return out;
}

const le32 = (v: number): number[] => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
export const le64 = (v: number): number[] => [...le32(v % 2 ** 32), ...le32(Math.floor(v / 2 ** 32))];

/** Hand-assembled pickle opcodes, for files torch would never write. */
export const op = {
  proto: (n = 2) => [0x80, n],
  str: (s: string) => {
    const b = new TextEncoder().encode(s);
    return [0x58, ...le32(b.length), ...b];
  },
  int: (v: number) => (Math.abs(v) < 2 ** 31 ? [0x4a, ...le32(v >>> 0)] : [0x8a, 8, ...le64(v)]),
  global: (module: string, name: string) => [0x63, ...new TextEncoder().encode(`${module}\n${name}\n`)],
  mark: [0x28],
  tuple: [0x74],
  emptyTuple: [0x29],
  emptyDict: [0x7d],
  none: [0x4e],
  true: [0x88],
  false: [0x89],
  reduce: [0x52],
  binpersid: [0x51],
  setitem: [0x73],
  setitems: [0x75],
  stop: [0x2e],
};

/** The pickles that open every legacy torch.save file. */
export function legacyHeader(littleEndian = true): Uint8Array {
  return concat(
    [0x80, 2, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e], // magic
    [0x80, 2, 0x4d, 0xe9, 0x03, 0x2e], // 1001
    [...op.proto(), ...op.emptyDict, ...op.str('little_endian'), ...(littleEndian ? op.true : op.false)],
    [...op.setitem, ...op.stop],
  );
}

/** `_rebuild_tensor_v2(('storage', cls, key, 'cpu', numel[, view]), offset, size, stride, False, None)`. */
export function tensorOps(
  cls: string,
  key: string,
  numel: number,
  offset: number,
  size: number[],
  stride: number[],
  /** undefined: zip-format pid (5 fields); null or [offset, size]: legacy pid (6 fields). */
  legacyView?: number[] | null,
): number[] {
  const tup = (xs: number[]) => [...op.mark, ...xs.flatMap(op.int), ...op.tuple];
  return [
    ...op.global('torch._utils', '_rebuild_tensor_v2'),
    ...op.mark,
    ...op.mark,
    ...op.str('storage'),
    ...op.global('torch', cls),
    ...op.str(key),
    ...op.str('cpu'),
    ...op.int(numel),
    ...(legacyView === undefined
      ? []
      : legacyView === null
        ? op.none
        : [...op.mark, ...op.str(`${key}v`), ...op.int(legacyView[0]), ...op.int(legacyView[1]), ...op.tuple]),
    ...op.tuple,
    ...op.binpersid,
    ...op.int(offset),
    ...tup(size),
    ...tup(stride),
    ...op.false,
    ...op.none,
    ...op.tuple,
    ...op.reduce,
  ];
}

/** A legacy torch.save file for `{name: tensor}` over storages given as raw bytes. */
export function legacyFile(
  entries: { name: string; ops: number[] }[],
  storages: { key: string; count: number; bytes: Uint8Array }[],
  littleEndian = true,
): Uint8Array {
  const obj = [...op.proto(), ...op.emptyDict, ...op.mark];
  for (const e of entries) obj.push(...op.str(e.name), ...e.ops);
  obj.push(...op.setitems, ...op.stop);
  const keys = [...op.proto(), ...op.mark, ...storages.flatMap((s) => op.str(s.key)), 0x6c, ...op.stop];
  return concat(legacyHeader(littleEndian), obj, keys, ...storages.flatMap((s) => [le64(s.count), s.bytes]));
}

/** A zip-format checkpoint around a hand-made data.pkl. */
export function zipPth(pkl: Uint8Array | number[], storages: Record<string, Uint8Array> = {}): Uint8Array {
  return writeZip([
    { name: 'archive/data.pkl', data: Uint8Array.from(pkl) },
    ...Object.entries(storages).map(([k, data]) => ({ name: `archive/data/${k}`, data })),
    { name: 'archive/version', data: new TextEncoder().encode('3\n') },
  ]);
}

/** `{name: <tensor ops>}` as a protocol-2 pickle. */
export function dictPickle(entries: [string, number[]][]): number[] {
  return [
    ...op.proto(),
    ...op.emptyDict,
    ...op.mark,
    ...entries.flatMap(([k, v]) => [...op.str(k), ...v]),
    ...op.setitems,
    ...op.stop,
  ];
}

export function f32bytes(values: number[]): Uint8Array {
  return new Uint8Array(Float32Array.from(values).buffer);
}

/** Deterministic PRNG (mulberry32) so fuzz failures reproduce. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
