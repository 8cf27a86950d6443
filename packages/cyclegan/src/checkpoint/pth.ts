import { CheckpointError } from '../errors.js';
import { DTYPE_SIZE, encodeElements } from './dtypes.js';
import type { StateDict } from './host_tensor.js';
import { PyDict, type PyGlobal, type PyValue, pyTypeName, unpickle } from './pickle.js';
import { PickleWriter } from './pickle_writer.js';
import { extractTensors } from './state_dict.js';
import { StorageBank } from './storage_bank.js';
import { contiguousStrides } from './strided.js';
import { STORAGE_CLASS, StorageRef, storageDtype, TORCH_GLOBALS } from './torch_globals.js';
import { readZip, writeZip } from './zip.js';

/**
 * PyTorch `.pth` files, both layouts torch.save has used:
 * - zip (torch ≥ 1.6): `<root>/data.pkl` pickles the object with persistent
 *   ids naming storages, whose bytes are the entries `<root>/data/<key>`;
 * - legacy (older torch, e.g. the official 2018 CycleGAN models): a stream of
 *   pickles (magic number, protocol 1001, sys info, the object, storage keys)
 *   followed by each storage as an int64 element count and raw bytes.
 */

const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;
const LEGACY_PROTOCOL = 1001;
const NO_GLOBALS: ReadonlyMap<string, PyGlobal> = new Map();

type Fail = (msg: string) => never;

/** `('storage', storage_type, key, location, numel[, view_metadata])` → StorageRef. */
function parseStoragePid(pid: PyValue, legacy: boolean, fail: Fail): StorageRef {
  if (!Array.isArray(pid) || pid.length === 0) return fail(`persistent id is a ${pyTypeName(pid)}, not a tuple`);
  const p = pid as readonly PyValue[];
  if (p[0] === 'module') {
    return fail(
      'the file contains a whole pickled nn.Module, not a state_dict; re-save it with torch.save(model.state_dict(), path)',
    );
  }
  if (p[0] !== 'storage') return fail(`persistent id of kind '${String(p[0])}' is not a storage`);
  if (p.length !== (legacy ? 6 : 5)) fail(`storage persistent id has ${p.length} fields, expected ${legacy ? 6 : 5}`);
  const [, type, key, , numel] = p;
  const dtype = storageDtype(type);
  if (!dtype) return fail(`storage type ${pyTypeName(type)} is not a supported tensor storage`);
  if (typeof key !== 'string') return fail(`storage key is a ${pyTypeName(key)}, not a str`);
  if (typeof numel !== 'number' || !Number.isSafeInteger(numel) || numel < 0) {
    return fail(`storage '${key}' declares an invalid element count ${String(numel)}`);
  }
  const view = legacy ? p[5] : null;
  if (view === null) return new StorageRef(key, dtype, numel);
  // Pre-1.0 torch could save a slice of a storage: (view_key, offset, size).
  if (!Array.isArray(view) || view.length !== 3) return fail(`storage view metadata is a ${pyTypeName(view)}`);
  const [viewKey, offset, size] = view as readonly PyValue[];
  if (typeof viewKey !== 'string' || !Number.isSafeInteger(offset) || !Number.isSafeInteger(size)) {
    return fail('storage view metadata is not (str, int, int)');
  }
  if ((offset as number) < 0 || (size as number) < 0) fail('storage view has a negative offset or size');
  return new StorageRef(key, dtype, numel, { key: viewKey, offset: offset as number, size: size as number });
}

function isZip(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && (bytes[2] === 3 || bytes[2] === 5);
}

function readZipPth(bytes: Uint8Array, source: string, log?: (msg: string) => void): StateDict {
  const files = readZip(bytes, source);
  let root: string | undefined;
  for (const name of files.keys()) {
    const m = /^([^/]+)\/data\.pkl$/.exec(name);
    if (m) {
      root = m[1];
      break;
    }
  }
  if (root === undefined) {
    const names = [...files.keys()].slice(0, 6).join(', ');
    throw new CheckpointError(
      `${source}: zip archive has no '<name>/data.pkl' entry, so it is not a torch.save checkpoint (entries: ${names || 'none'})`,
    );
  }
  let littleEndian = true;
  const order = files.get(`${root}/byteorder`);
  if (order) {
    const text = new TextDecoder().decode(order).trim();
    if (text !== 'little' && text !== 'big') {
      throw new CheckpointError(`${source}: byteorder entry says '${text.slice(0, 20)}', expected 'little' or 'big'`);
    }
    littleEndian = text === 'little';
  }
  const top = unpickle(files.get(`${root}/data.pkl`) as Uint8Array, 0, {
    source: `${source} (${root}/data.pkl)`,
    globals: TORCH_GLOBALS,
    persistentLoad: (pid, fail) => parseStoragePid(pid, false, fail),
  }).value;
  const refs = extractTensors(top, source, log);
  const bank = new StorageBank(
    source,
    (key) => files.get(`${root}/data/${key}`),
    (key) => `zip entry '${root}/data/${key}' not found`,
    littleEndian,
    bytes.length,
  );
  return bank.materializeAll(refs);
}

