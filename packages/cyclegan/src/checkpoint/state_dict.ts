import { CheckpointError } from '../errors.js';
import { PyDict, type PyValue, pyTypeName } from './pickle.js';
import { TensorRef } from './torch_globals.js';

/** Keys training scripts commonly wrap a state_dict in. */
const WRAPPER_KEYS = ['state_dict', 'model_state_dict', 'model', 'net'];
const DATA_PARALLEL_PREFIX = 'module.';

/**
 * Find the name → tensor mapping in an unpickled checkpoint: the top-level
 * dict itself, or one wrapped as `{state_dict: …}`/`{model: …}`/`{net: …}`;
 * then strip nn.DataParallel's `module.` prefix.
 */
export function extractTensors(top: PyValue, source: string, log?: (msg: string) => void): Map<string, TensorRef> {
  let obj = top;
  for (let depth = 0; depth < 3 && obj instanceof PyDict; depth++) {
    const d: PyDict = obj;
    const wrapper = WRAPPER_KEYS.find((k) => d.items.get(k) instanceof PyDict);
    if (wrapper === undefined) break;
    log?.(`${source}: using the checkpoint's '${wrapper}' entry as the state_dict`);
    obj = d.items.get(wrapper) as PyDict;
  }
  if (!(obj instanceof PyDict)) {
    throw new CheckpointError(
      `${source}: the checkpoint holds a ${pyTypeName(obj)}, not a dict of tensors; save it with torch.save(model.state_dict(), path)`,
    );
  }
  const out = new Map<string, TensorRef>();
  for (const [k, v] of obj.items) {
    if (typeof k !== 'string') {
      throw new CheckpointError(`${source}: state_dict key ${String(k)} is a ${pyTypeName(k)}, expected a string`);
    }
    if (!(v instanceof TensorRef)) {
      const keys = [...obj.items.keys()].slice(0, 8).map(String).join(', ');
      throw new CheckpointError(
        `${source}: entry '${k}' is a ${pyTypeName(v)}, not a tensor, so this is not a plain state_dict (top-level keys: ${keys}); save just model.state_dict()`,
      );
    }
    out.set(k, v);
  }
  if (out.size === 0) throw new CheckpointError(`${source}: the state_dict contains no tensors`);
  const keys = [...out.keys()];
  if (keys.every((k) => k.startsWith(DATA_PARALLEL_PREFIX))) {
    log?.(`${source}: stripped the '${DATA_PARALLEL_PREFIX}' prefix (nn.DataParallel) from ${keys.length} keys`);
    return new Map([...out].map(([k, v]) => [k.slice(DATA_PARALLEL_PREFIX.length), v]));
  }
  return out;
}
