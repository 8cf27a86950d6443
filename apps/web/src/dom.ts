// DOM helpers the panels share: element lookup, status lines, download links, drop zones, number formats.

export const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;

/** Sets a status line's text and its `data-state` (what the stylesheet and the browser tests read). */
export function setStatus(id: string, state: string, text: string): HTMLElement {
  const el = $(id);
  el.dataset.state = state;
  el.textContent = text;
  return el;
}

/** The download link `id` inside its `<id>-slot`, created on first use. */
export function slotLink(id: string, text: string, href: string, fileName: string): HTMLAnchorElement {
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

export function onDrop(zone: HTMLElement, handle: (files: FileList) => void): void {
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

export function formatMs(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(ms < 10 ? 1 : 0)} ms`;
}

export function formatBytes(n: number): string {
  return n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MB` : n >= 1024 ? `${(n / 1024).toFixed(1)} kB` : `${n} B`;
}
