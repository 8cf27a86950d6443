// The engine in a dedicated Worker: GPU work and training never block the page.
import { Engine } from './engine.js';
import type { EngineEvent, FromEngine, ToEngine } from './protocol.js';

interface WorkerScope {
  postMessage(message: FromEngine): void;
  addEventListener(type: 'message', listener: (e: MessageEvent<ToEngine>) => void): void;
}

const scope = globalThis as unknown as WorkerScope;
const engine = new Engine((e: EngineEvent) => scope.postMessage(e), 'worker');

scope.addEventListener('message', (e) => {
  const { id, req } = e.data;
  engine.handle(req).then(
    (result) => scope.postMessage({ id, ok: true, result }),
    (err: unknown) => scope.postMessage({ id, ok: false, error: engine.errorInfo(err) }),
  );
});
