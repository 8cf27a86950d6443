// The page: wiring between the DOM and the engine (client.ts). No GPU work happens here unless the
// browser's Workers lack WebGPU (then client.ts runs the engine in the page, yielding between requests).
import { DISCRIMINATORS, GAN_MODES, GENERATORS, type RgbImage } from '@cg/cyclegan';
import { drawLossChart, LOSS_COLORS } from './chart.js';
import { type EngineClient, RequestError, startEngine } from './client.js';
import { decodeImage, drawImage, encodePng } from './image_io.js';
import type {
  AdapterInfo,
  EngineEvent,
  ErrorInfo,
  LossPoint,
  NamedImage,
  TrainData,
  TrainRunOptions,
  TrainSummary,
} from './protocol.js';

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
const params = new URLSearchParams(location.search);

const WEBGPU_HELP =
  'This page needs WebGPU: Chrome or Edge 113+ (Windows, macOS, ChromeOS, Android; on Linux start Chromium with ' +
  '--enable-unsafe-webgpu or enable chrome://flags/#enable-unsafe-webgpu), Firefox 141+ (Windows; elsewhere set ' +
  'dom.webgpu.enabled in about:config), or Safari 26+. The page must be served over https:// or from localhost.';

// ---- state ------------------------------------------------------------------------------------------------

let client: EngineClient | null = null;
let adapter: AdapterInfo | null = null;
let checkpoint: { bytes: Uint8Array; name: string } | null = null;
let generatorReady = false;
let inputImage: { image: RgbImage; name: string } | null = null;
let outputUrl: string | null = null;
let translating = false;

const trainFiles: { A: NamedImage[]; B: NamedImage[] } = { A: [], B: [] };
let trainState: 'idle' | 'running' | 'pausing' | 'paused' | 'done' | 'error' = 'idle';
let lossPoints: LossPoint[] = [];
let pauses: number[] = [];
let lastIter = 0;
let runMeta: { data: unknown; options: TrainRunOptions } | null = null;
let chartQueued = false;

// ---- messages ---------------------------------------------------------------------------------------------

function setStatus(id: string, state: string, text: string): HTMLElement {
  const el = $(id);
  el.dataset.state = state;
  el.textContent = text;
  return el;
}

function showBanner(kind: string, text: string, action?: { label: string; run: () => void }): void {
  const banner = $('banner');
  banner.hidden = false;
  banner.dataset.kind = kind;
  $('banner-text').textContent = text;
  const button = $<HTMLButtonElement>('banner-action');
  button.hidden = !action;
  if (action) {
    button.textContent = action.label;
    button.onclick = action.run;
  }
}

function hideBanner(): void {
  $('banner').hidden = true;
  delete $('banner').dataset.kind;
}

function errorInfo(e: unknown): ErrorInfo {
  if (e instanceof RequestError) return e.info;
  const err = e instanceof Error ? e : new Error(String(e));
  return { kind: 'other', name: err.name, message: err.message };
}

/** Shows device-level errors in the banner; returns the message for the panel that asked. */
function report(e: unknown): ErrorInfo {
  const info = errorInfo(e);
  if (info.kind === 'no-webgpu') showNoWebGpu(info.message);
  if (info.kind === 'device-lost') showDeviceLost(info.message);
  return info;
}

function showNoWebGpu(message: string): void {
  setStatus('device-status', 'error', 'WebGPU unavailable');
  const insecure = window.isSecureContext
    ? ''
    : ' This page is not a secure context (plain http from a non-local address), so the browser hides WebGPU.';
  showBanner('no-webgpu', `${message}${insecure}\n${WEBGPU_HELP}`);
}

function showDeviceLost(message: string): void {
  setStatus('device-status', 'lost', 'GPU device lost');
  generatorReady = false;
  updateTranslateButton();
  if (trainState === 'running' || trainState === 'pausing' || trainState === 'paused') setTrainState('error');
  showBanner('device-lost', message, { label: 'Reconnect', run: () => void reconnect() });
}