function readLegacyPth(bytes: Uint8Array, source: string, log?: (msg: string) => void): StateDict {
  const plain = { source, globals: NO_GLOBALS };
  const magic = unpickle(bytes, 0, plain);
  if (magic.value !== LEGACY_MAGIC) {
    throw new CheckpointError(
      `${source}: starts like a pickle but not with torch's magic number, so it is not a torch.save checkpoint`,
    );
  }
  const protocol = unpickle(bytes, magic.end, plain);
  if (protocol.value !== LEGACY_PROTOCOL) {
    throw new CheckpointError(
      `${source}: legacy torch protocol ${String(protocol.value)} is not supported (expected ${LEGACY_PROTOCOL})`,
    );
  }
  const sysInfo = unpickle(bytes, protocol.end, plain);
  const littleEndian = !(sysInfo.value instanceof PyDict && sysInfo.value.items.get('little_endian') === false);

  const roots = new Map<string, StorageRef>();
  const obj = unpickle(bytes, sysInfo.end, {
    source,
    globals: TORCH_GLOBALS,
    persistentLoad: (pid, fail) => {
      const ref = parseStoragePid(pid, true, fail);
      const seen = roots.get(ref.key);
      if (seen && (seen.dtype !== ref.dtype || seen.numel !== ref.numel)) {
        fail(`storage '${ref.key}' is declared twice with different types or sizes`);
      }
      if (!seen) roots.set(ref.key, ref);
      return ref;
    },
  });
  const refs = extractTensors(obj.value, source, log);

  const keyList = unpickle(bytes, obj.end, plain);
  const fail = (msg: string): never => {
    throw new CheckpointError(`${source}: ${msg} (file truncated or corrupt; re-download it)`);
  };
  if (!Array.isArray(keyList.value)) fail(`storage key list is a ${pyTypeName(keyList.value)}`);
  const data = new Map<string, Uint8Array>();
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = keyList.end;
  for (const key of keyList.value as readonly PyValue[]) {
    if (typeof key !== 'string') return fail(`storage key is a ${pyTypeName(key)}`);
    const ref = roots.get(key);
    if (!ref) return fail(`storage '${key}' is listed but no tensor uses it`);
    if (data.has(key)) fail(`storage '${key}' is listed twice`);
    if (pos + 8 > bytes.length) fail(`storage '${key}' is missing its element count`);
    const count = dv.getInt32(pos + 4, true) * 4294967296 + dv.getUint32(pos, true);
    pos += 8;
    if (count !== ref.numel) fail(`storage '${key}' holds ${count} elements but the pickle declared ${ref.numel}`);
    const nbytes = count * DTYPE_SIZE[ref.dtype];
    if (!(nbytes <= bytes.length - pos)) {
      fail(`storage '${key}' needs ${nbytes} bytes at byte ${pos} but only ${bytes.length - pos} remain`);
    }
    data.set(key, bytes.subarray(pos, pos + nbytes));
    pos += nbytes;
  }
  const bank = new StorageBank(
    source,
    (key) => data.get(key),
    (key) => `storage '${key}' is not in the file's storage list`,
    littleEndian,
    bytes.length,
  );
  return bank.materializeAll(refs);
}

/**
 * Read a PyTorch checkpoint (zip or legacy torch.save format) holding a
 * state_dict, possibly wrapped in `{state_dict: …}` and/or DataParallel's
 * `module.` prefix. Never executes anything from the file.
 */
export function readPth(bytes: Uint8Array, source: string, log?: (msg: string) => void): StateDict {
  if (isZip(bytes)) return readZipPth(bytes, source, log);
  if (bytes.length >= 2 && bytes[0] === 0x80 && bytes[1] >= 2 && bytes[1] <= 5) {
    return readLegacyPth(bytes, source, log);
  }
  throw new CheckpointError(
    `${source}: not a PyTorch checkpoint (neither a zip archive nor a legacy torch.save pickle); pass a file written by torch.save`,
  );
}

/**
 * Write a state_dict as torch.save would (zip format, pickle protocol 2), so
 * `torch.load` returns an OrderedDict of tensors with the same keys, shapes and dtypes.
 */
export function writePth(sd: StateDict): Uint8Array {
  const p = new PickleWriter();
  const storages: Uint8Array[] = [];
  p.global('collections', 'OrderedDict').emptyTuple().reduce();
  let inBatch = 0;
  for (const [key, t] of sd) {
    let numel = 1;
    for (const d of t.shape) {
      if (!Number.isSafeInteger(d) || d < 0) throw new CheckpointError(`writePth: tensor '${key}' has invalid shape`);
      numel *= d;
    }
    if (t.data.length !== numel) {
      throw new CheckpointError(
        `writePth: tensor '${key}' has ${t.data.length} values but its shape [${t.shape.join(',')}] needs ${numel}`,
      );
    }
    // SETITEMS in batches of 1000, as pickle does, so the unpickler's stack stays small.
    if (inBatch === 0) p.mark();
    p.str(key);
    p.global('torch._utils', '_rebuild_tensor_v2');
    p.mark();
    p.mark().str('storage').global('torch', STORAGE_CLASS[t.dtype]).str(String(storages.length)).str('cpu').int(numel);
    p.tuple().binpersid();
    p.int(0).intTuple(t.shape).intTuple(contiguousStrides(t.shape)).bool(false);
    p.global('collections', 'OrderedDict').emptyTuple().reduce();
    p.tuple().reduce();
    storages.push(encodeElements(t.data, t.dtype, key));
    if (++inBatch === 1000) {
      p.setitems();
      inBatch = 0;
    }
  }
  if (inBatch > 0) p.setitems();
  const enc = new TextEncoder();
  return writeZip([
    { name: 'archive/data.pkl', data: p.finish() },
    { name: 'archive/byteorder', data: enc.encode('little') },
    ...storages.map((data, i) => ({ name: `archive/data/${i}`, data })),
    { name: 'archive/version', data: enc.encode('3\n') },
  ]);
}
