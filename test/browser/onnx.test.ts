// An exported ONNX generator in real browsers with onnxruntime-web, served from node_modules on
// 127.0.0.1 (no network): Debian's Chromium (wasm EP, and the WebGPU EP on SwiftShader) and Firefox ESR
// (wasm EP; WebGPU where its build exposes navigator.gpu). Each output must match onnxruntime-node's CPU
// EP within 1e-4. The page is our own (no app build needed): it fetches the model and input, runs each
// EP, and POSTs the outputs back to this file's small server, which is how Firefox is driven too.
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { exportOnnx, readCheckpoint } from '@cg/cyclegan';
import ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { haveChromium, haveFirefox, launchChromium, launchFirefox } from './browsers.js';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const ORT_DIST = join(repo, 'test/node_modules/onnxruntime-web/dist');
const TOL = 1e-4;
const DIMS = [1, 3, 24, 32];
/**
 * Per browser: start, page, wasm init and one session per EP. Measured on the 2-core machine: Chromium
 * 5.4 s (wasm 1.1 s, WebGPU on SwiftShader 3.5 s), Firefox 9.1 s (wasm 2.2 s, WebGPU 4.8 s). The budget
 * leaves ~6× room for a loaded machine.
 */
const BROWSER_BUDGET_MS = 60_000;

const PAGE = `<!doctype html><meta charset="utf-8"><title>onnx</title><script type="module">
const tag = new URLSearchParams(location.search).get('tag');
const post = (body) => fetch('/result?tag=' + tag, { method: 'POST', body: JSON.stringify(body) });
try {
  const ort = await import('/ort/ort.all.min.mjs');
  ort.env.wasm.wasmPaths = '/ort/';
  ort.env.wasm.numThreads = 1; // threads need cross-origin isolation; one is enough for this net
  const model = new Uint8Array(await (await fetch('/model.onnx')).arrayBuffer());
  const input = new Float32Array(await (await fetch('/input.f32')).arrayBuffer());
  const dims = ${JSON.stringify(DIMS)};
  const out = {};
  const eps = ['wasm'];
  if ('gpu' in navigator && (await navigator.gpu.requestAdapter().catch(() => null))) eps.push('webgpu');
  for (const ep of eps) {
    const t0 = performance.now();
    try {
      const s = await ort.InferenceSession.create(model, { executionProviders: [ep] });
      const r = await s.run({ input: new ort.Tensor('float32', input, dims) });
      out[ep] = { data: Array.from(r.output.data), dims: r.output.dims, ms: performance.now() - t0 };
      await s.release();
    } catch (e) {
      out[ep] = { error: String(e && e.stack || e) };
    }
  }
  await post({ ok: true, out, userAgent: navigator.userAgent });
} catch (e) {
  await post({ ok: false, error: String(e && e.stack || e) });
}
</script>`;

interface EpResult {
  data?: number[];
  dims?: number[];
  ms?: number;
  error?: string;
}
interface PageResult {
  ok: boolean;
  error?: string;
  out?: Record<string, EpResult>;
  userAgent?: string;
}

let url = '';
let close: () => Promise<void> = async () => {};
const waiting = new Map<string, (r: PageResult) => void>();
let reference: Float32Array;