// ---- engine -----------------------------------------------------------------------------------------------

function onEngineEvent(e: EngineEvent): void {
  switch (e.event) {
    case 'deviceLost':
      showDeviceLost(e.message);
      break;
    case 'progress': {
      lastIter = e.iter;
      const p = $('train-progress');
      p.dataset.iter = String(e.iter);
      const eta = Number.isFinite(e.etaSec) ? ` · ETA ${formatSeconds(e.etaSec)}` : '';
      p.textContent =
        `epoch ${e.epoch}/${e.lastEpoch} · iteration ${e.epochIter}/${e.epochSize} of the epoch · ` +
        `${e.iter} in total · lr ${e.lr.toPrecision(3)}${eta}`;
      break;
    }
    case 'loss':
      lossPoints.push(e.point);
      $('loss-latest').textContent =
        `iter ${e.point.iter}: ` +
        Object.entries(e.point.losses)
          .map(([k, v]) => `${k} ${v.toFixed(3)}`)
          .join('  ') +
        `  (${formatMs(e.point.msPerIter)}/iter)`;
      if (!chartQueued) {
        chartQueued = true;
        requestAnimationFrame(() => {
          chartQueued = false;
          drawLossChart($<HTMLCanvasElement>('loss-chart'), lossPoints);
        });
      }
      break;
    case 'sample':
      drawImage($<HTMLCanvasElement>('sample-canvas'), transposeGrid(e.image, 6));
      $('sample-caption').textContent = `after iteration ${e.iter}`;
      break;
    case 'log':
      console.info(`[train] ${e.line}`);
      break;
  }
}

async function connect(): Promise<void> {
  const where = params.get('engine');
  try {
    const started = await startEngine(onEngineEvent, where === 'worker' || where === 'page' ? where : 'auto');
    client = started.client;
    adapter = started.adapter;
    showAdapter(adapter);
  } catch (e) {
    const info = report(e);
    if (info.kind !== 'no-webgpu') {
      setStatus('device-status', 'error', 'WebGPU failed');
      showBanner('error', info.message);
    }
  }
}

function showAdapter(a: AdapterInfo): void {
  const where = a.thread === 'worker' ? 'in a Worker' : 'on the page thread';
  setStatus(
    'device-status',
    'ready',
    `WebGPU: ${a.description}${a.isSoftware ? ' (software adapter: slow)' : ''} · GPU work ${where}`,
  );
}

async function reconnect(): Promise<void> {
  if (!client) return connect();
  try {
    adapter = await client.call({ op: 'init' });
    showAdapter(adapter);
    hideBanner();
    if (checkpoint) await loadCheckpoint(checkpoint.bytes, checkpoint.name);
  } catch (e) {
    report(e);
  }
}

// ---- translate --------------------------------------------------------------------------------------------

const NO_ENGINE = 'The GPU is not available: see the message at the top of the page.';

async function loadCheckpoint(bytes: Uint8Array, name: string): Promise<void> {
  if (!client) {
    setStatus('ckpt-status', 'error', NO_ENGINE);
    return;
  }
  generatorReady = false;
  updateTranslateButton();
  setStatus('ckpt-status', 'loading', `Reading ${name} (${formatBytes(bytes.length)})…`);
  try {
    const g = await client.call({ op: 'loadCheckpoint', bytes, name });
    checkpoint = { bytes, name };
    generatorReady = true;
    const s = g.spec;
    const notes = g.notes.length ? `\n${g.notes.join('\n')}` : '';
    setStatus(
      'ckpt-status',
      'ready',
      `${name}: ${g.netG}, ngf ${s.ngf}, ${s.norm} norm, ${s.input_nc}→${s.output_nc} channels, ` +
        `${g.params.toLocaleString('en')} parameters (image sides are padded to multiples of ${g.multiple} ` +
        `and cropped back).${notes}`,
    );
    updateTranslateButton();
    if (inputImage) await translate();
  } catch (e) {
    const info = report(e);
    setStatus(
      'ckpt-status',
      'error',
      info.kind === 'checkpoint'
        ? `This is not a usable CycleGAN generator checkpoint. ${info.message}`
        : `Could not load ${name}: ${info.message}`,
    );
  }
}

