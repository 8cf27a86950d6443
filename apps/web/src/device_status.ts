// The header's device line and the banner below it. Owns the engine connection (client.ts): starts it,
// shows which adapter does the GPU work, and turns device-level errors (no WebGPU, device lost) into the
// banner's messages and its Reconnect button. The panels reach the engine through `client`.
import { type EngineClient, RequestError, startEngine } from './client.js';
import { $, setStatus } from './dom.js';
import type { AdapterInfo, EngineEvent, ErrorInfo } from './protocol.js';

const WEBGPU_HELP =
  'This page needs WebGPU: Chrome or Edge 113+ (Windows, macOS, ChromeOS, Android; on Linux start Chromium with ' +
  '--enable-unsafe-webgpu or enable chrome://flags/#enable-unsafe-webgpu), Firefox 141+ (Windows; elsewhere set ' +
  'dom.webgpu.enabled in about:config), or Safari 26+. The page must be served over https:// or from localhost.';

/** What a panel says when it needs the engine and there is none. */
export const NO_ENGINE = 'The GPU is not available: see the message at the top of the page.';

export type EngineWhere = 'auto' | 'worker' | 'page';

/** The engine events the panels get; `deviceLost` stays here. */
export type PanelEvent = Exclude<EngineEvent, { event: 'deviceLost' }>;

/** What the panels do when the device changes; the device line knows nothing else about them. */
export interface DeviceHooks {
  /** Training progress, losses, samples and log lines. */
  onEvent(e: PanelEvent): void;
  /** The device is gone, and everything that lived on it. */
  onLost(): void;
  /** Reconnect gave a new device: rebuild what lived on the old one. */
  onReconnected(): Promise<void>;
}

function errorInfo(e: unknown): ErrorInfo {
  if (e instanceof RequestError) return e.info;
  const err = e instanceof Error ? e : new Error(String(e));
  return { kind: 'other', name: err.name, message: err.message };
}

export class DeviceStatus {
  private engine: EngineClient | null = null;
  private adapterInfo: AdapterInfo | null = null;

  constructor(
    private readonly where: EngineWhere,
    private readonly hooks: DeviceHooks,
  ) {}

  /** null until the engine has started (and for good when it could not). */
  get client(): EngineClient | null {
    return this.engine;
  }

  get adapter(): AdapterInfo | null {
    return this.adapterInfo;
  }

  async connect(): Promise<void> {
    try {
      const started = await startEngine((e) => this.onEngineEvent(e), this.where);
      this.engine = started.client;
      this.adapterInfo = started.adapter;
      this.showAdapter(started.adapter);
    } catch (e) {
      const info = this.report(e);
      if (info.kind !== 'no-webgpu') {
        setStatus('device-status', 'error', 'WebGPU failed');
        this.showBanner('error', info.message);
      }
    }
  }

  /** Shows device-level errors in the banner; returns the message for the panel that asked. */
  report(e: unknown): ErrorInfo {
    const info = errorInfo(e);
    if (info.kind === 'no-webgpu') this.showNoWebGpu(info.message);
    if (info.kind === 'device-lost') this.showDeviceLost(info.message);
    return info;
  }

  /** `?debug`: a button that loses the device on purpose (what a driver reset looks like to the page). */
  enableDebug(): void {
    $('debug').hidden = false;
    $('lose-device').onclick = () => void this.engine?.call({ op: 'loseDevice' });
  }

  private onEngineEvent(e: EngineEvent): void {
    if (e.event === 'deviceLost') this.showDeviceLost(e.message);
    else this.hooks.onEvent(e);
  }

  private async reconnect(): Promise<void> {
    if (!this.engine) return this.connect();
    try {
      this.adapterInfo = await this.engine.call({ op: 'init' });
      this.showAdapter(this.adapterInfo);
      this.hideBanner();
      await this.hooks.onReconnected();
    } catch (e) {
      this.report(e);
    }
  }

  private showAdapter(a: AdapterInfo): void {
    const where = a.thread === 'worker' ? 'in a Worker' : 'on the page thread';
    setStatus(
      'device-status',
      'ready',
      `WebGPU: ${a.description}${a.isSoftware ? ' (software adapter: slow)' : ''} · GPU work ${where}`,
    );
  }

  private showNoWebGpu(message: string): void {
    setStatus('device-status', 'error', 'WebGPU unavailable');
    const insecure = window.isSecureContext
      ? ''
      : ' This page is not a secure context (plain http from a non-local address), so the browser hides WebGPU.';
    this.showBanner('no-webgpu', `${message}${insecure}\n${WEBGPU_HELP}`);
  }

  private showDeviceLost(message: string): void {
    setStatus('device-status', 'lost', 'GPU device lost');
    this.hooks.onLost();
    this.showBanner('device-lost', message, { label: 'Reconnect', run: () => void this.reconnect() });
  }

  private showBanner(kind: string, text: string, action?: { label: string; run: () => void }): void {
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

  private hideBanner(): void {
    $('banner').hidden = true;
    delete $('banner').dataset.kind;
  }
}
