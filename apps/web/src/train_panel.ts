// The Train tab: the data (synthetic domains or dropped images), the options form, start/pause/resume, the
// live losses and samples from the engine's events, and the exports (generators, report.html, loss log).
import { DISCRIMINATORS, formatDuration, GAN_MODES, GENERATORS, type RgbImage } from '@cg/cyclegan';
import { drawLossChart, LOSS_COLORS } from './chart.js';
import { type DeviceStatus, NO_ENGINE, type PanelEvent } from './device_status.js';
import { $, formatBytes, formatMs, onDrop, setStatus, slotLink } from './dom.js';
import { decodeImage, drawImage } from './image_io.js';
import type {
  ExportFormat,
  GeneratorNet,
  LossPoint,
  NamedImage,
  TrainData,
  TrainRunOptions,
  TrainSummary,
} from './protocol.js';

type TrainState = 'idle' | 'running' | 'pausing' | 'paused' | 'done' | 'error';

function fillSelect(name: string, values: readonly string[], selected: string): void {
  const select = document.querySelector<HTMLSelectElement>(`#train-form [name=${name}]`)!;
  for (const v of values) select.add(new Option(v, v, v === selected, v === selected));
}

function formValue(name: string): string {
  return (document.querySelector(`#train-form [name=${name}]`) as HTMLInputElement).value;
}

export class TrainPanel {
  private readonly files: { A: NamedImage[]; B: NamedImage[] } = { A: [], B: [] };
  private state: TrainState = 'idle';
  private lossPoints: LossPoint[] = [];
  private pauses: number[] = [];
  private lastIter = 0;
  private runMeta: { data: unknown; options: TrainRunOptions } | null = null;
  private chartQueued = false;

  constructor(private readonly device: DeviceStatus) {
    fillSelect('netG', GENERATORS, 'resnet_6blocks');
    fillSelect('netD', DISCRIMINATORS, 'basic');
    fillSelect('gan_mode', GAN_MODES, 'lsgan');
    for (const d of ['A', 'B'] as const) {
      $<HTMLInputElement>(`files-${d}`).onchange = (e) => {
        const files = (e.target as HTMLInputElement).files;
        if (files?.length) void this.addFiles(d, files);
      };
      onDrop($(`drop-${d}`), (files) => void this.addFiles(d, files));
    }
    $('train-start').onclick = () => void this.start();
    $('train-pause').onclick = () => {
      this.setState('pausing');
      void this.device.client?.call({ op: 'pause' });
    };
    $('train-resume').onclick = () => {
      const client = this.device.client;
      if (!client) return;
      this.setState('running');
      void this.finished(client.call({ op: 'resume' }));
    };
    // Every `button.export` names its generator and format (data-net, data-format): index.html's Export card.
    for (const b of document.querySelectorAll<HTMLButtonElement>('button.export')) {
      b.onclick = () => void this.exportGenerator(b.dataset.net as GeneratorNet, b.dataset.format as ExportFormat);
    }
    $('export-report').onclick = () => void this.exportReport();
    $('loss-legend').replaceChildren(
      ...Object.entries(LOSS_COLORS).map(([name, color]) => {
        const s = document.createElement('span');
        s.style.setProperty('--c', color);
        s.textContent = name;
        return s;
      }),
    );
    $('data-status').textContent = 'Using the synthetic domains.';
    this.setState('idle');
  }

  /** The tab became visible: the chart can only be sized now. */
  shown(): void {
    drawLossChart($<HTMLCanvasElement>('loss-chart'), this.lossPoints);
  }

  /** A run on the lost device cannot go on. */
  deviceLost(): void {
    if (this.state === 'running' || this.state === 'pausing' || this.state === 'paused') this.setState('error');
  }

