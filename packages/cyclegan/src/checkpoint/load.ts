import { CheckpointError } from '../errors.js';
import type { StateDict } from './host_tensor.js';
import { readPth } from './pth.js';
import { readSafetensors } from './safetensors.js';

/**
 * Format sniffing for user-supplied checkpoints, and the one state_dict fix-up
 * the official CycleGAN models need.
 */

/**
 * safetensors: a u64 little-endian header length, then the JSON header's '{'.
 * No zip or torch pickle has '{' at byte 8, and text that does has non-zero
 * bytes 5–7, so this test does not look at whether the length fits the file:
 * a truncated or corrupt safetensors file then gets readSafetensors' precise
 * message instead of "unrecognised checkpoint format".
 */
function looksLikeSafetensors(bytes: Uint8Array): boolean {
  return bytes.length >= 9 && bytes[8] === 0x7b && bytes[5] === 0 && bytes[6] === 0 && bytes[7] === 0;
}

function isPrintable(bytes: Uint8Array): boolean {
  const n = Math.min(bytes.length, 64);
  for (let i = 0; i < n; i++) {
    const b = bytes[i];
    if (!(b === 9 || b === 10 || b === 13 || (b >= 0x20 && b < 0x7f))) return false;
  }
  return true;
}

function hexHead(bytes: Uint8Array): string {
  return [...bytes.subarray(0, 8)].map((b) => b.toString(16).padStart(2, '0')).join(' ');
}

/**
 * Read a `.pth` (zip or legacy torch.save) or `.safetensors` checkpoint,
 * choosing by content rather than by file extension.
 */
export function readCheckpoint(bytes: Uint8Array, name: string, log?: (msg: string) => void): StateDict {
  if (bytes.length === 0) throw new CheckpointError(`${name}: the file is empty (0 bytes); re-download or re-save it`);
  // safetensors first: a header length such as 640 begins with the bytes 80 02, like a pickle.
  // The converse cannot happen: neither a zip nor a torch pickle has '{' at byte 8.
  if (looksLikeSafetensors(bytes)) return readSafetensors(bytes, name);
  const zip = bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && (bytes[2] === 3 || bytes[2] === 5);
  if (zip) return readPth(bytes, name, log);
  if (bytes[0] === 0x80 && bytes.length >= 2 && bytes[1] >= 2 && bytes[1] <= 5) return readPth(bytes, name, log);
  if (bytes.length > 262 && new TextDecoder().decode(bytes.subarray(257, 262)) === 'ustar') {
    throw new CheckpointError(
      `${name}: a tar-format checkpoint from torch < 0.4 is not supported; load it with an old torch and re-save it with torch.save(state_dict, path)`,
    );
  }
  if (isPrintable(bytes)) {
    const head = new TextDecoder().decode(bytes.subarray(0, 64));
    const hint = head.startsWith('version https://git-lfs')
      ? 'this is a Git LFS pointer, not the weights; run `git lfs pull` or download the real file'
      : /^\s*</.test(head)
        ? 'this looks like an HTML page (a failed download?); download the checkpoint again'
        : 'this is a text file, not a checkpoint';
    throw new CheckpointError(`${name}: ${hint} (starts with ${JSON.stringify(head.slice(0, 40))})`);
  }
  throw new CheckpointError(
    `${name}: unrecognised checkpoint format (first bytes ${hexHead(bytes)}); expected a PyTorch .pth (torch.save) or a .safetensors file`,
  );
}

const RUNNING_STATS = ['running_mean', 'running_var', 'num_batches_tracked'];

/**
 * The official repo's `patch_instance_norm_state_dict`: checkpoints saved by
 * torch < 0.4.1 carry `running_mean`/`running_var`/`num_batches_tracked` for
 * InstanceNorm layers that (affine=False, no tracking) have no such buffers,
 * so loading would fail on unexpected keys. A norm layer without `.weight` is
 * such an InstanceNorm; BatchNorm (with weight and bias) keeps its statistics.
 */
export function dropStaleInstanceNormKeys(sd: StateDict, log?: (msg: string) => void): StateDict {
  const out: StateDict = new Map();
  let dropped = 0;
  for (const [key, t] of sd) {
    const dot = key.lastIndexOf('.');
    const leaf = key.slice(dot + 1);
    const weightKey = dot < 0 ? 'weight' : `${key.slice(0, dot)}.weight`;
    if (RUNNING_STATS.includes(leaf) && !sd.has(weightKey)) {
      dropped++;
      continue;
    }
    out.set(key, t);
  }
  if (dropped > 0) {
    log?.(
      `dropped ${dropped} stale InstanceNorm running-stat keys (running_mean/running_var/num_batches_tracked of norm layers without weights), as the official patch_instance_norm_state_dict does`,
    );
  }
  return out;
}
