import { CheckpointError } from '@cg/cyclegan';
import { describe, expect, it } from 'vitest';
import { readCheckpoint, readPth, readZip, writePth, writeZip } from '../../src/checkpoint/index.js';
import {
  checkpointErrorOrValue,
  concat,
  dictPickle,
  f32bytes,
  fixture,
  le64,
  legacyFile,
  legacyHeader,
  op,
  rng,
  tensorOps,
  zipPth,
} from './helpers.js';

describe('refuses code and unknown globals', () => {
  const evil: [string, number[]][] = [
    ['os.system', [...op.global('os', 'system'), ...op.str('echo pwned'), 0x85, ...op.reduce]],
    ['builtins.eval', [...op.global('builtins', 'eval'), ...op.str('1+1'), 0x85, ...op.reduce]],
    ['posix.system', [...op.global('posix', 'system'), ...op.str('id'), 0x85, ...op.reduce]],
    // STACK_GLOBAL spells the same thing with strings on the stack.
    [
      'builtins.exec',
      [0x8c, 8, ...new TextEncoder().encode('builtins'), 0x8c, 4, ...new TextEncoder().encode('exec'), 0x93],
    ],
    // Allowed by torch's own unpickler but it runs pickle recursively: not here.
    ['torch.storage._load_from_bytes', op.global('torch.storage', '_load_from_bytes')],
    ['numpy.core.multiarray._reconstruct', op.global('numpy.core.multiarray', '_reconstruct')],
  ];
  for (const [name, ops] of evil) {
    it(`${name} in a zip checkpoint`, () => {
      const bytes = zipPth([...op.proto(4), ...ops, ...op.stop]);
      expect(() => readCheckpoint(bytes, 'evil.pth')).toThrow(CheckpointError);
      expect(() => readCheckpoint(bytes, 'evil.pth')).toThrow(
        new RegExp(
          `^evil\\.pth.*refusing to load global ${name.replace(/\./g, '\\.')}: checkpoints may only contain tensors`,
        ),
      );
    });
  }

  it('os.system in a legacy checkpoint', () => {
    const bytes = concat(
      legacyHeader(),
      op.proto(),
      op.global('os', 'system'),
      op.str('id'),
      [0x85],
      op.reduce,
      op.stop,
    );
    expect(() => readCheckpoint(bytes, 'evil_legacy.pth')).toThrow(/refusing to load global os\.system/);
  });

  it('a whole pickled nn.Module (legacy "module" persistent id)', () => {
    const pid = [
      ...op.mark,
      ...op.str('module'),
      ...op.none,
      ...op.str('f.py'),
      ...op.str('src'),
      ...op.tuple,
      ...op.binpersid,
    ];
    const bytes = concat(legacyHeader(), op.proto(), pid, op.stop);
    expect(() => readCheckpoint(bytes, 'model.pth')).toThrow(/whole pickled nn\.Module.*model\.state_dict\(\)/);
  });

  it('allowed functions with wrong arguments', () => {
    const badArgs = [
      ...op.global('torch._utils', '_rebuild_tensor_v2'),
      ...op.mark,
      ...op.str('x'),
      ...op.int(0),
      ...op.tuple,
      ...op.reduce,
    ];
    expect(() => readPth(zipPth(dictPickle([['w', badArgs]])), 'args.pth')).toThrow(/got 2 arguments, expected 6–7/);
    const notTensor = dictPickle([['w', op.str('hello')]]);
    expect(() => readPth(zipPth(notTensor), 'str.pth')).toThrow(/entry 'w' is a str, not a tensor/);
  });
});

