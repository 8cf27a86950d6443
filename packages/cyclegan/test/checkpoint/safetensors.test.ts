import { CheckpointError } from '@cg/cyclegan';
import { describe, expect, it } from 'vitest';
import {
  type DType,
  readCheckpoint,
  readSafetensors,
  type StateDict,
  writeSafetensors,
} from '../../src/checkpoint/index.js';
import { concat, fixture, le64 } from './helpers.js';

function allDtypes(): StateDict {
  const t = (dtype: DType, shape: number[], data: number[]) => ({ dtype, shape, data: Float32Array.from(data) });
  return new Map([
    ['model.1.weight', t('float32', [2, 3], [0.5, -1.25, 3e-8, 1e30, -0, 7])],
    ['f16', t('float16', [4], [1, -2.5, 65504, 2 ** -24])],
    ['bf16', t('bfloat16', [2], [1.5, -256])],
    ['f64', t('float64', [2], [Math.fround(0.1), -3])],
    ['bn.num_batches_tracked', t('int64', [], [12345])],
    ['i32', t('int32', [3], [-(2 ** 31), 0, 2 ** 31 - 1])],
    ['i16', t('int16', [1], [-300])],
    ['i8', t('int8', [2], [-128, 127])],
    ['u8', t('uint8', [2], [0, 255])],
    ['flag', t('bool', [3], [1, 0, 1])],
    ['0', t('float32', [1], [9])], // an integer-like name, which JSON objects would reorder
    ['empty', t('float32', [0], [])],
  ]);
}

function header(json: string, data: Uint8Array = new Uint8Array(0)): Uint8Array {
  const h = new TextEncoder().encode(json);
  return concat(le64(h.length), h, data);
}

describe('safetensors', () => {
  it('round-trips every dtype, key order and metadata', () => {
    const sd = allDtypes();
    const bytes = writeSafetensors(sd, { format: 'pt' });
    expect(readSafetensors(bytes, 'mem.safetensors')).toEqual(sd);
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect(n % 8).toBe(0);
    const json = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
    expect(json.__metadata__).toEqual({ format: 'pt' });
    expect(json['model.1.weight']).toEqual({ dtype: 'F32', shape: [2, 3], data_offsets: [0, 24] });
    expect(json['bn.num_batches_tracked'].dtype).toBe('I64');
  });

  it('re-writes the python-written fixture to an equivalent file', () => {
    const sd = readSafetensors(fixture('dtypes.safetensors'), 'dtypes.safetensors');
    expect(readSafetensors(writeSafetensors(sd))).toEqual(sd);
  });

  it('is recognised by readCheckpoint even when its header length starts with the bytes 80 02 of a pickle', () => {
    const sd: StateDict = new Map([...allDtypes()].slice(0, 3));
    for (let pad = 0; pad < 700; pad++) {
      const bytes = writeSafetensors(sd, { pad: 'x'.repeat(pad) });
      if (bytes[0] === 0x80 && bytes[1] === 0x02) {
        expect(readCheckpoint(bytes, 'pickle-like.safetensors')).toEqual(sd);
        return;
      }
    }
    throw new Error('no padding produced a 640-byte header');
  });

  it('rounds float16 and bfloat16 to nearest even like torch', () => {
    const sd: StateDict = new Map([
      [
        'h',
        {
          dtype: 'float16',
          shape: [5],
          data: Float32Array.of(1 + 2 ** -11, 1 + 3 * 2 ** -11, 70000, 2 ** -25, 2 ** -26),
        },
      ],
      ['b', { dtype: 'bfloat16', shape: [2], data: Float32Array.of(1 + 2 ** -8, 1 + 3 * 2 ** -8) }],
    ]);
    const back = readSafetensors(writeSafetensors(sd));
    expect([...back.get('h')!.data]).toEqual([1, 1 + 2 ** -9, Number.POSITIVE_INFINITY, 0, 0]);
    expect([...back.get('b')!.data]).toEqual([1, 1 + 2 ** -6]);
  });

  const cases: [string, Uint8Array, RegExp][] = [
    ['too short', new Uint8Array(5), /too short/],
    ['huge header length', concat(le64(2 ** 60), '{}'), /header length .* exceeds/],
    ['header past end', concat(le64(100), '{}'), /larger than the 2 bytes/],
    ['not JSON', header('{"a":'), /not valid UTF-8 JSON/],
    ['not an object', header('[1]'), /not a JSON object/],
    [
      'bad dtype',
      header('{"a":{"dtype":"F8_E4M3","shape":[1],"data_offsets":[0,1]}}', new Uint8Array(1)),
      /dtype "F8_E4M3"/,
    ],
    [
      'bad shape',
      header('{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}', new Uint8Array(4)),
      /shape must be/,
    ],
    [
      'offsets past end',
      header('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', new Uint8Array(4)),
      /outside the 4-byte/,
    ],
    [
      'size mismatch',
      header('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}', new Uint8Array(4)),
      /needs 8 bytes/,
    ],
    [
      'overlap',
      header(
        '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}',
        new Uint8Array(8),
      ),
      /'a' and 'b' overlap/,
    ],
    ['bad metadata', header('{"__metadata__":{"x":1}}'), /__metadata__/],
  ];
  for (const [what, bytes, msg] of cases) {
    it(`rejects: ${what}`, () => {
      expect(() => readSafetensors(bytes, 'bad.safetensors')).toThrow(CheckpointError);
      expect(() => readSafetensors(bytes, 'bad.safetensors')).toThrow(msg);
      expect(() => readSafetensors(bytes, 'bad.safetensors')).toThrow(/^bad\.safetensors: /);
    });
  }
});
