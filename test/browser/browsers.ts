// Debian's own browsers, never a downloaded build (docs/ARCHITECTURE.md §10): Chromium driven by playwright-core, Firefox
// ESR started headless with a throw-away profile (the page reports back to the test server by itself).
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Browser, chromium } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';
export const FIREFOX = '/usr/bin/firefox-esr';

export const haveChromium = () => existsSync(CHROMIUM);
export const haveFirefox = () => existsSync(FIREFOX);

/** Closed network: no update checks, sync, QUIC or first-run pages. */
const CHROMIUM_ARGS = [
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export function launchChromium(webgpu: boolean): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: webgpu ? [...CHROMIUM_ARGS, '--enable-unsafe-webgpu'] : CHROMIUM_ARGS,
    timeout: 60_000,
  });
}

const FIREFOX_PREFS: Record<string, string | number | boolean> = {
  'dom.webgpu.enabled': true,
  'dom.webgpu.workers.enabled': true,
  'gfx.webgpu.ignore-blocklist': true,
  'browser.shell.checkDefaultBrowser': false,
  'browser.startup.homepage_override.mstone': 'ignore',
  'browser.aboutwelcome.enabled': false,
  'datareporting.policy.dataSubmissionEnabled': false,
  'datareporting.healthreport.uploadEnabled': false,
  'toolkit.telemetry.reportingpolicy.firstRun': false,
  'app.update.disabledForTesting': true,
  'app.normandy.enabled': false,
  'extensions.update.enabled': false,
  'network.captive-portal-service.enabled': false,
  'network.connectivity-service.enabled': false,
  'browser.safebrowsing.update.enabled': false,
  'browser.download.folderList': 2,
  'browser.download.useDownloadDir': true,
  'browser.download.always_ask_before_handling_new_types': false,
  'browser.download.start_downloads_in_tmp_dir': true,
  'dom.disable_open_during_load': false,
};

export interface FirefoxRun {
  process: ChildProcess;
  output: () => string;
  close(): Promise<void>;
}

export async function launchFirefox(url: string): Promise<FirefoxRun> {
  const profile = await mkdtemp(join(tmpdir(), 'cg-firefox-'));
  const downloads = join(profile, 'downloads');
  const prefs = { ...FIREFOX_PREFS, 'browser.download.dir': downloads };
  await writeFile(
    join(profile, 'user.js'),
    Object.entries(prefs)
      .map(([k, v]) => `user_pref(${JSON.stringify(k)}, ${JSON.stringify(v)});`)
      .join('\n'),
  );
  const child = spawn(FIREFOX, ['--headless', '--no-remote', '--profile', profile, url], {
    env: { ...process.env, MOZ_HEADLESS: '1', XDG_RUNTIME_DIR: profile },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let out = '';
  child.stdout?.on('data', (d) => {
    out = (out + d).slice(-20_000);
  });
  child.stderr?.on('data', (d) => {
    out = (out + d).slice(-20_000);
  });
  return {
    process: child,
    output: () => out,
    async close() {
      if (child.exitCode === null && child.pid) {
        const exited = new Promise((r) => child.once('exit', r));
        try {
          process.kill(-child.pid, 'SIGTERM'); // the process group we started: Firefox and its content processes
        } catch {}
        await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
        if (child.exitCode === null) {
          try {
            process.kill(-child.pid, 'SIGKILL');
          } catch {}
        }
      }
      await rm(profile, { recursive: true, force: true });
    },
  };
}
