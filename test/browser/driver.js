// In-page test driver, injected by server.ts into /test.html. It uses the app as a person would (files into
// its file inputs, clicks, form fields) and POSTs what it saw back to the test server, so any browser can be
// tested without a browser-specific automation protocol.
const tag = new URLSearchParams(location.search).get('tag') ?? '';
const q = `?tag=${encodeURIComponent(tag)}`;
const cfg = await (await fetch(`./__test/config${q}`)).json();
const $ = (id) => document.getElementById(id);
const post = (path, body) => fetch(`./__test/${path}${q}`, { method: 'POST', body });
const log = (line) => post('log', line);
const stage = (name, data = null) => post(`stage/${name}`, JSON.stringify(data));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Longest gap between two polls: how long the page's main thread was blocked, at worst. */
let maxGapMs = 0;

/** What the translate panel's progress bar showed, each change once (reset per translation). */
let progressSeen = [];

function sampleProgress() {
  const box = $('translate-progress-box');
  if (!box || box.hidden || progressSeen.length >= 500) return;
  const seen = {
    phase: box.dataset.phase,
    text: $('translate-progress-text').textContent,
    value: $('translate-progress').value,
  };
  const last = progressSeen.at(-1);
  if (!last || last.text !== seen.text || last.value !== seen.value) progressSeen.push(seen);
}

async function waitFor(pred, what, timeoutMs = cfg.stepTimeoutMs) {
  const t0 = performance.now();
  for (let last = t0; ; ) {
    const now = performance.now();
    maxGapMs = Math.max(maxGapMs, now - last);
    last = now;
    sampleProgress();
    const v = pred();
    if (v) return v;
    const bannerKind = $('banner').dataset.kind;
    if (bannerKind && !cfg.expectBanner) throw new Error(`${what}: banner ${bannerKind}: ${$('banner').textContent}`);
    if (performance.now() - t0 > timeoutMs) {
      const states = ['device-status', 'ckpt-status', 'translate-status', 'train-status', 'train-progress']
        .map((id) => `${id}=${$(id).dataset.state}: ${$(id).textContent}`)
        .join(' | ');
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (${states})`);
    }
    await sleep(50);
  }
}

function setFiles(input, files) {
  const dt = new DataTransfer();
  for (const f of files) dt.items.add(f);
  input.files = dt.files;
  input.dispatchEvent(new Event('change', { bubbles: true }));
}

async function fixture(name, type = 'application/octet-stream') {
  const blob = await (await fetch(`./fixtures/${name}`)).blob();
  return new File([blob], name, { type });
}

async function base64Of(url) {
  const bytes = new Uint8Array(await (await fetch(url)).arrayBuffer());
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

const count = () => Number($('translate-status').dataset.count ?? 0);

/**
 * Waits for the next finished translation and returns what the page shows and offers for download: its time,
 * the kernels it still compiled on first use, whether it ran in tiles, what the progress bar showed on the way
 * (compiling ahead, then translating), and the last compile ahead's size and time.
 */
async function nextTranslation(before, what) {
  progressSeen = [];
  await waitFor(
    () =>
      count() > before || $('translate-status').dataset.state === 'error' || $('ckpt-status').dataset.state === 'error',
    what,
  );
  if (count() <= before)
    throw new Error(`${what}: ${$('ckpt-status').textContent} ${$('translate-status').textContent}`);
  const status = $('translate-status').dataset;
  const box = $('translate-progress-box').dataset;
  return {
    ms: Number(status.ms),
    compiled: Number(status.compiled),
    tiled: status.tiled === 'true',
    compileAhead: { pipelines: Number(box.compiled), ms: Number(box.compileMs) },
    progress: progressSeen,
    text: $('translate-status').textContent,
    png: await base64Of($('download-output').href),
  };
}

async function translatePart(result) {
  // A corrupt checkpoint: the page must say so, not crash.
  setFiles($('ckpt-file'), [await fixture(cfg.fixtures.corrupt)]);
  await waitFor(() => $('ckpt-status').dataset.state === 'error', 'the corrupt-checkpoint message');
  result.corruptMessage = $('ckpt-status').textContent;

  setFiles($('image-file'), [await fixture(cfg.fixtures.image, 'image/png')]);
  await waitFor(() => $('image-status').dataset.state === 'ready', 'the input image');

  // Our safetensors, by URL; the translation starts by itself once both are there.
  let n = count();
  $('ckpt-url').value = `./fixtures/${cfg.fixtures.safetensors}`;
  $('ckpt-url-load').click();
  const first = await nextTranslation(n, 'translation with the .safetensors (by URL)');
  result.checkpointInfo = $('ckpt-status').textContent;
  n = count();
  $('translate').click();
  const second = await nextTranslation(n, 'second translation');
  result.translations = [
    { checkpoint: 'safetensors', ...first },
    { checkpoint: 'safetensors', ...second },
  ];
  await stage('translated');

  // The same weights as a PyTorch .pth (zip), picked as a file.
  n = count();
  setFiles($('ckpt-file'), [await fixture(cfg.fixtures.pth)]);
  result.translations.push({ checkpoint: 'pth', ...(await nextTranslation(n, 'translation with the .pth')) });

  // The loaded generator as ONNX, made on the page.
  $('export-onnx').click();
  const onnx = await waitFor(() => document.getElementById('download-onnx'), 'the Export ONNX download');
  result.translateOnnx = await base64Of(onnx.href);
}

/**
 * A photo large enough to run in tiles (the page's URL sets a small maxGpuMB), translated as soon as it is
 * picked; then the small input again, so later parts translate what they expect.
 */
async function largePhotoPart(result) {
  $('tab-translate').click();
  await waitFor(() => !$('translate').disabled, 'the translate panel to be idle');
  let n = count();
  maxGapMs = 0;
  const t0 = performance.now();
  setFiles($('image-file'), [await fixture(cfg.fixtures.large, 'image/png')]);
  const t = await nextTranslation(n, 'translation of the large photo');
  result.large = { ...t, wallMs: performance.now() - t0, maxMainThreadGapMs: maxGapMs };
  await stage('large');
  n = count();
  setFiles($('image-file'), [await fixture(cfg.fixtures.image, 'image/png')]);
  await nextTranslation(n, 'translation of the small input again');
}

async function trainPart(result) {
  $('tab-train').click();
  const form = $('train-form');
  for (const [k, v] of Object.entries(cfg.trainForm)) {
    const el = form.elements.namedItem(k);
    if (!el) throw new Error(`no form field ${k}`);
    el.value = String(v);
  }
  $('train-start').click();
  const t0 = performance.now();
  maxGapMs = 0;
  const iter = () => Number($('train-progress').dataset.iter ?? 0);
  await waitFor(() => iter() >= cfg.pauseAfter || $('train-status').dataset.state === 'error', 'training to start');
  $('train-pause').click();
  await waitFor(() => ['paused', 'done', 'error'].includes($('train-status').dataset.state), 'training to pause');
  if ($('train-status').dataset.state !== 'paused') throw new Error(`pause: ${$('train-status').textContent}`);
  result.pausedAt = Number($('train-status').dataset.iter);
  $('train-resume').click();
  await waitFor(() => ['done', 'error'].includes($('train-status').dataset.state), 'training to finish');
  if ($('train-status').dataset.state !== 'done') throw new Error(`training: ${$('train-status').textContent}`);
  result.trainSeconds = (performance.now() - t0) / 1000;
  result.trainMaxMainThreadGapMs = maxGapMs;
  result.trainLog = JSON.parse(await (await fetch($('download-log').href)).text());
  result.sampleShown = $('sample-canvas').width > 1;

  result.exports = {};
  for (const [net, format] of [
    ['G_A', 'safetensors'],
    ['G_B', 'pth'],
    ['G_A', 'onnx'],
  ]) {
    document.querySelector(`button.export[data-net=${net}][data-format=${format}]`).click();
    const link = await waitFor(
      () => document.querySelector(`#export-links a[data-net=${net}][data-format=${format}]`),
      `export of ${net} .${format}`,
    );
    result.exports[`${net}.${format}`] = await base64Of(link.href);
  }
  $('export-report').click();
  const report = await waitFor(() => document.querySelector('#export-links a[data-report]'), 'report.html');
  result.reportBytes = (await (await fetch(report.href)).arrayBuffer()).byteLength;
  await stage('trained');
}

