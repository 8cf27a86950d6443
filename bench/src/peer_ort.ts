// onnxruntime-node, the whole-network peer. It is a devDependency of the
// `test` package, not of the bench (adding it here would change the lockfile),
// so it is resolved from test/package.json. Its types live there too, so the
// few parts we use are declared here.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface OrtTensor {
  readonly data: unknown;
  readonly dims: readonly number[];
}

export interface OrtSession {
  run(feeds: Record<string, OrtTensor>): Promise<Record<string, OrtTensor>>;
  release(): Promise<void>;
}

export interface Ort {
  InferenceSession: { create(model: Uint8Array, options: Record<string, unknown>): Promise<OrtSession> };
  Tensor: new (type: 'float32', data: Float32Array, dims: readonly number[]) => OrtTensor;
  env: { versions?: Record<string, string> };
  listSupportedBackends?: () => { name: string }[];
}

export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** onnxruntime-node as installed for the test package; throws with what to do when it is not there. */
export function loadOrt(): { ort: Ort; version: string; backends: string[] } {
  const req = createRequire(join(REPO_ROOT, 'test', 'package.json'));
  let ort: Ort;
  try {
    ort = req('onnxruntime-node') as Ort;
  } catch (e) {
    throw new Error(
      `onnxruntime-node does not load from test/ (${(e as Error).message.split('\n')[0]}); run pnpm install`,
    );
  }
  const backends = ort.listSupportedBackends?.().map((b) => b.name) ?? [];
  return { ort, version: ort.env.versions?.node ?? ort.env.versions?.common ?? '?', backends };
}