async function loadCheckpointUrl(url: string): Promise<void> {
  const name = decodeURIComponent(url.split(/[?#]/)[0].split('/').pop() || url);
  setStatus('ckpt-status', 'loading', `Downloading ${url}…`);
  let bytes: Uint8Array;
  try {
    const res = await fetch(url);
    if (!res.ok) throw new Error(`HTTP ${res.status} ${res.statusText}`);
    bytes = new Uint8Array(await res.arrayBuffer());
  } catch (e) {
    setStatus(
      'ckpt-status',
      'error',
      `Could not download ${url}: ${(e as Error).message}. The server must allow cross-origin requests (CORS) ` +
        'from this page; otherwise download the file and drop it here.',
    );
    return;
  }
  await loadCheckpoint(bytes, name);
}

async function loadInputImage(file: File): Promise<void> {
  setStatus('image-status', 'loading', `Decoding ${file.name}…`);
  try {
    const image = await decodeImage(file, file.name);
    inputImage = { image, name: file.name };
    drawImage($<HTMLCanvasElement>('input-canvas'), image);
    setStatus('image-status', 'ready', `${file.name}: ${image.width}×${image.height}`);
    updateTranslateButton();
    if (generatorReady) await translate();
  } catch (e) {
    setStatus('image-status', 'error', (e as Error).message);
  }
}

function updateTranslateButton(): void {
  $<HTMLButtonElement>('translate').disabled = !(generatorReady && inputImage) || translating;
}

async function translate(): Promise<void> {
  if (!client || !inputImage || !generatorReady || translating) return;
  translating = true;
  updateTranslateButton();
  const { image, name } = inputImage;
  setStatus('translate-status', 'running', `Translating ${image.width}×${image.height}…`);
  try {
    const out = await client.call({ op: 'translate', image });
    drawImage($<HTMLCanvasElement>('output-canvas'), out.image);
    const png = await encodePng(out.image);
    if (outputUrl) URL.revokeObjectURL(outputUrl);
    outputUrl = URL.createObjectURL(png);
    slotLink('download-output', 'Download result (PNG)', outputUrl, `${name.replace(/\.[^.]*$/, '')}_translated.png`);
    const el = setStatus(
      'translate-status',
      'done',
      `Translated ${out.image.width}×${out.image.height} in ${formatMs(out.ms)}` +
        (adapter ? ` on ${adapter.description}` : '') +
        ' (the first run of a model includes shader compilation).',
    );
    el.dataset.ms = out.ms.toFixed(1);
    el.dataset.count = String(Number(el.dataset.count ?? 0) + 1);
  } catch (e) {
    const info = report(e);
    setStatus('translate-status', 'error', `Translation failed: ${info.message}`);
  } finally {
    translating = false;
    updateTranslateButton();
  }
}

// ---- train ------------------------------------------------------------------------------------------------

function fillSelect(name: string, values: readonly string[], selected: string): void {
  const select = document.querySelector<HTMLSelectElement>(`#train-form [name=${name}]`)!;
  for (const v of values) select.add(new Option(v, v, v === selected, v === selected));
}

function formValue(name: string): string {
  return (document.querySelector(`#train-form [name=${name}]`) as HTMLInputElement).value;
}

function readTrainSettings(): { data: TrainData; options: TrainRunOptions } {
  const num = (name: string) => {
    const v = Number(formValue(name));
    if (!Number.isFinite(v)) throw new Error(`${name}: not a number`);
    return v;
  };
  const crop = num('crop_size');
  const seed = num('seed');
  const useFiles = (document.querySelector('input[name=data]:checked') as HTMLInputElement).value === 'files';
  if (useFiles && (trainFiles.A.length === 0 || trainFiles.B.length === 0)) {
    throw new Error('Drop at least one image into each domain (A and B), or use the synthetic domains.');
  }
  const data: TrainData = useFiles
    ? { kind: 'files', A: trainFiles.A, B: trainFiles.B }
    : { kind: 'synthetic', n: num('n_images'), size: crop, seed };
  const options: TrainRunOptions = {
    dataroot: 'data',
    name: 'web',
    checkpoints_dir: 'checkpoints',
    netG: formValue('netG') as TrainRunOptions['netG'],
    netD: formValue('netD') as TrainRunOptions['netD'],
    ngf: num('ngf'),
    ndf: num('ndf'),
    crop_size: crop,
    load_size: num('load_size'),
    n_epochs: num('n_epochs'),
    n_epochs_decay: num('n_epochs_decay'),
    lr: num('lr'),
    gan_mode: formValue('gan_mode') as TrainRunOptions['gan_mode'],
    lambda_identity: num('lambda_identity'),
    pool_size: num('pool_size'),
    seed,
    // Losses are read back every iteration: that feeds the live curves and lets a Worker see "pause".
    print_freq: 1,
    display_freq: num('display_freq'),
    save_latest_freq: 1e9,
    save_epoch_freq: 1e9,
  };
  return { data, options };
}

function setTrainState(state: typeof trainState, text?: string): void {
  trainState = state;
  const labels: Record<typeof trainState, string> = {
    idle: 'Not started.',
    running: 'Training…',
    pausing: 'Pausing after this iteration…',
    paused: `Paused after iteration ${lastIter}.`,
    done: `Done: ${lastIter} iterations.`,
    error: 'Stopped by an error.',
  };
  setStatus('train-status', state, text ?? labels[state]).dataset.iter = String(lastIter);
  $<HTMLButtonElement>('train-start').disabled = state === 'running' || state === 'pausing';
  $<HTMLButtonElement>('train-pause').disabled = state !== 'running';
  $<HTMLButtonElement>('train-resume').disabled = state !== 'paused';
  const canExport = state === 'paused' || state === 'done';
  for (const b of document.querySelectorAll<HTMLButtonElement>('button.export')) b.disabled = !canExport;
  $<HTMLButtonElement>('export-report').disabled = !canExport;
}

async function startTraining(): Promise<void> {
  if (!client) {
    setTrainState('error', NO_ENGINE);
    return;
  }
  let settings: { data: TrainData; options: TrainRunOptions };
  try {
    settings = readTrainSettings();
  } catch (e) {
    setTrainState('error', (e as Error).message);
    return;
  }
  lossPoints = [];
  pauses = [];
  lastIter = 0;
  $('export-links').replaceChildren();
  $('train-progress').textContent = 'Preparing data and building the networks…';
  delete $('train-progress').dataset.iter;
  const d = settings.data;
  runMeta = {
    data: d.kind === 'synthetic' ? d : { kind: 'files', A: d.A.map((f) => f.name), B: d.B.map((f) => f.name) },
    options: settings.options,
  };
  setTrainState('running');
  await trainingFinished(client.call({ op: 'train', data: settings.data, options: settings.options }));
}

async function trainingFinished(call: Promise<TrainSummary>): Promise<void> {
  try {
    const summary = await call;
    lastIter = summary.totalIters;
    if (summary.stopped) pauses.push(summary.totalIters);
    setTrainState(summary.stopped ? 'paused' : 'done');
  } catch (e) {
    const info = report(e);
    setTrainState('error', `Training stopped: ${info.message}`);
  }
  updateLossLog();
}

function updateLossLog(): void {
  const old = document.getElementById('download-log') as HTMLAnchorElement | null;
  if (old) URL.revokeObjectURL(old.href);
  const log = { adapter, ...runMeta, points: lossPoints, pauses, state: trainState };
  const url = URL.createObjectURL(new Blob([JSON.stringify(log, null, 1)], { type: 'application/json' }));
  slotLink('download-log', 'Loss log (JSON)', url, 'losses.json');
}

/** The download link `id` inside its `<id>-slot`, created on first use. */
function slotLink(id: string, text: string, href: string, fileName: string): HTMLAnchorElement {
  let a = document.getElementById(id) as HTMLAnchorElement | null;
  if (!a) {
    a = document.createElement('a');
    a.id = id;
    a.textContent = text;
    $(`${id}-slot`).append(a);
  }
  a.href = href;
  a.download = fileName;
  return a;
}

function offerDownload(blob: Blob, name: string, data: Record<string, string> = {}): void {
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = name;
  a.textContent = `${name} (${formatBytes(blob.size)})`;
  Object.assign(a.dataset, data);
  $('export-links').append(a);
  a.click();
}

async function exportGenerator(net: 'G_A' | 'G_B', format: 'safetensors' | 'pth'): Promise<void> {
  if (!client) return;
  try {
    const { bytes, name } = await client.call({ op: 'export', net, format });
    offerDownload(new Blob([bytes as BlobPart]), name, { net, format });
  } catch (e) {
    setStatus('train-status', trainState, `Export failed: ${report(e).message}`);
  }
}

async function exportReport(): Promise<void> {
  if (!client) return;
  try {
    const { html } = await client.call({ op: 'report' });
    offerDownload(new Blob([html], { type: 'text/html' }), 'report.html', { report: '1' });
  } catch (e) {
    setStatus('train-status', trainState, `Report failed: ${report(e).message}`);
  }
}

async function addTrainFiles(domain: 'A' | 'B', files: FileList | File[]): Promise<void> {
  const status = $('data-status');
  const images: NamedImage[] = [];
  const bad: string[] = [];
  for (const file of Array.from(files)) {
    try {
      images.push({ name: file.name, image: await decodeImage(file, file.name) });
    } catch (e) {
      bad.push((e as Error).message);
    }
  }
  trainFiles[domain].push(...images);
  (document.querySelector('input[name=data][value=files]') as HTMLInputElement).checked = true;
  status.dataset.state = bad.length ? 'error' : 'files';
  status.textContent =
    `Domain A: ${trainFiles.A.length} images, domain B: ${trainFiles.B.length} images ` +
    '(resized to load_size and randomly cropped to crop_size, as the official resize_and_crop).' +
    (bad.length ? `\nSkipped: ${bad.join('; ')}` : '');
}

// ---- helpers ----------------------------------------------------------------------------------------------

/**
 * The trainer's sample grid has one row per visual (real_A … rec_B) and one column per batch image, with
 * 2-pixel padding; shown transposed, a batch of one is a single strip of six images that fits the card.
 */
function transposeGrid(grid: RgbImage, rows: number, pad = 2): RgbImage {
  const cellH = (grid.height - (rows + 1) * pad) / rows;
  if (!Number.isInteger(cellH) || grid.channels !== 3) return grid;
  const cols = Math.round((grid.width - pad) / (cellH + pad)); // cells are square for square crops
  const cellW = (grid.width - (cols + 1) * pad) / cols;
  if (!Number.isInteger(cellW) || cols < 1) return grid;
  const out = { width: grid.height, height: grid.width, channels: 3 as const, data: new Uint8Array(grid.data.length) };
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      for (let y = 0; y < cellH; y++) {
        const from = ((pad + r * (cellH + pad) + y) * grid.width + pad + c * (cellW + pad)) * 3;
        const to = ((pad + c * (cellW + pad) + y) * out.width + pad + r * (cellH + pad)) * 3;
        out.data.set(grid.data.subarray(from, from + cellW * 3), to);
      }
    }
  }
  // Transposing swaps the cell sides too; only square cells keep their rows intact.
  return cellW === cellH ? out : grid;
}

function formatMs(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(ms < 10 ? 1 : 0)} ms`;
}

function formatSeconds(s: number): string {
  if (s < 60) return `${s.toFixed(0)} s`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m} min ${Math.round(s % 60)} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
}

function formatBytes(n: number): string {
  return n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MB` : n >= 1024 ? `${(n / 1024).toFixed(1)} kB` : `${n} B`;
}