describe('rejects broken files with a CheckpointError naming the file', () => {
  it('0-byte, text, Git LFS, HTML and unknown binary files', () => {
    const enc = (s: string) => new TextEncoder().encode(s);
    expect(() => readCheckpoint(new Uint8Array(0), 'empty.pth')).toThrow(/^empty\.pth: the file is empty \(0 bytes\)/);
    expect(() => readCheckpoint(enc('hello world\n'), 'notes.pth')).toThrow(/notes\.pth: this is a text file/);
    expect(() =>
      readCheckpoint(enc('version https://git-lfs.github.com/spec/v1\noid sha256:abc\n'), 'lfs.pth'),
    ).toThrow(/Git LFS pointer.*git lfs pull/);
    expect(() => readCheckpoint(enc('<!DOCTYPE html><html>'), 'page.pth')).toThrow(/HTML page/);
    expect(() => readCheckpoint(Uint8Array.of(1, 2, 3, 0xff, 0xfe, 0, 9, 9, 9), 'blob.bin')).toThrow(
      /unrecognised checkpoint format \(first bytes 01 02 03 ff fe 00 09 09\)/,
    );
  });

  it('a pickle with the wrong magic number', () => {
    const bytes = fixture('dtypes_legacy.pth').slice();
    bytes[4] ^= 1; // inside the LONG1 magic
    expect(() => readCheckpoint(bytes, 'magic.pth')).toThrow(/magic\.pth: .*not with torch's magic number/);
  });

  it('a zip checkpoint with a missing storage entry', () => {
    const full = readZip(writePth(readPth(fixture('proto4_zip.pth'), 'x')), 'x');
    const partial = writeZip([...full].filter(([n]) => n !== 'archive/data/1').map(([name, data]) => ({ name, data })));
    expect(() => readPth(partial, 'partial.pth')).toThrow(
      /partial\.pth: tensor 'conv\.bias': its storage data is missing \(zip entry 'archive\/data\/1' not found\)/,
    );
  });

  it('a zip that is not a torch checkpoint', () => {
    const other = writeZip([{ name: 'readme.txt', data: new Uint8Array(3) }]);
    expect(() => readCheckpoint(other, 'other.zip')).toThrow(/no '<name>\/data\.pkl' entry.*readme\.txt/);
  });

  it('legacy storage with 2^40 elements fails fast', () => {
    const t = tensorOps('FloatStorage', 'k', 2 ** 40, 0, [2 ** 20, 2 ** 20], [2 ** 20, 1], null);
    const bytes = legacyFile([{ name: 'w', ops: t }], [{ key: 'k', count: 2 ** 40, bytes: new Uint8Array(16) }]);
    const start = performance.now();
    expect(() => readCheckpoint(bytes, 'huge.pth')).toThrow(/huge\.pth: storage 'k' needs 4398046511104 bytes/);
    expect(performance.now() - start).toBeLessThan(200);
  });

  it('legacy element count that disagrees with the pickle', () => {
    const t = tensorOps('FloatStorage', 'k', 4, 0, [4], [1], null);
    const bytes = legacyFile([{ name: 'w', ops: t }], [{ key: 'k', count: 3, bytes: f32bytes([1, 2, 3]) }]);
    expect(() => readCheckpoint(bytes, 'count.pth')).toThrow(/holds 3 elements but the pickle declared 4/);
  });

  it('a tensor view outside its storage, and a huge broadcast view', () => {
    const outside = tensorOps('FloatStorage', '0', 4, 2, [2, 2], [2, 1]);
    expect(() => readPth(zipPth(dictPickle([['w', outside]]), { 0: f32bytes([1, 2, 3, 4]) }), 'view.pth')).toThrow(
      /tensor 'w': view \(offset 2, shape \[2,2\], stride \[2,1\]\) reaches element 5 of a 4-element storage/,
    );
    const broadcast = tensorOps('FloatStorage', '0', 1, 0, [2 ** 20, 2 ** 20], [0, 0]);
    expect(() => readPth(zipPth(dictPickle([['w', broadcast]]), { 0: f32bytes([1]) }), 'bcast.pth')).toThrow(
      /more elements than this file could plausibly hold/,
    );
    const short = tensorOps('FloatStorage', '0', 8, 0, [8], [1]);
    expect(() => readPth(zipPth(dictPickle([['w', short]]), { 0: f32bytes([1]) }), 'short.pth')).toThrow(
      /storage '0' declares 8 float32 elements but holds only 4 bytes/,
    );
  });

  it('a zip entry whose declared size exceeds the file', () => {
    const bytes = writePth(readPth(fixture('proto4_zip.pth'), 'x'));
    const dv = new DataView(bytes.buffer);
    for (let p = 0; p < bytes.length - 4; p++) {
      if (dv.getUint32(p, true) === 0x02014b50) {
        dv.setUint32(p + 20, 0xfffffff0, true);
        dv.setUint32(p + 24, 0xfffffff0, true);
        break;
      }
    }
    expect(() => readPth(bytes, 'size.pth')).toThrow(/size\.pth: corrupt zip archive: data of 'archive\/data\.pkl'/);
  });
});

describe('legacy format corners torch 1.x no longer writes', () => {
  it('storage views from pre-1.0 torch (view_metadata)', () => {
    // Root storage of 6 floats; view = elements [2, 5); tensor = view[1:3].
    const t = tensorOps('FloatStorage', 'root', 6, 1, [2], [1], [2, 3]);
    const bytes = legacyFile([{ name: 'w', ops: t }], [{ key: 'root', count: 6, bytes: f32bytes([0, 1, 2, 3, 4, 5]) }]);
    expect(readCheckpoint(bytes, 'view.pth').get('w')).toEqual({
      dtype: 'float32',
      shape: [2],
      data: Float32Array.of(3, 4),
    });
  });

  it('big-endian files (sys_info little_endian=False)', () => {
    const be = new Uint8Array(8);
    new DataView(be.buffer).setFloat32(0, 1.5, false);
    new DataView(be.buffer).setFloat32(4, -2, false);
    const t = tensorOps('FloatStorage', 'k', 2, 0, [2], [1], null);
    const bytes = legacyFile([{ name: 'w', ops: t }], [{ key: 'k', count: 2, bytes: be }], false);
    expect(readCheckpoint(bytes, 'be.pth').get('w')!.data).toEqual(Float32Array.of(1.5, -2));
  });

  it('a storage listed but never used is corruption', () => {
    const t = tensorOps('FloatStorage', 'k', 1, 0, [1], [1], null);
    const bytes = legacyFile(
      [{ name: 'w', ops: t }],
      [
        { key: 'k', count: 1, bytes: f32bytes([1]) },
        { key: 'ghost', count: 1, bytes: f32bytes([1]) },
      ],
    );
    expect(() => readCheckpoint(bytes, 'ghost.pth')).toThrow(/storage 'ghost' is listed but no tensor uses it/);
  });
});

describe('truncation and fuzzing', () => {
  const small = ['dtypes_legacy.pth', 'proto4_zip.pth', 'proto4_legacy.pth', 'written_by_ts.pth', 'dtypes.safetensors'];

  it('every proper prefix of a small file fails with a CheckpointError', () => {
    for (const name of small) {
      const bytes = fixture(name);
      for (let n = 0; n < bytes.length; n++) {
        const err = checkpointErrorOrValue(() => readCheckpoint(bytes.subarray(0, n), name));
        if (!err) throw new Error(`${name}: the ${n}-byte prefix loaded as if complete`);
        expect(err.message.startsWith(name)).toBe(true);
      }
    }
  });

  it('300 seeded random corruptions return or throw CheckpointError, quickly', () => {
    const next = rng(1234);
    const bases = [...small, 'wrapped_zip.pth'].map((n) => [n, fixture(n)] as const);
    let errors = 0;
    let slowest = 0;
    for (let i = 0; i < 300; i++) {
      const [name, base] = bases[i % bases.length];
      const bytes = base.slice();
      const flips = 1 + Math.floor(next() * 4);
      for (let f = 0; f < flips; f++) {
        const at = Math.floor(next() * bytes.length);
        bytes[at] = next() < 0.5 ? bytes[at] ^ (1 << Math.floor(next() * 8)) : Math.floor(next() * 256);
      }
      const start = performance.now();
      if (checkpointErrorOrValue(() => readCheckpoint(bytes, name))) errors++;
      slowest = Math.max(slowest, performance.now() - start);
    }
    expect(errors).toBeGreaterThan(50);
    expect(slowest).toBeLessThan(2000);
  });

  it('still reads a file with trailing garbage after a legacy checkpoint', () => {
    const bytes = concat(fixture('proto4_legacy.pth'), le64(12345));
    expect(readCheckpoint(bytes, 'trailing.pth')).toEqual(readCheckpoint(fixture('proto4_legacy.pth'), 'ok.pth'));
  });
});
