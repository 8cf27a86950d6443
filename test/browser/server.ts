// A tiny HTTP server on 127.0.0.1 for the browser tests: the built app (apps/web/dist), the fixtures, and
// the endpoints the in-page driver (driver.js) talks to. Browsers need no driver protocol of their own: the
// page POSTs its progress and results back here, which is how Firefox is tested.
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, normalize } from 'node:path';

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.wasm': 'application/wasm',
};

export interface TestServerOptions {
  /** The built site. */
  root: string;
  /** Served at /fixtures/<name>. */
  fixtures: Record<string, Uint8Array>;
  /** Served at /__test/config?tag=… for the driver of that page. */
  config: (tag: string) => unknown;
  /** The driver's source, injected into /test.html. */
  driver: string;
  log?: (tag: string, line: string) => void;
}

export interface TestRun {
  /** Resolves with the driver's final result. */
  result: Promise<unknown>;
  /** Called for each stage the driver reaches; the driver waits until it returns (e.g. for a screenshot). */
  onStage?: (stage: string, data: unknown) => Promise<void>;
}

export interface TestServer {
  url: string;
  /** Starts waiting for one page run tagged `tag` (`/test.html?tag=…`). */
  expect(tag: string, onStage?: TestRun['onStage']): Promise<unknown>;
  close(): Promise<void>;
}

async function body(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export async function startServer(o: TestServerOptions): Promise<TestServer> {
  const runs = new Map<string, { resolve: (v: unknown) => void; onStage?: TestRun['onStage'] }>();
  const indexHtml = await readFile(join(o.root, 'index.html'), 'utf8');
  const testHtml = indexHtml.replace('</body>', '<script type="module" src="./__test/driver.js"></script>\n</body>');

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const path = decodeURIComponent(url.pathname);
    const send = (status: number, type: string, data: string | Uint8Array) => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(data);
    };
    const tag = url.searchParams.get('tag') ?? '';
    if (req.method === 'POST' && path.startsWith('/__test/')) {
      const text = await body(req);
      const what = path.slice('/__test/'.length);
      if (what === 'log') {
        o.log?.(tag, text);
      } else if (what === 'result') {
        runs.get(tag)?.resolve(JSON.parse(text));
      } else if (what.startsWith('stage/')) {
        await runs.get(tag)?.onStage?.(what.slice('stage/'.length), JSON.parse(text || 'null'));
      }
      return send(200, MIME['.json'], '{}');
    }
    if (path === '/test.html') return send(200, MIME['.html'], testHtml);
    if (path === '/__test/driver.js') return send(200, MIME['.js'], o.driver);
    if (path === '/__test/config') return send(200, MIME['.json'], JSON.stringify(o.config(tag)));
    if (path.startsWith('/fixtures/')) {
      const f = o.fixtures[path.slice('/fixtures/'.length)];
      return f ? send(200, 'application/octet-stream', f) : send(404, 'text/plain', 'no such fixture');
    }
    if (path === '/favicon.ico') return send(204, 'text/plain', '');
    const file = normalize(join(o.root, path === '/' ? 'index.html' : path));
    if (!file.startsWith(o.root)) return send(403, 'text/plain', 'forbidden');
    try {
      return send(200, MIME[extname(file)] ?? 'application/octet-stream', await readFile(file));
    } catch {
      return send(404, 'text/plain', 'not found');
    }
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((e) => {
      res.writeHead(500);
      res.end(String(e));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    expect(tag, onStage) {
      return new Promise((resolve) => runs.set(tag, { resolve, onStage }));
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
