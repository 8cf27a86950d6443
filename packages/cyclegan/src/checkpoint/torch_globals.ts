import type { DType } from './host_tensor.js';
import { PyDict, PyGlobal, PyObject, type PyValue, pyTypeName } from './pickle.js';

/**
 * The allow-list of Python globals a torch state_dict pickle may name, and the
 * data-only stand-ins our unpickler builds for them. Nothing here runs code
 * from the file: each entry is a TypeScript function that checks its arguments.
 */

/** `torch.FloatStorage` etc.: used only as a dtype tag inside persistent ids. */
export const STORAGE_DTYPES: Readonly<Record<string, DType>> = {
  FloatStorage: 'float32',
  HalfStorage: 'float16',
  BFloat16Storage: 'bfloat16',
  DoubleStorage: 'float64',
  LongStorage: 'int64',
  IntStorage: 'int32',
  ShortStorage: 'int16',
  CharStorage: 'int8',
  ByteStorage: 'uint8',
  BoolStorage: 'bool',
};

/** DType → storage class name, for the writer. */
export const STORAGE_CLASS: Readonly<Record<DType, string>> = Object.fromEntries(
  Object.entries(STORAGE_DTYPES).map(([k, v]) => [v, k]),
) as Record<DType, string>;

/** A reference to a (slice of a) storage; its bytes are attached after unpickling. */
export class StorageRef extends PyObject {
  readonly typeName = 'torch storage';
  constructor(
    readonly key: string,
    readonly dtype: DType,
    /** Elements the file declares for the root storage. */
    readonly numel: number,
    /** Legacy storage views: an element range of the root storage. */
    readonly view?: { key: string; offset: number; size: number },
  ) {
    super();
  }
}

/** `_rebuild_tensor_v2(storage, offset, size, stride, …)` as data. */
export class TensorRef extends PyObject {
  readonly typeName = 'tensor';
  constructor(
    readonly storage: StorageRef,
    readonly offset: number,
    readonly shape: readonly number[],
    readonly stride: readonly number[],
  ) {
    super();
  }

  /** Tensors rebuilt via `_rebuild_from_type`/with state may get BUILD; state is irrelevant to values. */
  override build(): void {}
}

type Fail = (msg: string) => never;

function isNonNegInt(v: PyValue): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function intTuple(v: PyValue, what: string, fail: Fail): number[] {
  if (!Array.isArray(v)) return fail(`${what} is a ${pyTypeName(v)}, expected a tuple of ints`);
  const out: number[] = [];
  for (const d of v as readonly PyValue[]) {
    if (!isNonNegInt(d)) fail(`${what} contains ${String(d)}, expected non-negative ints`);
    out.push(d as number);
  }
  return out;
}

function rebuildTensor(args: readonly PyValue[], minArgs: number, maxArgs: number, fail: Fail): TensorRef {
  if (args.length < minArgs || args.length > maxArgs) {
    fail(`_rebuild_tensor got ${args.length} arguments, expected ${minArgs}–${maxArgs}`);
  }
  const [storage, offset, size, stride] = args;
  if (!(storage instanceof StorageRef)) return fail(`tensor storage is a ${pyTypeName(storage)}, not a storage`);
  if (!isNonNegInt(offset)) return fail(`tensor storage offset ${String(offset)} is not a non-negative int`);
  const shape = intTuple(size, 'tensor size', fail);
  const strides = intTuple(stride, 'tensor stride', fail);
  if (shape.length !== strides.length) fail(`tensor size has ${shape.length} dims but stride has ${strides.length}`);
  return new TensorRef(storage, offset, shape, strides);
}

function parameterData(args: readonly PyValue[], fail: Fail): PyValue {
  if (!(args[0] instanceof TensorRef)) return fail(`Parameter data is a ${pyTypeName(args[0])}, not a tensor`);
  return args[0];
}

function orderedDict(args: readonly PyValue[], fail: Fail): PyValue {
  // torch pickles OrderedDict as OrderedDict() followed by SETITEMS.
  if (args.length !== 0) fail('OrderedDict(...) with arguments is not supported');
  return new PyDict();
}

function buildGlobals(): Map<string, PyGlobal> {
  const globals: PyGlobal[] = [
    new PyGlobal('collections', 'OrderedDict', orderedDict),
    new PyGlobal('torch._utils', '_rebuild_tensor_v2', (a, f) => rebuildTensor(a, 6, 7, f)),
    new PyGlobal('torch._utils', '_rebuild_tensor', (a, f) => rebuildTensor(a, 4, 4, f)),
    new PyGlobal('torch._utils', '_rebuild_parameter', parameterData),
    new PyGlobal('torch._utils', '_rebuild_parameter_with_state', parameterData),
  ];
  for (const name of Object.keys(STORAGE_DTYPES)) {
    globals.push(new PyGlobal('torch', name));
    globals.push(new PyGlobal('torch.cuda', name));
  }
  return new Map(globals.map((g) => [g.fullName, g]));
}

/**
 * Everything a state_dict pickle may reference. Deliberately absent:
 * `torch.storage._load_from_bytes` (unpickles nested bytes), numpy
 * reconstructors, and anything that is a class of user code.
 */
export const TORCH_GLOBALS: ReadonlyMap<string, PyGlobal> = buildGlobals();

/** The dtype named by a storage-type global, or undefined if it is not one. */
export function storageDtype(v: PyValue): DType | undefined {
  if (!(v instanceof PyGlobal) || (v.module !== 'torch' && v.module !== 'torch.cuda')) return undefined;
  return Object.hasOwn(STORAGE_DTYPES, v.name) ? STORAGE_DTYPES[v.name] : undefined;
}
