import { CheckpointError } from '@cg/cyclegan';
import { type Device, Rng } from '@cg/tensor-core';
import { describe, expect, it } from 'vitest';
import { testDevice } from '../../../../test/helpers/device.js';
import {
  assertFiniteWeights,
  type HostTensor,
  readCheckpoint,
  type StateDict,
  writePth,
  writeSafetensors,
} from '../../src/checkpoint/index.js';
import { gatherStrided } from '../../src/checkpoint/strided.js';
import { loadGenerator } from '../../src/generator_io.js';
import { type GeneratorSpec, inferGenerator } from '../../src/infer.js';
import { buildGenerator } from '../../src/networks/define.js';
import { generatorStateNumel } from '../../src/networks/generator_size.js';
import { concat, dictPickle, f32bytes, le64, legacyFile, legacyHeader, op, tensorOps, zipPth } from './helpers.js';

/**
 * Files built to hurt the loader: each must be refused with a one-line
 * CheckpointError naming the file and the key, quickly, and before anything
 * big is allocated or anything reaches the device.
 */

/** A device that must never be used: any access throws a plain Error, which fails the test. */
function untouchableDevice(): Device {
  return new Proxy(
    {},
    {
      get(_target, prop) {
        throw new Error(`the device was used (.${String(prop)}) before the checkpoint was validated`);
      },
    },
  ) as Device;
}

/**
 * Runs `fn`, which must throw a one-line CheckpointError matching `pattern`, fast and without a big allocation.
 * The time budget is several times what the slowest case takes on a quiet 2-core machine (~0.5 s), so a busy
 * CI machine does not fail it; the hostile files it guards against cost tens of seconds before.
 */
function expectRefused(fn: () => unknown, source: string, pattern: RegExp, maxMs = 2500): string {
  const rssBefore = process.memoryUsage().rss;
  const start = performance.now();
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  const ms = performance.now() - start;
  if (!(caught instanceof CheckpointError)) {
    throw new Error(`expected a CheckpointError, got ${String(caught)}`, { cause: caught });
  }
  expect(caught.message).toMatch(pattern);
  // Messages about the pickle inside a zip name it too: `x.pth (archive/data.pkl): …`.
  expect(caught.message.startsWith(`${source}: `) || caught.message.startsWith(`${source} (`), caught.message).toBe(
    true,
  );
  expect(caught.message.includes('\n'), 'one line').toBe(false);
  expect(ms, 'milliseconds').toBeLessThan(maxMs);
  expect(process.memoryUsage().rss - rssBefore, 'rss growth').toBeLessThan(200 * 2 ** 20);
  return caught.message;
}

function tensor(shape: number[], fill = 0.01): HostTensor {
  let n = 1;
  for (const d of shape) n *= d;
  return { dtype: 'float32', shape, data: new Float32Array(n).fill(fill) };
}

/** The official resnet generator keys and shapes with instance norm (convs with bias, no norm state). */
function resnetStateDict(ngf: number, nBlocks: number): StateDict {
  const sd: StateDict = new Map();
  const conv = (i: number | string, shape: number[]) => {
    sd.set(`model.${i}.weight`, tensor(shape));
    sd.set(`model.${i}.bias`, tensor([shape[0]]));
  };
  conv(1, [ngf, 3, 7, 7]);
  conv(4, [ngf * 2, ngf, 3, 3]);
  conv(7, [ngf * 4, ngf * 2, 3, 3]);
  for (let b = 0; b < nBlocks; b++) {
    for (const c of [1, 5]) conv(`${10 + b}.conv_block.${c}`, [ngf * 4, ngf * 4, 3, 3]);
  }
  const up = 10 + nBlocks;
  sd.set(`model.${up}.weight`, tensor([ngf * 4, ngf * 2, 3, 3])); // ConvTranspose2d: [in, out, k, k]
  sd.set(`model.${up}.bias`, tensor([ngf * 2]));
  sd.set(`model.${up + 3}.weight`, tensor([ngf * 2, ngf, 3, 3]));
  sd.set(`model.${up + 3}.bias`, tensor([ngf]));
  conv(up + 7, [3, ngf, 7, 7]);
  return sd;
}

