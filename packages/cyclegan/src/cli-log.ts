// The CLI's one output channel for messages: stderr, so stdout stays free for data.
export function log(msg: string): void {
  process.stderr.write(`${msg}\n`);
}
