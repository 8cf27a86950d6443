import { describe, expect, it } from 'vitest';
import { PyDict, type PyValue, unpickle } from '../../src/checkpoint/pickle.js';
import { TORCH_GLOBALS } from '../../src/checkpoint/torch_globals.js';
import { concat, op } from './helpers.js';

const hex = (s: string) => Uint8Array.from(s.match(/../g)!.map((b) => Number.parseInt(b, 16)));
const load = (bytes: Uint8Array) => unpickle(bytes, 0, { source: 'test.pkl', globals: TORCH_GLOBALS }).value;

// pickle.dumps(obj, protocol=4) of
// {'a': [1, -2, 3.5, None, True, False, 'xyz', b'yz', (1, 2), 2**70, -2**70, 300, 70000, -70000, 'é'],
//  'b': {}, 'c': collections.OrderedDict([('k', (1,))])}
const PROTO4 =
  '8004958d000000000000007d94288c0161945d94284b014afeffffff47400c0000000000004e88898c0378797a944302797a944b014b0286948a090000000000000000408a090000000000000000c04d2c014a701101004a90eefeff8c02c3a994658c0162947d948c0163948c0b636f6c6c656374696f6e73948c0b4f726465726564446963749493942952948c016b944b01859473752e';

describe('unpickle', () => {
  it('decodes a CPython protocol-4 pickle (FRAME, MEMOIZE, STACK_GLOBAL, LONG1, BINFLOAT, …)', () => {
    const v = load(hex(PROTO4)) as PyDict;
    expect(v).toBeInstanceOf(PyDict);
    expect([...v.items.keys()]).toEqual(['a', 'b', 'c']);
    const a = v.items.get('a') as PyValue[];
    expect(a.slice(0, 7)).toEqual([1, -2, 3.5, null, true, false, 'xyz']);
    expect(a[7]).toEqual(Uint8Array.of(0x79, 0x7a));
    expect(a[8]).toEqual([1, 2]);
    expect(Object.isFrozen(a[8])).toBe(true);
    expect(a.slice(9)).toEqual([2n ** 70n, -(2n ** 70n), 300, 70000, -70000, 'é']);
    expect((v.items.get('b') as PyDict).items.size).toBe(0);
    expect((v.items.get('c') as PyDict).items.get('k')).toEqual([1]);
  });

  it('returns where the pickle ended, so legacy files can chain pickles', () => {
    const two = concat(op.proto(), op.int(5), op.stop, op.proto(), op.str('x'), op.stop);
    const first = unpickle(two, 0, { source: 't', globals: TORCH_GLOBALS });
    expect(first.value).toBe(5);
    expect(unpickle(two, first.end, { source: 't', globals: TORCH_GLOBALS }).value).toBe('x');
  });

  it('handles the older and rarer opcodes: BINSTRING, DICT, LIST, APPEND, DUP, POP_MARK, NEWOBJ, LONG_BINPUT', () => {
    const bytes = concat(
      op.proto(),
      op.mark,
      [0x55, 3, ...new TextEncoder().encode('key')], // SHORT_BINSTRING (Python 2 str)
      op.mark,
      op.int(-7),
      [0x6c], // LIST
      [0x4e, 0x61], // NONE APPEND
      [0x72, 0, 1, 0, 0], // LONG_BINPUT 256
      [0x54, 1, 0, 0, 0, 0x62], // BINSTRING 'b'
      [0x6a, 0, 1, 0, 0], // LONG_BINGET 256: the same list again
      op.mark,
      op.int(1),
      op.int(2),
      [0x31], // POP_MARK
      [0x55, 1, 0x63], // SHORT_BINSTRING 'c'
      op.global('collections', 'OrderedDict'),
      op.emptyTuple,
      [0x81], // NEWOBJ
      [0x32, 0x30], // DUP POP
      [0x64], // DICT
      op.stop,
    );
    const d = load(bytes) as PyDict;
    expect(d.items.get('key')).toEqual([-7, null]);
    expect(d.items.get('b')).toBe(d.items.get('key'));
    expect(d.items.get('c')).toBeInstanceOf(PyDict);
    expect(d.items.size).toBe(3);
  });

  const bad: [string, number[], RegExp][] = [
    ['an unknown opcode', [0x80, 2, 0x69], /unsupported pickle opcode 0x69 \(INST\)/],
    ['a memo miss', [0x80, 2, 0x68, 7, 0x2e], /memo entry 7 was never stored/],
    ['popping an empty stack', [0x80, 2, 0x30], /stack underflow/],
    ['reaching below a MARK', [0x80, 2, 0x4e, 0x28, 0x85], /stack underflow/],
    ['TUPLE without MARK', [0x80, 2, 0x74], /MARK expected/],
    ['APPEND to a tuple', [0x80, 2, 0x29, 0x4e, 0x61], /APPEND\(S\) on a tuple/],
    ['a list as dict key', [0x80, 2, 0x7d, 0x5d, 0x4e, 0x73], /dict key of type list/],
    [
      'calling a storage class',
      [...op.proto(), ...op.global('torch', 'FloatStorage'), ...op.emptyTuple, ...op.reduce],
      /cannot be called/,
    ],
    ['a persistent id with no handler', [0x80, 2, 0x4e, 0x51], /persistent id where none is allowed/],
    ['pickle protocol 6', [0x80, 6], /protocol 6/],
    ['no STOP', [0x80, 2, 0x4e], /truncated/],
    ['LONG4 of a megabyte', [0x80, 2, 0x8b, 0, 0, 16, 0], /LONG4 of 1048576 bytes/],
    ['a huge FRAME', [0x80, 4, 0x95, 0, 0, 0, 0, 0, 0, 0, 1], /FRAME needs 2\^56 bytes/],
    ['BINUNICODE8 of 2^60 bytes', [0x80, 4, 0x8d, 0, 0, 0, 0, 0, 0, 0, 0x10], /string needs 2\^60 bytes/],
    ['BINBYTES8 of 2^63 bytes', [0x80, 4, 0x8e, 0, 0, 0, 0, 0, 0, 0, 0x80], /bytes needs 2\^63 bytes/],
    ['BINUNICODE of 4 GiB', [0x80, 2, 0x58, 0xff, 0xff, 0xff, 0xff], /string needs 4294967295 bytes/],
    ['negative BINSTRING', [0x80, 2, 0x54, 0xff, 0xff, 0xff, 0xff], /negative length/],
    ['an unterminated GLOBAL', [0x80, 2, 0x63, 0x61, 0x62], /unterminated GLOBAL/],
  ];
  for (const [what, bytes, msg] of bad) {
    it(`rejects ${what}`, () => {
      expect(() => load(Uint8Array.from(bytes))).toThrow(msg);
      expect(() => load(Uint8Array.from(bytes))).toThrow(/^test\.pkl: /);
    });
  }
});
