import { CheckpointError } from '../errors.js';
import { ByteReader } from './byte_reader.js';
import { MAX_STATE_DICT_KEYS } from './limits.js';

/**
 * A safe unpickler for the subset of pickle (protocols 2–5) that torch.save
 * uses for state dicts. It builds plain data and never runs code: a GLOBAL is
 * looked up in a caller-supplied allow-list, and only the allow-list's own
 * TypeScript functions can be "called" by REDUCE/NEWOBJ.
 */

/** Values that may be dict keys. */
export type PyKey = string | number | bigint | boolean | null;

/**
 * An unpickled value. Python ints become numbers (bigint beyond 2^53), bytes
 * become Uint8Array, lists become arrays and tuples frozen arrays.
 */
export type PyValue = PyKey | Uint8Array | PyValue[] | readonly PyValue[] | PyDict | PyGlobal | PyObject;

/** A dict or OrderedDict, insertion-ordered like Python's. */
export class PyDict {
  readonly items = new Map<PyKey, PyValue>();
  /** Whatever BUILD set (e.g. a state_dict's `_metadata`); kept, never interpreted. */
  state: PyValue | undefined;
}

/** An allow-listed global. Only globals with `call` may be applied by REDUCE/NEWOBJ. */
export class PyGlobal {
  constructor(
    readonly module: string,
    readonly name: string,
    readonly call?: (args: readonly PyValue[], fail: (msg: string) => never) => PyValue,
  ) {}

  get fullName(): string {
    return `${this.module}.${this.name}`;
  }
}

/** Base of the objects an allow-listed call may return (tensors, storages). */
export abstract class PyObject {
  abstract readonly typeName: string;
  /** BUILD on this object; objects that accept no state leave this undefined. */
  build?(state: PyValue, fail: (msg: string) => never): void;
}

export interface UnpickleOptions {
  /** File name for messages. */
  source: string;
  /** 'module.name' → global. Anything not in here is refused. */
  globals: ReadonlyMap<string, PyGlobal>;
  /** BINPERSID handler; without one a persistent id is an error. */
  persistentLoad?: (pid: PyValue, fail: (msg: string) => never) => PyValue;
}

export interface UnpickleResult {
  value: PyValue;
  /** Offset just past the STOP opcode, where a following pickle would begin. */
  end: number;
}

/** Names for messages about opcodes we refuse. */
const OPCODE_NAMES: Record<number, string> = {
  73: 'INT',
  76: 'LONG',
  83: 'STRING',
  86: 'UNICODE',
  70: 'FLOAT',
  80: 'PERSID',
  112: 'PUT',
  103: 'GET',
  105: 'INST',
  111: 'OBJ',
  130: 'EXT1',
  131: 'EXT2',
  132: 'EXT4',
  143: 'EMPTY_SET',
  144: 'ADDITEMS',
  145: 'FROZENSET',
  146: 'NEWOBJ_EX',
  151: 'NEXT_BUFFER',
  152: 'READONLY_BUFFER',
};

const MAX_LONG_BYTES = 256;
const MAX_GLOBAL_LINE = 512;
const utf8 = new TextDecoder('utf-8');

function decodeLong(b: Uint8Array): number | bigint {
  if (b.length === 0) return 0;
  let v = 0n;
  for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
  if (b[b.length - 1] & 0x80) v -= 1n << BigInt(8 * b.length);
  const safe = BigInt(Number.MAX_SAFE_INTEGER);
  return v >= -safe && v <= safe ? Number(v) : v;
}

/** Short human name of a value's Python type, for messages. */
export function pyTypeName(v: PyValue): string {
  if (v === null) return 'None';
  if (typeof v === 'boolean') return 'bool';
  if (typeof v === 'number') return Number.isInteger(v) ? 'int' : 'float';
  if (typeof v === 'bigint') return 'int';
  if (typeof v === 'string') return 'str';
  if (v instanceof Uint8Array) return 'bytes';
  if (Array.isArray(v)) return Object.isFrozen(v) ? 'tuple' : 'list';
  if (v instanceof PyDict) return 'dict';
  if (v instanceof PyGlobal) return `global ${v.fullName}`;
  if (v instanceof PyObject) return v.typeName;
  return 'unknown';
}

function keyText(k: PyKey): string {
  return typeof k === 'string' ? `'${k.length > 80 ? `${k.slice(0, 80)}…` : k}'` : String(k);
}

function isKey(v: PyValue): v is PyKey {
  return v === null || ['string', 'number', 'bigint', 'boolean'].includes(typeof v);
}