/** Training on images dropped into the two domains (here picked through the file inputs). */
async function trainFilesPart(result) {
  $('tab-train').click();
  const { A, B } = cfg.fixtures.domains;
  setFiles($('files-A'), await Promise.all(A.map((f) => fixture(f, 'image/png'))));
  setFiles($('files-B'), await Promise.all(B.map((f) => fixture(f, 'image/png'))));
  const want = `Domain A: ${A.length} images, domain B: ${B.length} images`;
  await waitFor(() => $('data-status').textContent.startsWith(want), 'the dropped training images');
  const form = $('train-form');
  for (const [k, v] of Object.entries(cfg.trainForm)) form.elements.namedItem(k).value = String(v);
  $('train-start').click();
  await waitFor(() => ['done', 'error'].includes($('train-status').dataset.state), 'training on the dropped images');
  if ($('train-status').dataset.state !== 'done') throw new Error(`training: ${$('train-status').textContent}`);
  result.filesTrainLog = JSON.parse(await (await fetch($('download-log').href)).text());
}

async function deviceLossPart(result) {
  $('tab-translate').click();
  cfg.expectBanner = true;
  $('lose-device').click();
  await waitFor(() => $('banner').dataset.kind === 'device-lost', 'the device-lost message');
  result.deviceLostMessage = $('banner').textContent.trim();
  const n = count();
  $('banner-action').click();
  if (cfg.translateAfterReconnect) {
    // Reconnecting reloads the checkpoint, which translates the image again.
    const after = await nextTranslation(n, 'translation after reconnecting');
    result.afterReconnect = { png: after.png, banner: $('banner').hidden };
  } else {
    await waitFor(
      () => $('device-status').dataset.state === 'ready' && $('ckpt-status').dataset.state === 'ready',
      'the checkpoint reloaded after reconnecting',
    );
    result.afterReconnect = { png: null, banner: $('banner').hidden };
  }
}

const result = { tag, userAgent: navigator.userAgent, errors: [] };
try {
  await waitFor(() => $('device-status').dataset.state !== 'starting', 'WebGPU start', cfg.startTimeoutMs);
  result.device = { state: $('device-status').dataset.state, text: $('device-status').textContent };
  result.banner = $('banner').hidden ? null : { kind: $('banner').dataset.kind, text: $('banner').textContent };
  if (result.device.state === 'ready') {
    for (const part of cfg.parts) {
      const t0 = performance.now();
      await log(`${part}…`);
      await {
        translate: translatePart,
        largePhoto: largePhotoPart,
        train: trainPart,
        trainFiles: trainFilesPart,
        deviceLoss: deviceLossPart,
      }[part](result);
      await log(`${part} done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }
  }
} catch (e) {
  result.errors.push(String(e?.stack ?? e));
}
await post('result', JSON.stringify(result));