async function body(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

beforeAll(async () => {
  // ngf 4 resnet_9blocks (46k weights) and the 32×24 parity image's values, as in test/onnx.
  const file = join(repo, 'test/fixtures/parity/resnet9_instance_zip.pth');
  const model = exportOnnx(readCheckpoint(await readFile(file), file), { mode: 'eval' });
  const n = DIMS.reduce((a, b) => a * b, 1);
  const input = new Float32Array(n);
  for (let i = 0; i < n; i++) input[i] = Math.sin(i * 0.37) * 0.9;
  const s = await ort.InferenceSession.create(model, { executionProviders: ['cpu'], intraOpNumThreads: 1 });
  reference = (await s.run({ input: new ort.Tensor('float32', input, DIMS) })).output.data as Float32Array;
  await s.release();

  const MIME: Record<string, string> = {
    '.mjs': 'text/javascript',
    '.js': 'text/javascript',
    '.wasm': 'application/wasm',
  };
  const server = createServer((req, res) => {
    (async () => {
      const u = new URL(req.url ?? '/', 'http://127.0.0.1');
      const send = (status: number, type: string, data: string | Uint8Array) => {
        res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
        res.end(data);
      };
      if (req.method === 'POST' && u.pathname === '/result') {
        waiting.get(u.searchParams.get('tag') ?? '')?.(JSON.parse(await body(req)));
        return send(200, 'application/json', '{}');
      }
      if (u.pathname === '/index.html') return send(200, 'text/html; charset=utf-8', PAGE);
      if (u.pathname === '/model.onnx') return send(200, 'application/octet-stream', model);
      if (u.pathname === '/input.f32') return send(200, 'application/octet-stream', new Uint8Array(input.buffer));
      if (u.pathname.startsWith('/ort/')) {
        const path = normalize(join(ORT_DIST, u.pathname.slice('/ort/'.length)));
        if (!path.startsWith(ORT_DIST)) return send(403, 'text/plain', 'forbidden');
        const data = await readFile(path).catch(() => null);
        return data
          ? send(200, MIME[extname(path)] ?? 'application/octet-stream', data)
          : send(404, 'text/plain', 'no');
      }
      return send(404, 'text/plain', 'not found');
    })().catch((e) => {
      res.writeHead(500);
      res.end(String(e));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  close = () =>
    new Promise((r) => {
      server.closeAllConnections();
      server.close(() => r());
    });
});
afterAll(() => close());

function result(tag: string): Promise<PageResult> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${tag}: no result in ${BROWSER_BUDGET_MS} ms`)),
      BROWSER_BUDGET_MS,
    );
    waiting.set(tag, (r) => {
      clearTimeout(timer);
      resolve(r);
    });
  });
}

function check(tag: string, r: PageResult, expectWebgpu: boolean): void {
  expect(r.ok, r.error).toBe(true);
  const eps = Object.keys(r.out!);
  console.log(
    `${tag} (${r.userAgent}): ${eps.map((ep) => `${ep} ${r.out![ep].ms?.toFixed(0) ?? 'failed'} ms`).join(', ')}`,
  );
  if (expectWebgpu) expect(eps).toContain('webgpu');
  for (const ep of eps) {
    const o = r.out![ep];
    expect(o.error, `${tag} ${ep}`).toBeUndefined();
    expect(o.dims).toEqual(DIMS);
    let maxAbs = 0;
    for (let i = 0; i < reference.length; i++) maxAbs = Math.max(maxAbs, Math.abs(o.data![i] - reference[i]));
    console.log(`${tag} ${ep}: max abs vs onnxruntime-node ${maxAbs.toExponential(2)}`);
    expect(maxAbs, `${tag} ${ep} vs onnxruntime-node`).toBeLessThanOrEqual(TOL);
  }
}

describe('exported ONNX in browsers (onnxruntime-web)', () => {
  test.skipIf(!haveChromium())(
    'Chromium: wasm and WebGPU match onnxruntime-node',
    async () => {
      const browser = await launchChromium(true);
      try {
        const page = await browser.newPage();
        const done = result('chromium');
        await page.goto(`${url}/index.html?tag=chromium`);
        check('chromium', await done, true);
      } finally {
        await browser.close();
      }
    },
    BROWSER_BUDGET_MS + 30_000,
  );

  test.skipIf(!haveFirefox())(
    'Firefox ESR: wasm (and WebGPU where exposed) match onnxruntime-node',
    async () => {
      const done = result('firefox');
      const ff = await launchFirefox(`${url}/index.html?tag=firefox`);
      try {
        check('firefox', await done, false);
      } finally {
        await ff.close();
      }
    },
    BROWSER_BUDGET_MS + 30_000,
  );
});