/** A pickled `{key_i: T}` with `count` keys all naming one memoised tensor, so the file stays small. */
function manyKeysPickle(count: number): Uint8Array {
  const enc = new TextEncoder();
  const parts: Uint8Array[] = [
    Uint8Array.from([...op.proto(), ...op.emptyDict, ...op.mark]),
    Uint8Array.from([...op.str('k0'), ...tensorOps('FloatStorage', '0', 1, 0, [1], [1]), 0x71, 0]), // BINPUT 0
  ];
  for (let i = 1; i < count; i++) {
    if (i % 1000 === 0) parts.push(Uint8Array.from([...op.setitems, ...op.mark]));
    const key = enc.encode(`model.${i}.weight`);
    const entry = new Uint8Array(5 + key.length + 2);
    entry[0] = 0x8c; // SHORT_BINUNICODE
    entry[1] = key.length;
    entry.set(key, 2);
    entry.set([0x68, 0], 2 + key.length); // BINGET 0
    parts.push(entry.subarray(0, 4 + key.length));
  }
  parts.push(Uint8Array.from([...op.setitems, ...op.stop]));
  // Not concat(...parts): spreading 150,000 arguments into a call is exactly the overflow under test.
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function safetensorsHeader(json: string, data: Uint8Array = new Uint8Array(0)): Uint8Array {
  const h = new TextEncoder().encode(json);
  return concat(le64(h.length), h, data);
}

describe('1. sizes are checked against the stored bytes before allocation', () => {
  it('a 1 KB .pth whose stride-0 model.1.weight claims [700,3,7,7] is refused while reading', () => {
    const weight = tensorOps('FloatStorage', '0', 1, 0, [700, 3, 7, 7], [0, 0, 0, 0]);
    const bytes = zipPth(dictPickle([['model.1.weight', weight]]), { 0: f32bytes([0.5]) });
    expect(bytes.length).toBeLessThan(1100);
    expectRefused(
      () => loadGenerator(untouchableDevice(), readCheckpoint(bytes, 'tiny.pth'), { source: 'tiny.pth' }),
      'tiny.pth',
      /tensor 'model\.1\.weight': .*claims 102900 elements from a 1-element storage.*torch\.save\(model\.state_dict\(\), path\)/,
    );
  });

  it('the same as a legacy file with ngf 500, and a partly strided [500,3,7,7] view', () => {
    const weight = tensorOps('FloatStorage', 'k', 3, 0, [500, 3, 7, 7], [0, 1, 0, 0], null);
    const bytes = legacyFile(
      [{ name: 'model.1.weight', ops: weight }],
      [{ key: 'k', count: 3, bytes: f32bytes([1, 2, 3]) }],
    );
    expectRefused(
      () => readCheckpoint(bytes, 'ngf500.pth'),
      'ngf500.pth',
      /'model\.1\.weight'.*73500 elements from a 3-element storage/,
    );
  });

  it('a small expanded tensor (a broadcast bias) still loads', () => {
    const bias = tensorOps('FloatStorage', '0', 1, 0, [64], [0]);
    const sd = readCheckpoint(zipPth(dictPickle([['bias', bias]]), { 0: f32bytes([0.25]) }), 'bias.pth');
    expect(sd.get('bias')!.data).toEqual(new Float32Array(64).fill(0.25));
  });

  it('gatherStrided itself refuses to blow a tiny storage up', () => {
    expect(() => gatherStrided(Float32Array.of(1), 0, [1e6], [0], 1e6)).toThrow(CheckpointError);
  });

  it('dense weights for ngf 700 without the rest of the network: refused before anything is built', () => {
    const sd: StateDict = new Map([
      ['model.1.weight', tensor([700, 3, 7, 7])],
      ['model.26.weight', tensor([3, 700, 7, 7])],
    ]);
    const bytes = writePth(sd); // 823 KB on disk
    expectRefused(
      () => loadGenerator(untouchableDevice(), readCheckpoint(bytes, 'dense.pth'), { source: 'dense.pth' }),
      'dense.pth',
      /refusing to build resnet_0blocks ngf=700.*88\d{6} weight values but the file stores only 205800/,
    );
  });

  it('an architecture whose weights exceed the 2 GiB budget (resnet_9blocks with ngf 700: 5.1 GiB)', () => {
    const sd: StateDict = new Map([['model.1.weight', tensor([700, 3, 7, 7])]]);
    for (let b = 10; b < 19; b++) sd.set(`model.${b}.conv_block.1.weight`, tensor([1]));
    sd.set('model.26.weight', tensor([3, 700, 7, 7]));
    expectRefused(
      () => loadGenerator(untouchableDevice(), sd, { source: 'budget.pth' }),
      'budget.pth',
      /refusing to build resnet_9blocks ngf=700.*weights would take 5\.1 GiB, above the 2\.0 GiB limit/,
    );
  });

  it('ngf, block count, U-Net depth and channels out of bounds', () => {
    const wide: StateDict = new Map([
      ['model.1.weight', tensor([2000, 3, 7, 7])],
      ['model.26.weight', tensor([3, 2000, 7, 7])],
    ]);
    expectRefused(
      () => loadGenerator(untouchableDevice(), wide, { source: 'wide.pth' }),
      'wide.pth',
      /ngf=2000.*ngf must be 1 to 1024/,
    );
    const channels: StateDict = new Map([
      ['model.1.weight', tensor([4, 5000, 7, 7])],
      ['model.26.weight', tensor([3, 4, 7, 7])],
    ]);
    expectRefused(
      () => loadGenerator(untouchableDevice(), channels, { source: 'ch.pth' }),
      'ch.pth',
      /image channels must be 1 to 64/,
    );
    expectRefused(
      () => loadGenerator(untouchableDevice(), resnetStateDict(1, 100), { source: 'blocks.pth' }),
      'blocks.pth',
      /resnet_100blocks.*at most 64 blocks/,
    );
    const override = () =>
      loadGenerator(untouchableDevice(), resnetStateDict(1, 1), { source: 'o.pth', netG: 'unet_40downs' });
    expectRefused(override, 'o.pth', /unet_40downs.*a U-Net has 5 to 16 downsamplings/);
  });

  it('a well-formed checkpoint passes every host check and only then reaches the device', () => {
    const sd = resnetStateDict(2, 2);
    let n = 0;
    for (const t of sd.values()) n += t.data.length;
    expect(generatorStateNumel(inferGenerator(sd))).toBe(n);
    expect(() => loadGenerator(untouchableDevice(), sd)).toThrow(/the device was used/);
  });
});

describe('2. huge key lists and deep keys fail fast instead of overflowing the stack', () => {
  it('150,000 keys in memory', () => {
    const sd: StateDict = new Map([['model.1.weight', tensor([4, 3, 7, 7])]]);
    const t = tensor([1]);
    for (let i = 0; i < 150_000; i++) sd.set(`model.${i + 2}.weight`, t);
    expectRefused(
      () => loadGenerator(untouchableDevice(), sd, { source: 'keys.pth' }),
      'keys.pth',
      /150001 keys are far more than a CycleGAN generator has \(at most 4096\).*latest_net_G_A\.pth/,
    );
  });

  it('100,000 resnet blocks in memory', () => {
    const sd: StateDict = new Map([['model.1.weight', tensor([4, 3, 7, 7])]]);
    const t = tensor([1]);
    for (let b = 0; b < 100_000; b++) sd.set(`model.${10 + b}.conv_block.1.weight`, t);
    expectRefused(() => loadGenerator(untouchableDevice(), sd, { source: 'blocks.pth' }), 'blocks.pth', /100001 keys/);
    expectRefused(() => inferGenerator(sd, 'blocks.pth'), 'blocks.pth', /100001 keys/);
  });

  it('a 20,000-deep U-Net key', () => {
    const sd: StateDict = new Map([
      ['model.model.0.weight', tensor([4, 3, 4, 4])],
      ['model.model.3.weight', tensor([8, 3, 4, 4])],
      [`${'model.'.repeat(20_000)}weight`, tensor([1])],
    ]);
    expect(inferGenerator(sd, 'deep.pth').num_downs).toBe(19_999);
    expectRefused(
      () => loadGenerator(untouchableDevice(), sd, { source: 'deep.pth' }),
      'deep.pth',
      /unet_19999downs.*a U-Net has 5 to 16 downsamplings/,
    );
  });

  it('a .pth whose dict has 150,000 keys is refused while unpickling', () => {
    const bytes = zipPth(manyKeysPickle(150_000), { 0: f32bytes([1]) });
    expectRefused(
      () => readCheckpoint(bytes, 'keys.pth'),
      'keys.pth',
      /keys\.pth \(archive\/data\.pkl\): bad pickle data at byte \d+: a dict with more than 100000 entries/,
    );
  });

  it('a zip with 150,000 entries is refused from its end record', () => {
    const sd: StateDict = new Map();
    const t = tensor([1]);
    for (let i = 0; i < 150_000; i++) sd.set(`k${i}`, t);
    const bytes = writePth(sd);
    expectRefused(
      () => readCheckpoint(bytes, 'entries.pth'),
      'entries.pth',
      /150003 entries are more than a torch\.save checkpoint has/,
    );
  });

  it('a safetensors header with 150,000 tensors', () => {
    const sd: StateDict = new Map();
    const t: HostTensor = { dtype: 'uint8', shape: [0], data: new Float32Array(0) };
    for (let i = 0; i < 150_000; i++) sd.set(`k${i}`, t);
    const bytes = writeSafetensors(sd);
    expectRefused(
      () => readCheckpoint(bytes, 'keys.safetensors'),
      'keys.safetensors',
      /header refused at byte \d+: an object has more than 100001 keys/,
    );
  });
});

describe('3. NaN and Inf weights are refused, naming the key', () => {
  it('NaN in a block weight, Inf in a bias', () => {
    const sd = resnetStateDict(2, 2);
    sd.get('model.11.conv_block.5.weight')!.data[7] = Number.NaN;
    sd.get('model.19.bias')!.data[0] = Number.NEGATIVE_INFINITY;
    expectRefused(
      () => loadGenerator(untouchableDevice(), sd, { source: 'nan.pth' }),
      'nan.pth',
      /tensor 'model\.11\.conv_block\.5\.weight' holds NaN at element 7 \(and 1 more tensors\).*earlier or re-downloaded checkpoint/,
    );
    sd.get('model.11.conv_block.5.weight')!.data[7] = 0;
    expectRefused(
      () => loadGenerator(untouchableDevice(), sd, { source: 'inf.pth' }),
      'inf.pth',
      /'model\.19\.bias' holds -Infinity/,
    );
  });

  it('NaN survives the file formats and is caught after reading', () => {
    const sd: StateDict = new Map([['w', { dtype: 'float16', shape: [2], data: Float32Array.of(1, Number.NaN) }]]);
    const read = readCheckpoint(writeSafetensors(sd), 'half.safetensors');
    expect(() => assertFiniteWeights(read, 'half.safetensors')).toThrow(
      /^half\.safetensors: tensor 'w' holds NaN at element 1/,
    );
  });

  it('checks a 45 MB generator quickly', () => {
    const sd: StateDict = new Map([['model.1.weight', tensor([11_378_179])]]);
    const start = performance.now();
    assertFiniteWeights(sd, 'big.pth');
    expect(performance.now() - start).toBeLessThan(300);
  });
});

describe('4. broken safetensors headers say what is wrong', () => {
  const f32 = (name: string, offsets: [number, number], shape = [1]) =>
    `${JSON.stringify(name)}:{"dtype":"F32","shape":${JSON.stringify(shape)},"data_offsets":${JSON.stringify(offsets)}}`;
  const cases: [string, Uint8Array, RegExp][] = [
    [
      'header length beyond the file',
      concat(le64(5000), '{"a":{"dtype":"F32"'),
      /header length 5000 is larger than the 19 bytes after it/,
    ],
    [
      'header length far beyond any file',
      concat(le64(2 ** 36), '{}'),
      /header length 68719476736 exceeds the 100000000-byte limit/,
    ],
    [
      'invalid JSON',
      safetensorsHeader('{"a":{"dtype":"F32",}}'),
      /not valid UTF-8 JSON: at byte 28, expected a quoted key, found "}"/,
    ],
    ['truncated JSON', safetensorsHeader('{"a":{"dtype":"F3'), /at byte 22, unterminated string/],
    ['trailing data after the JSON', safetensorsHeader('{} x'), /at byte 11, unexpected "x" after the end of the JSON/],
    ['invalid UTF-8', concat(le64(4), [0x7b, 0xff, 0xfe, 0x7d]), /bytes 8 to 12 are not UTF-8 text/],
    [
      'deep nesting',
      safetensorsHeader(`{"a":${'['.repeat(100_000)}`),
      /header refused at byte 20: nested deeper than 8 levels/,
    ],
    [
      'duplicate tensor key',
      safetensorsHeader(`{${f32('w', [0, 4])},${f32('w', [4, 8])}}`, new Uint8Array(8)),
      /duplicate key "w"/,
    ],
    [
      'duplicate key spelled with an escape',
      safetensorsHeader(
        `{${f32('w', [0, 4])},${f32('\\u0077', [4, 8]).replace('"\\\\u0077"', '"\\u0077"')}}`,
        new Uint8Array(8),
      ),
      /duplicate key "w"/,
    ],
    [
      'duplicate field inside an entry',
      safetensorsHeader(
        '{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"data_offsets":[0,8]}}',
        new Uint8Array(8),
      ),
      /duplicate key "data_offsets"/,
    ],
    [
      'data_offsets outside the data',
      safetensorsHeader(`{${f32('w', [0, 8], [2])}}`, new Uint8Array(4)),
      /tensor 'w': data_offsets \[0, 8\] are outside the 4-byte data section/,
    ],
    [
      'overlapping tensors',
      safetensorsHeader(`{${f32('a', [0, 4])},${f32('b', [2, 6])}}`, new Uint8Array(8)),
      /tensors 'a' and 'b' overlap in the data section \(bytes \[0, 4\) and \[2, 6\)\)/,
    ],
    [
      'unknown dtype',
      safetensorsHeader('{"w":{"dtype":"F8_E4M3","shape":[1],"data_offsets":[0,1]}}', new Uint8Array(1)),
      /tensor 'w': dtype "F8_E4M3" is not supported/,
    ],
    [
      'shape × dtype ≠ bytes',
      safetensorsHeader(`{${f32('w', [0, 4], [3])}}`, new Uint8Array(4)),
      /tensor 'w': shape \[3\] of F32 needs 12 bytes but data_offsets span 4/,
    ],
    [
      'a huge shape',
      safetensorsHeader(`{${f32('w', [0, 4], [2 ** 40, 2 ** 40])}}`, new Uint8Array(4)),
      /needs 2\^82 bytes/,
    ],
  ];
  for (const [what, bytes, pattern] of cases) {
    it(what, () => {
      const message = expectRefused(() => readCheckpoint(bytes, 'bad.safetensors'), 'bad.safetensors', pattern);
      expect(message).not.toMatch(/unrecognised checkpoint format/);
    });
  }

  it('a key named __proto__ is just a tensor name', () => {
    const sd = readCheckpoint(safetensorsHeader(`{${f32('__proto__', [0, 4])}}`, f32bytes([2])), 'proto.safetensors');
    expect([...sd.keys()]).toEqual(['__proto__']);
    expect(sd.get('__proto__')!.data).toEqual(Float32Array.of(2));
  });

  it('a header of millions of tiny values is refused once past the value budget', () => {
    const bytes = safetensorsHeader(
      `{"__metadata__":{"a":"${'x'.repeat(10)}"},"w":{"extra":[${'0,'.repeat(5_000_000)}0]}}`,
    );
    expectRefused(() => readCheckpoint(bytes, 'many.safetensors'), 'many.safetensors', /more than 3200032 values/);
  });

  it('a 10 MB string in the header is read without trouble', () => {
    const bytes = safetensorsHeader(`{"__metadata__":{"note":"${'x'.repeat(10_000_000)}"}}`);
    const start = performance.now();
    expect(readCheckpoint(bytes, 'long.safetensors').size).toBe(0);
    expect(performance.now() - start).toBeLessThan(2500);
  });
});

describe('4. duplicate keys in .pth state dicts', () => {
  const w = (v: number) => tensorOps('FloatStorage', String(v), 1, 0, [1], [1]);
  it('zip format', () => {
    const bytes = zipPth(
      dictPickle([
        ['model.1.weight', w(0)],
        ['model.1.weight', w(1)],
      ]),
      {
        0: f32bytes([1]),
        1: f32bytes([2]),
      },
    );
    expectRefused(
      () => readCheckpoint(bytes, 'dup.pth'),
      'dup.pth',
      /dict key 'model\.1\.weight' appears twice, which torch\.save never writes/,
    );
  });

  it('legacy format, keys set one at a time', () => {
    const t = (k: string) => tensorOps('FloatStorage', k, 1, 0, [1], [1], null);
    const obj = [
      ...op.proto(),
      ...op.emptyDict,
      ...op.str('w'),
      ...t('a'),
      ...op.setitem,
      ...op.str('w'),
      ...t('b'),
      ...op.setitem,
      ...op.stop,
    ];
    const keys = [...op.proto(), ...op.mark, ...op.str('a'), ...op.str('b'), 0x6c, ...op.stop];
    const bytes = concat(legacyHeader(), obj, keys, le64(1), f32bytes([1]), le64(1), f32bytes([2]));
    expectRefused(() => readCheckpoint(bytes, 'dup_legacy.pth'), 'dup_legacy.pth', /dict key 'w' appears twice/);
  });
});

describe('the size check counts what the builders build', () => {
  it('generatorStateNumel equals the built network for resnet and U-Net variants', async () => {
    const device = await testDevice();
    const specs: GeneratorSpec[] = [];
    for (const norm of ['batch', 'instance', 'none'] as const) {
      for (const use_dropout of [false, true]) {
        for (const n_blocks of [0, 2]) {
          specs.push({ kind: 'resnet', input_nc: 3, output_nc: 1, ngf: 3, norm, use_dropout, n_blocks });
        }
        for (const num_downs of [5, 7]) {
          specs.push({ kind: 'unet', input_nc: 1, output_nc: 3, ngf: 2, norm, use_dropout, num_downs });
        }
      }
    }
    for (const spec of specs) {
      const net = buildGenerator(spec, { device, rng: new Rng(0) });
      let n = 0;
      for (const t of net.stateDict().values()) n += t.size;
      net.dispose();
      expect(generatorStateNumel(spec), JSON.stringify(spec)).toBe(n);
    }
  });
});
