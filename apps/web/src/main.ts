// The page: the device line (device_status.ts) and one object per tab (translate_panel.ts, train_panel.ts),
// wired together here. No GPU work happens on this thread unless the browser's Workers lack WebGPU (then
// client.ts runs the engine in the page, yielding between requests).
import { DeviceStatus } from './device_status.js';
import { $ } from './dom.js';
import type { TranslateSettings } from './protocol.js';
import { TrainPanel } from './train_panel.js';
import { TranslatePanel } from './translate_panel.js';

const params = new URLSearchParams(location.search);
const where = params.get('engine');
// `?maxGpuMB=64`: the GPU memory a translation may use; photos that need more run in tiles (and tests force tiles).
const maxGpuMB = Number(params.get('maxGpuMB'));
const translateSettings: TranslateSettings = {
  ...(maxGpuMB > 0 ? { maxGpuBytes: Math.round(maxGpuMB * 2 ** 20) } : {}),
  // `?compileAhead=0`: kernels compile on first use, as before compiling ahead existed.
  compileAhead: params.get('compileAhead') !== '0',
};

// The hooks run only after connect(), by when both panels exist.
const device: DeviceStatus = new DeviceStatus(where === 'worker' || where === 'page' ? where : 'auto', {
  onEvent: (e) => {
    translate.onEngineEvent(e);
    train.onEngineEvent(e);
  },
  onLost: () => {
    translate.deviceLost();
    train.deviceLost();
  },
  onReconnected: () => translate.reload(),
});
const translate: TranslatePanel = new TranslatePanel(device, translateSettings);
const train: TrainPanel = new TrainPanel(device);

function selectTab(name: 'translate' | 'train'): void {
  for (const t of ['translate', 'train'] as const) {
    $(`tab-${t}`).setAttribute('aria-selected', String(t === name));
    $(`panel-${t}`).hidden = t !== name;
  }
  if (name === 'train') train.shown();
}

// A file dropped outside a drop zone would replace the page.
window.addEventListener('dragover', (e) => e.preventDefault());
window.addEventListener('drop', (e) => e.preventDefault());
$('tab-translate').onclick = () => selectTab('translate');
$('tab-train').onclick = () => selectTab('train');
if (location.hash === '#train') selectTab('train');
if (params.has('debug')) device.enableDebug();

void device.connect();