/** Unpickle one pickle starting at `start`. */
export function unpickle(bytes: Uint8Array, start: number, opts: UnpickleOptions): UnpickleResult {
  let opPos = start;
  const fail = (msg: string): never => {
    throw new CheckpointError(
      `${opts.source}: bad pickle data at byte ${opPos}: ${msg} (the file is corrupt or not a PyTorch state_dict)`,
    );
  };
  const r = new ByteReader(bytes, start, fail);
  const stack: PyValue[] = [];
  const marks: number[] = [];
  const memo = new Map<number, PyValue>();

  // As in Python's unpickler, a MARK starts a fresh stack: nothing below it can be reached.
  const floor = (): number => (marks.length > 0 ? marks[marks.length - 1] : 0);
  const pop = (): PyValue => {
    if (stack.length <= floor()) fail('stack underflow');
    return stack.pop() as PyValue;
  };
  const top = (): PyValue => {
    if (stack.length <= floor()) fail('stack underflow');
    return stack[stack.length - 1];
  };
  const popMark = (): PyValue[] => {
    const m = marks.pop();
    if (m === undefined) fail('MARK expected');
    return stack.splice(m as number);
  };
  const tuple = (items: PyValue[]): readonly PyValue[] => Object.freeze(items);
  const str = (n: number): string => utf8.decode(r.take(n, 'string'));
  const bytesOf = (n: number): Uint8Array => r.take(n, 'bytes').slice();
  const resolve = (module: string, name: string): PyGlobal => {
    const g = opts.globals.get(`${module}.${name}`);
    if (!g) {
      throw new CheckpointError(
        `${opts.source}: refusing to load global ${module}.${name}: checkpoints may only contain tensors (loading it could run code); if this file holds a pickled model or other Python objects, load it in Python and re-save just model.state_dict()`,
      );
    }
    return g;
  };
  const setItems = (target: PyValue, items: PyValue[]): void => {
    if (!(target instanceof PyDict)) fail(`SETITEM(S) on a ${pyTypeName(target)}, not a dict`);
    const d = target as PyDict;
    if (items.length % 2 !== 0) fail('SETITEMS with an odd number of items');
    for (let i = 0; i < items.length; i += 2) {
      const k = items[i];
      if (!isKey(k)) fail(`dict key of type ${pyTypeName(k)} is not supported`);
      // Python's pickler writes each key once; a repeat would silently replace a tensor.
      if (d.items.has(k as PyKey)) fail(`dict key ${keyText(k as PyKey)} appears twice, which torch.save never writes`);
      d.items.set(k as PyKey, items[i + 1]);
    }
    if (d.items.size > MAX_STATE_DICT_KEYS) {
      fail(`a dict with more than ${MAX_STATE_DICT_KEYS} entries is beyond any state_dict this reader accepts`);
    }
  };
  const append = (target: PyValue, items: PyValue[]): void => {
    if (!Array.isArray(target) || Object.isFrozen(target)) fail(`APPEND(S) on a ${pyTypeName(target)}, not a list`);
    for (const it of items) (target as PyValue[]).push(it);
  };
  const apply = (fn: PyValue, args: PyValue): PyValue => {
    if (!(fn instanceof PyGlobal)) return fail(`cannot call a ${pyTypeName(fn)}`);
    if (!fn.call) return fail(`global ${fn.fullName} cannot be called`);
    if (!Array.isArray(args)) return fail(`arguments of ${fn.fullName} are a ${pyTypeName(args)}, not a tuple`);
    return fn.call(args, fail);
  };

  for (;;) {
    opPos = r.pos;
    const op = r.u8('opcode');
    switch (op) {
      case 0x80: {
        const proto = r.u8('PROTO');
        if (proto > 5) fail(`pickle protocol ${proto} is newer than this reader (max 5)`);
        break;
      }
      case 0x95: // FRAME: only a read-ahead hint, but its length must be plausible
        r.need(r.u64('FRAME length'), 'FRAME');
        break;
      case 0x2e: // STOP
        return { value: pop(), end: r.pos };
      case 0x28: // MARK
        marks.push(stack.length);
        break;
      case 0x7d: // EMPTY_DICT
        stack.push(new PyDict());
        break;
      case 0x5d: // EMPTY_LIST
        stack.push([]);
        break;
      case 0x29: // EMPTY_TUPLE
        stack.push(tuple([]));
        break;
      case 0x4e: // NONE
        stack.push(null);
        break;
      case 0x88: // NEWTRUE
        stack.push(true);
        break;
      case 0x89: // NEWFALSE
        stack.push(false);
        break;
      case 0x4a: // BININT
        stack.push(r.i32('BININT'));
        break;
      case 0x4b: // BININT1
        stack.push(r.u8('BININT1'));
        break;
      case 0x4d: // BININT2
        stack.push(r.u16('BININT2'));
        break;
      case 0x8a: // LONG1
        stack.push(decodeLong(r.take(r.u8('LONG1 length'), 'LONG1')));
        break;
      case 0x8b: {
        const n = r.i32('LONG4 length');
        if (n < 0 || n > MAX_LONG_BYTES) fail(`LONG4 of ${n} bytes is not a plausible integer`);
        stack.push(decodeLong(r.take(n, 'LONG4')));
        break;
      }
      case 0x47: // BINFLOAT (big-endian, unlike everything else)
        stack.push(r.f64be('BINFLOAT'));
        break;
      case 0x58: // BINUNICODE
        stack.push(str(r.u32('BINUNICODE length')));
        break;
      case 0x8c: // SHORT_BINUNICODE
        stack.push(str(r.u8('SHORT_BINUNICODE length')));
        break;
      case 0x8d: // BINUNICODE8
        stack.push(str(r.u64('BINUNICODE8 length')));
        break;
      case 0x54: {
        // BINSTRING: a Python 2 str; torch.load decodes these as UTF-8.
        const n = r.i32('BINSTRING length');
        if (n < 0) fail(`BINSTRING with negative length ${n}`);
        stack.push(str(n));
        break;
      }
      case 0x55: // SHORT_BINSTRING
        stack.push(str(r.u8('SHORT_BINSTRING length')));
        break;
      case 0x42: // BINBYTES
        stack.push(bytesOf(r.u32('BINBYTES length')));
        break;
      case 0x43: // SHORT_BINBYTES
        stack.push(bytesOf(r.u8('SHORT_BINBYTES length')));
        break;
      case 0x8e: // BINBYTES8
      case 0x96: // BYTEARRAY8
        stack.push(bytesOf(r.u64('BINBYTES8 length')));
        break;
      case 0x74: // TUPLE
        stack.push(tuple(popMark()));
        break;
      case 0x85: // TUPLE1
        stack.push(tuple([pop()]));
        break;
      case 0x86: {
        const b = pop();
        stack.push(tuple([pop(), b]));
        break;
      }
      case 0x87: {
        const c = pop();
        const b = pop();
        stack.push(tuple([pop(), b, c]));
        break;
      }
      case 0x6c: // LIST
        stack.push(popMark());
        break;
      case 0x64: {
        // DICT
        const d = new PyDict();
        setItems(d, popMark());
        stack.push(d);
        break;
      }
      case 0x61: {
        // APPEND
        const v = pop();
        append(top(), [v]);
        break;
      }
      case 0x65: {
        // APPENDS
        const items = popMark();
        append(top(), items);
        break;
      }
      case 0x73: {
        // SETITEM
        const v = pop();
        const k = pop();
        setItems(top(), [k, v]);
        break;
      }
      case 0x75: {
        // SETITEMS
        const items = popMark();
        setItems(top(), items);
        break;
      }
      case 0x71: // BINPUT
        memo.set(r.u8('BINPUT'), top());
        break;
      case 0x72: // LONG_BINPUT
        memo.set(r.u32('LONG_BINPUT'), top());
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, top());
        break;
      case 0x68: // BINGET
      case 0x6a: {
        // LONG_BINGET
        const idx = op === 0x68 ? r.u8('BINGET') : r.u32('LONG_BINGET');
        if (!memo.has(idx)) fail(`memo entry ${idx} was never stored`);
        stack.push(memo.get(idx) as PyValue);
        break;
      }
      case 0x32: // DUP
        stack.push(top());
        break;
      case 0x30: // POP
        pop();
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x63: {
        // GLOBAL: "module\nname\n"
        const line = (): string => {
          const end = bytes.indexOf(0x0a, r.pos);
          if (end < 0 || end - r.pos > MAX_GLOBAL_LINE) fail('unterminated GLOBAL name');
          const s = utf8.decode(bytes.subarray(r.pos, end));
          r.pos = end + 1;
          return s;
        };
        const module = line();
        stack.push(resolve(module, line()));
        break;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') fail('STACK_GLOBAL needs two strings');
        stack.push(resolve(module as string, name as string));
        break;
      }
      case 0x52: {
        // REDUCE
        const args = pop();
        stack.push(apply(pop(), args));
        break;
      }
      case 0x81: {
        // NEWOBJ: cls.__new__(cls, *args); allow-listed classes build the same way
        const args = pop();
        stack.push(apply(pop(), args));
        break;
      }
      case 0x62: {
        // BUILD
        const state = pop();
        const obj = top();
        if (obj instanceof PyDict) obj.state = state;
        else if (obj instanceof PyObject && obj.build) obj.build(state, fail);
        else fail(`BUILD on a ${pyTypeName(obj)}`);
        break;
      }
      case 0x51: {
        // BINPERSID
        const pid = pop();
        if (!opts.persistentLoad) fail('persistent id where none is allowed');
        stack.push((opts.persistentLoad as NonNullable<UnpickleOptions['persistentLoad']>)(pid, fail));
        break;
      }
      default: {
        const name = OPCODE_NAMES[op];
        fail(`unsupported pickle opcode 0x${op.toString(16).padStart(2, '0')}${name ? ` (${name})` : ''}`);
      }
    }
  }
}
