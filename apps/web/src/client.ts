// The page's handle on the engine: in a Worker when it has WebGPU there, else in the page.
import type { AdapterInfo, EngineEvent, ErrorInfo, FromEngine, ReplyMap, Request } from './protocol.js';

/** An engine request that failed; `info.kind` says which message to show. */
export class RequestError extends Error {
  constructor(readonly info: ErrorInfo) {
    super(info.message);
    this.name = info.name;
  }
}

export interface EngineClient {
  call<R extends Request>(req: R): Promise<ReplyMap[R['op']]>;
  close(): void;
}

function workerClient(onEvent: (e: EngineEvent) => void): EngineClient {
  const worker = new Worker(new URL('./worker.ts', import.meta.url), { type: 'module', name: 'cyclegan-engine' });
  const pending = new Map<number, { resolve: (v: never) => void; reject: (e: Error) => void }>();
  let nextId = 1;
  worker.addEventListener('message', (e: MessageEvent<FromEngine>) => {
    const m = e.data;
    if ('event' in m) return onEvent(m);
    const p = pending.get(m.id);
    pending.delete(m.id);
    if (!p) return;
    if (m.ok) p.resolve(m.result as never);
    else p.reject(new RequestError(m.error));
  });
  worker.addEventListener('error', (e) => {
    const err = new RequestError({ kind: 'other', name: 'WorkerError', message: `worker failed: ${e.message}` });
    for (const p of pending.values()) p.reject(err);
    pending.clear();
  });
  return {
    call(req) {
      const id = nextId++;
      return new Promise((resolve, reject) => {
        pending.set(id, { resolve: resolve as (v: never) => void, reject });
        worker.postMessage({ id, req });
      });
    },
    close: () => worker.terminate(),
  };
}

async function pageClient(onEvent: (e: EngineEvent) => void): Promise<EngineClient> {
  const { Engine } = await import('./engine.js');
  // Events go out as tasks, as a Worker's would, so the page can render between them.
  const engine = new Engine((e) => setTimeout(() => onEvent(e)), 'page');
  return {
    async call(req) {
      await new Promise((r) => setTimeout(r));
      try {
        return await engine.handle(req);
      } catch (e) {
        throw new RequestError(engine.errorInfo(e));
      }
    },
    close() {},
  };
}

/**
 * Starts the engine and acquires the GPU device. `where`: 'auto' tries a Worker first and falls back to the
 * page when the Worker has no WebGPU (some browsers expose it to pages only).
 */
export async function startEngine(
  onEvent: (e: EngineEvent) => void,
  where: 'auto' | 'worker' | 'page' = 'auto',
): Promise<{ client: EngineClient; adapter: AdapterInfo }> {
  if (where !== 'page') {
    const client = workerClient(onEvent);
    try {
      return { client, adapter: await client.call({ op: 'init' }) };
    } catch (e) {
      client.close();
      if (where === 'worker' || !(e instanceof RequestError && e.info.kind === 'no-webgpu')) throw e;
    }
  }
  const client = await pageClient(onEvent);
  return { client, adapter: await client.call({ op: 'init' }) };
}