  onEngineEvent(e: PanelEvent): void {
    switch (e.event) {
      case 'progress': {
        this.lastIter = e.iter;
        const p = $('train-progress');
        p.dataset.iter = String(e.iter);
        const eta = Number.isFinite(e.etaSec) ? ` · ETA ${formatDuration(e.etaSec)}` : '';
        p.textContent =
          `epoch ${e.epoch}/${e.lastEpoch} · iteration ${e.epochIter}/${e.epochSize} of the epoch · ` +
          `${e.iter} in total · lr ${e.lr.toPrecision(3)}${eta}`;
        break;
      }
      case 'loss':
        this.lossPoints.push(e.point);
        $('loss-latest').textContent =
          `iter ${e.point.iter}: ` +
          Object.entries(e.point.losses)
            .map(([k, v]) => `${k} ${v.toFixed(3)}`)
            .join('  ') +
          `  (${formatMs(e.point.msPerIter)}/iter)`;
        if (!this.chartQueued) {
          this.chartQueued = true;
          requestAnimationFrame(() => {
            this.chartQueued = false;
            drawLossChart($<HTMLCanvasElement>('loss-chart'), this.lossPoints);
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

  private readSettings(): { data: TrainData; options: TrainRunOptions } {
    const num = (name: string) => {
      const v = Number(formValue(name));
      if (!Number.isFinite(v)) throw new Error(`${name}: not a number`);
      return v;
    };
    const crop = num('crop_size');
    const seed = num('seed');
    const useFiles = (document.querySelector('input[name=data]:checked') as HTMLInputElement).value === 'files';
    if (useFiles && (this.files.A.length === 0 || this.files.B.length === 0)) {
      throw new Error('Drop at least one image into each domain (A and B), or use the synthetic domains.');
    }
    const data: TrainData = useFiles
      ? { kind: 'files', A: this.files.A, B: this.files.B }
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

  private setState(state: TrainState, text?: string): void {
    this.state = state;
    const labels: Record<TrainState, string> = {
      idle: 'Not started.',
      running: 'Training…',
      pausing: 'Pausing after this iteration…',
      paused: `Paused after iteration ${this.lastIter}.`,
      done: `Done: ${this.lastIter} iterations.`,
      error: 'Stopped by an error.',
    };
    setStatus('train-status', state, text ?? labels[state]).dataset.iter = String(this.lastIter);
    $<HTMLButtonElement>('train-start').disabled = state === 'running' || state === 'pausing';
    $<HTMLButtonElement>('train-pause').disabled = state !== 'running';
    $<HTMLButtonElement>('train-resume').disabled = state !== 'paused';
    const canExport = state === 'paused' || state === 'done';
    for (const b of document.querySelectorAll<HTMLButtonElement>('button.export')) b.disabled = !canExport;
    $<HTMLButtonElement>('export-report').disabled = !canExport;
  }

  private async start(): Promise<void> {
    const client = this.device.client;
    if (!client) {
      this.setState('error', NO_ENGINE);
      return;
    }
    let settings: { data: TrainData; options: TrainRunOptions };
    try {
      settings = this.readSettings();
    } catch (e) {
      this.setState('error', (e as Error).message);
      return;
    }
    this.lossPoints = [];
    this.pauses = [];
    this.lastIter = 0;
    $('export-links').replaceChildren();
    $('train-progress').textContent = 'Preparing data and building the networks…';
    delete $('train-progress').dataset.iter;
    const d = settings.data;
    this.runMeta = {
      data: d.kind === 'synthetic' ? d : { kind: 'files', A: d.A.map((f) => f.name), B: d.B.map((f) => f.name) },
      options: settings.options,
    };
    this.setState('running');
    await this.finished(client.call({ op: 'train', data: settings.data, options: settings.options }));
  }

  private async finished(call: Promise<TrainSummary>): Promise<void> {
    try {
      const summary = await call;
      this.lastIter = summary.totalIters;
      if (summary.stopped) this.pauses.push(summary.totalIters);
      this.setState(summary.stopped ? 'paused' : 'done');
    } catch (e) {
      const info = this.device.report(e);
      this.setState('error', `Training stopped: ${info.message}`);
    }
    this.updateLossLog();
  }

  private updateLossLog(): void {
    const old = document.getElementById('download-log') as HTMLAnchorElement | null;
    if (old) URL.revokeObjectURL(old.href);
    const log = {
      adapter: this.device.adapter,
      ...this.runMeta,
      points: this.lossPoints,
      pauses: this.pauses,
      state: this.state,
    };
    const url = URL.createObjectURL(new Blob([JSON.stringify(log, null, 1)], { type: 'application/json' }));
    slotLink('download-log', 'Loss log (JSON)', url, 'losses.json');
  }

  private offerDownload(blob: Blob, name: string, data: Record<string, string> = {}): void {
    const a = document.createElement('a');
    a.href = URL.createObjectURL(blob);
    a.download = name;
    a.textContent = `${name} (${formatBytes(blob.size)})`;
    Object.assign(a.dataset, data);
    $('export-links').append(a);
    a.click();
  }

  /** One `button.export`: the engine serializes the generator, the page offers the file. */
  private async exportGenerator(net: GeneratorNet, format: ExportFormat): Promise<void> {
    const client = this.device.client;
    if (!client) return;
    try {
      const { bytes, name } = await client.call({ op: 'export', net, format });
      this.offerDownload(new Blob([bytes as BlobPart]), name, { net, format });
    } catch (e) {
      setStatus('train-status', this.state, `Export failed: ${this.device.report(e).message}`);
    }
  }

  private async exportReport(): Promise<void> {
    const client = this.device.client;
    if (!client) return;
    try {
      const { html } = await client.call({ op: 'report' });
      this.offerDownload(new Blob([html], { type: 'text/html' }), 'report.html', { report: '1' });
    } catch (e) {
      setStatus('train-status', this.state, `Report failed: ${this.device.report(e).message}`);
    }
  }

  private async addFiles(domain: 'A' | 'B', files: FileList | File[]): Promise<void> {
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
    this.files[domain].push(...images);
    (document.querySelector('input[name=data][value=files]') as HTMLInputElement).checked = true;
    status.dataset.state = bad.length ? 'error' : 'files';
    status.textContent =
      `Domain A: ${this.files.A.length} images, domain B: ${this.files.B.length} images ` +
      '(resized to load_size and randomly cropped to crop_size, as the official resize_and_crop).' +
      (bad.length ? `\nSkipped: ${bad.join('; ')}` : '');
  }
}

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
