import { bar, formatDuration } from './cli_args.js';
import type { TrainProgress } from './trainer.js';

/** A progress line that redraws in place on a terminal and prints every few seconds otherwise. */
export function progressPrinter(): (p: TrainProgress) => void {
  let last = 0;
  return (p) => {
    const now = Date.now();
    const tty = process.stderr.isTTY;
    if (!tty && now - last < 5000 && p.epochIter !== p.epochSize) return;
    last = now;
    const losses = Object.entries(p.losses)
      .filter(([k]) => ['G_A', 'G_B', 'D_A', 'D_B', 'cycle_A', 'cycle_B'].includes(k))
      .map(([k, v]) => `${k} ${v.toFixed(3)}`)
      .join(' ');
    const line = `epoch ${p.epoch}/${p.lastEpoch} ${bar(p.epochIter, p.epochSize, 20)} | ${losses} | ${p.imagesPerSec.toFixed(2)} img/s | ETA ${formatDuration(p.etaSec)}`;
    process.stderr.write(tty ? `\r\x1b[K${line}` : `${line}\n`);
  };
}