function onDrop(zone: HTMLElement, handle: (files: FileList) => void): void {
  zone.addEventListener('dragover', (e) => {
    e.preventDefault();
    zone.classList.add('over');
  });
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', (e) => {
    e.preventDefault();
    zone.classList.remove('over');
    if (e.dataTransfer?.files.length) handle(e.dataTransfer.files);
  });
}

function selectTab(name: 'translate' | 'train'): void {
  for (const t of ['translate', 'train'] as const) {
    $(`tab-${t}`).setAttribute('aria-selected', String(t === name));
    $(`panel-${t}`).hidden = t !== name;
  }
  if (name === 'train') drawLossChart($<HTMLCanvasElement>('loss-chart'), lossPoints);
}

// ---- wiring -----------------------------------------------------------------------------------------------

function wire(): void {
  // A file dropped outside a drop zone would replace the page.
  window.addEventListener('dragover', (e) => e.preventDefault());
  window.addEventListener('drop', (e) => e.preventDefault());

  $('tab-translate').onclick = () => selectTab('translate');
  $('tab-train').onclick = () => selectTab('train');
  if (location.hash === '#train') selectTab('train');

  const readCkpt = async (file: File) => loadCheckpoint(new Uint8Array(await file.arrayBuffer()), file.name);
  $<HTMLInputElement>('ckpt-file').onchange = (e) => {
    const f = (e.target as HTMLInputElement).files?.[0];
    if (f) void readCkpt(f);
  };
  onDrop($('ckpt-drop'), (files) => void readCkpt(files[0]));
  $('ckpt-url-form').onsubmit = (e) => {
    e.preventDefault();
    const url = $<HTMLInputElement>('ckpt-url').value.trim();
    if (url) void loadCheckpointUrl(url);
  };
  $<HTMLInputElement>('image-file').onchange = (e) => {
    const f = (e.target as HTMLInputElement).files?.[0];
    if (f) void loadInputImage(f);
  };
  onDrop($('image-drop'), (files) => void loadInputImage(files[0]));
  $('translate').onclick = () => void translate();

  fillSelect('netG', GENERATORS, 'resnet_6blocks');
  fillSelect('netD', DISCRIMINATORS, 'basic');
  fillSelect('gan_mode', GAN_MODES, 'lsgan');
  for (const d of ['A', 'B'] as const) {
    $<HTMLInputElement>(`files-${d}`).onchange = (e) => {
      const files = (e.target as HTMLInputElement).files;
      if (files?.length) void addTrainFiles(d, files);
    };
    onDrop($(`drop-${d}`), (files) => void addTrainFiles(d, files));
  }
  $('train-start').onclick = () => void startTraining();
  $('train-pause').onclick = () => {
    setTrainState('pausing');
    void client?.call({ op: 'pause' });
  };
  $('train-resume').onclick = () => {
    if (!client) return;
    setTrainState('running');
    void trainingFinished(client.call({ op: 'resume' }));
  };
  for (const b of document.querySelectorAll<HTMLButtonElement>('button.export')) {
    b.onclick = () => void exportGenerator(b.dataset.net as 'G_A' | 'G_B', b.dataset.format as 'safetensors' | 'pth');
  }
  $('export-report').onclick = () => void exportReport();
  $('loss-legend').replaceChildren(
    ...Object.entries(LOSS_COLORS).map(([name, color]) => {
      const s = document.createElement('span');
      s.style.setProperty('--c', color);
      s.textContent = name;
      return s;
    }),
  );
  $('data-status').textContent = 'Using the synthetic domains.';

  if (params.has('debug')) {
    $('debug').hidden = false;
    $('lose-device').onclick = () => void client?.call({ op: 'loseDevice' });
  }
}

wire();
setTrainState('idle');
void connect();
