// The Translate tab: a generator checkpoint (file, drop or URL), an input image, and the translation with
// its PNG download. The engine holds the generator; this panel keeps the checkpoint's bytes so Reconnect
// can load it again on a new device. One progress bar shows the engine's work: compiling the generator's
// kernels ahead (after a load), then the translation (tile by tile for a large photo).
import { exportOnnx, loadCheckpoint, type RgbImage } from '@cg/cyclegan';
import { type DeviceStatus, NO_ENGINE, type PanelEvent } from './device_status.js';
import { $, formatBytes, formatMs, onDrop, setStatus, slotLink } from './dom.js';
import { decodeImage, drawImage, encodePng } from './image_io.js';
import type { TranslateSettings } from './protocol.js';

export class TranslatePanel {
  private checkpoint: { bytes: Uint8Array; name: string } | null = null;
  private generatorReady = false;
  private inputImage: { image: RgbImage; name: string } | null = null;
  private outputUrl: string | null = null;
  private translating = false;
  /** The engine's compile ahead in progress, and the running translation's (its share done, null: not known yet). */
  private compile: { done: number; total: number } | null = null;
  private translation: { fraction: number | null } | null = null;

  constructor(
    private readonly device: DeviceStatus,
    private readonly settings: TranslateSettings = {},
  ) {
    const readCkpt = async (file: File) => this.loadCheckpoint(new Uint8Array(await file.arrayBuffer()), file.name);
    $<HTMLInputElement>('ckpt-file').onchange = (e) => {
      const f = (e.target as HTMLInputElement).files?.[0];
      if (f) void readCkpt(f);
    };
    onDrop($('ckpt-drop'), (files) => void readCkpt(files[0]));
    $('ckpt-url-form').onsubmit = (e) => {
      e.preventDefault();
      const url = $<HTMLInputElement>('ckpt-url').value.trim();
      if (url) void this.loadCheckpointUrl(url);
    };
    $<HTMLInputElement>('image-file').onchange = (e) => {
      const f = (e.target as HTMLInputElement).files?.[0];
      if (f) void this.loadInputImage(f);
    };
    onDrop($('image-drop'), (files) => void this.loadInputImage(files[0]));
    $('translate').onclick = () => void this.translate();
    $('export-onnx').onclick = () => this.exportOnnx();
  }

  /**
   * The loaded generator as ONNX, made on the page from the checkpoint's bytes: it needs no GPU, and the
   * export checks the keys again. Eval semantics (running batch-norm statistics, dropout as identity).
   */
  private exportOnnx(): void {
    if (!this.checkpoint) return;
    const { bytes, name } = this.checkpoint;
    try {
      const onnx = exportOnnx(loadCheckpoint(bytes, name), { mode: 'eval', source: name });
      const url = URL.createObjectURL(new Blob([onnx as BlobPart], { type: 'application/octet-stream' }));
      const file = `${name.replace(/\.[^.]*$/, '')}.onnx`;
      slotLink('download-onnx', `Download ${file} (${formatBytes(onnx.length)})`, url, file).click();
    } catch (e) {
      setStatus('ckpt-status', 'error', `Could not export ${name} as ONNX: ${this.device.report(e).message}`);
    }
  }

  /** The engine's progress: compiling kernels ahead, then translating. Other events are the Train tab's. */
  onEngineEvent(e: PanelEvent): void {
    if (e.event === 'compileProgress') {
      this.compile = e.done < e.total ? { done: e.done, total: e.total } : null;
      if (!this.compile) {
        const box = $('translate-progress-box');
        box.dataset.compiled = String(e.total / 2); // two steps per pipeline: compiled, then primed
        box.dataset.compileMs = e.ms.toFixed(0);
      }
    } else if (e.event === 'translateProgress') {
      // The page-thread engine's events come as tasks, so one may trail its translation's reply.
      if (!this.translating) return;
      this.translation = { fraction: e.fraction };
    } else {
      return;
    }
    this.showProgress();
  }

  /**
   * The progress bar and its line: the running translation's, else a compile's (ahead of one, or in the
   * background after one), else hidden. `data-phase` is what the browser tests read.
   */
  private showProgress(): void {
    const box = $('translate-progress-box');
    const bar = $<HTMLProgressElement>('translate-progress');
    const text = $('translate-progress-text');
    const t = this.translation;
    const phase = t ? 'translate' : this.compile ? 'compile' : null;
    box.hidden = phase === null;
    box.dataset.phase = phase ?? '';
    if (t?.fraction === null) {
      bar.removeAttribute('value'); // indeterminate
      text.textContent = 'Translating…';
    } else if (t) {
      bar.value = t.fraction;
      text.textContent = `Translating… ${Math.floor(t.fraction * 100)} %`;
    } else if (this.compile) {
      bar.value = this.compile.done / this.compile.total;
      text.textContent = `Compiling kernels… ${Math.floor((100 * this.compile.done) / this.compile.total)} %`;
    }
  }

  /** The generator went with the device. */
  deviceLost(): void {
    this.generatorReady = false;
    this.compile = null;
    this.showProgress();
    this.updateTranslateButton();
  }

  /** After Reconnect: the same checkpoint on the new device (which translates the image again). */
  async reload(): Promise<void> {
    if (this.checkpoint) await this.loadCheckpoint(this.checkpoint.bytes, this.checkpoint.name);
  }

  private async loadCheckpoint(bytes: Uint8Array, name: string): Promise<void> {
    const client = this.device.client;
    if (!client) {
      setStatus('ckpt-status', 'error', NO_ENGINE);
      return;
    }
    this.generatorReady = false;
    this.updateTranslateButton();
    setStatus('ckpt-status', 'loading', `Reading ${name} (${formatBytes(bytes.length)})…`);
    try {
      // The image already on the page gets its kernels compiled ahead too.
      const img = this.inputImage?.image;
      const imageSize: [number, number] | undefined = img ? [img.width, img.height] : undefined;
      const g = await client.call({ op: 'loadCheckpoint', bytes, name, imageSize, settings: this.settings });
      this.checkpoint = { bytes, name };
      this.generatorReady = true;
      const s = g.spec;
      const notes = g.notes.length ? `\n${g.notes.join('\n')}` : '';
      setStatus(
        'ckpt-status',
        'ready',
        `${name}: ${g.netG}, ngf ${s.ngf}, ${s.norm} norm, ${s.input_nc}→${s.output_nc} channels, ` +
          `${g.params.toLocaleString('en')} parameters (image sides are padded to multiples of ${g.multiple} ` +
          `and cropped back).${notes}`,
      );
      this.updateTranslateButton();
      if (this.inputImage) await this.translate();
    } catch (e) {
      const info = this.device.report(e);
      setStatus(
        'ckpt-status',
        'error',
        info.kind === 'checkpoint'
          ? `This is not a usable CycleGAN generator checkpoint. ${info.message}`
          : `Could not load ${name}: ${info.message}`,
      );
    }
  }

  private async loadCheckpointUrl(url: string): Promise<void> {
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
    await this.loadCheckpoint(bytes, name);
  }

  private async loadInputImage(file: File): Promise<void> {
    setStatus('image-status', 'loading', `Decoding ${file.name}…`);
    try {
      const image = await decodeImage(file, file.name);
      this.inputImage = { image, name: file.name };
      drawImage($<HTMLCanvasElement>('input-canvas'), image);
      setStatus('image-status', 'ready', `${file.name}: ${image.width}×${image.height}`);
      this.updateTranslateButton();
      if (this.generatorReady) await this.translate();
    } catch (e) {
      setStatus('image-status', 'error', (e as Error).message);
    }
  }

  /** Buttons that need the loaded generator (an export of it would be enabled here too) follow its state. */
  private updateTranslateButton(): void {
    $<HTMLButtonElement>('translate').disabled = !(this.generatorReady && this.inputImage) || this.translating;
    $<HTMLButtonElement>('export-onnx').disabled = !(this.generatorReady && this.checkpoint);
  }

  private async translate(): Promise<void> {
    const client = this.device.client;
    if (!client || !this.inputImage || !this.generatorReady || this.translating) return;
    this.translating = true;
    this.updateTranslateButton();
    const { image, name } = this.inputImage;
    setStatus('translate-status', 'running', `Translating ${image.width}×${image.height}…`);
    try {
      const out = await client.call({ op: 'translate', image, name, settings: this.settings });
      drawImage($<HTMLCanvasElement>('output-canvas'), out.image);
      const png = await encodePng(out.image);
      if (this.outputUrl) URL.revokeObjectURL(this.outputUrl);
      this.outputUrl = URL.createObjectURL(png);
      const base = name.replace(/\.[^.]*$/, '');
      slotLink('download-output', 'Download result (PNG)', this.outputUrl, `${base}_translated.png`);
      const el = setStatus(
        'translate-status',
        'done',
        `Translated ${out.image.width}×${out.image.height} in ${formatMs(out.ms)}` +
          (out.tiled ? ' in tiles' : '') +
          (this.device.adapter ? ` on ${this.device.adapter.description}` : '') +
          (out.compiled > 0 ? ` (including ${out.compiled} kernels compiled on first use)` : '') +
          '.',
      );
      el.dataset.ms = out.ms.toFixed(1);
      el.dataset.compiled = String(out.compiled);
      el.dataset.tiled = String(out.tiled);
      el.dataset.count = String(Number(el.dataset.count ?? 0) + 1);
    } catch (e) {
      const info = this.device.report(e);
      setStatus('translate-status', 'error', `Translation failed: ${info.message}`);
    } finally {
      this.translating = false;
      this.translation = null;
      this.showProgress();
      this.updateTranslateButton();
    }
  }
}
