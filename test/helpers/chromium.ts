import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** Debian's chromium, installed by scripts/install-system-deps.sh. No npm browser package is involved. */
export const CHROMIUM = '/usr/bin/chromium';

/** Flags for a hermetic run: no sandbox (root in a container), no GPU, and no background network traffic. */
const BASE_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export class ChromiumMissingError extends Error {
  override name = 'ChromiumMissingError';
}

/** Fails loudly: the report tests need a real browser and must not pass by skipping. */
export function requireChromium(): void {
  if (!existsSync(CHROMIUM)) {
    throw new ChromiumMissingError(`${CHROMIUM} is missing: run \`bash scripts/install-system-deps.sh\` (it installs Debian's chromium package)`);
  }
}

export interface ChromiumRun {
  stdout: string;
  stderr: string;
}

/** Pids of live processes whose command line mentions `dir` (every chromium process of a run names its profile or HOME). */
export function processesUsing(dir: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    let cmdline: string;
    try {
      cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
    } catch {
      continue; // exited meanwhile
    }
    if (cmdline.replaceAll('\0', ' ').includes(dir)) pids.push(Number(entry));
  }
  return pids;
}

/** Waits briefly for a run's helper processes (renderer, crashpad) to exit, then kills the rest by pid. */
export async function stopProcessesUsing(dir: string, graceMs = 3000): Promise<number[]> {
  const deadline = Date.now() + graceMs;
  let pids = processesUsing(dir);
  while (pids.length > 0 && Date.now() < deadline) {
    await sleep(100);
    pids = processesUsing(dir);
  }
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  return pids;
}

/**
 * One headless chromium run with a fresh profile under `root` (HOME too, so crash reports stay there).
 * A run that outlives `timeoutMs` is killed; either way no process of the run survives the call.
 */
export async function runChromium(root: string, args: string[], timeoutMs = 60_000): Promise<ChromiumRun> {
  requireChromium();
  const profile = mkdtempSync(path.join(root, 'profile-'));
  try {
    return await new Promise<ChromiumRun>((resolve, reject) => {
      execFile(
        CHROMIUM,
        [...BASE_FLAGS, `--user-data-dir=${profile}`, ...args],
        { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 256 * 1024 * 1024, env: { ...process.env, HOME: root } },
        (error, stdout, stderr) => {
          if (error) {
            const why = error.killed ? `killed after ${timeoutMs} ms` : error.message;
            reject(new Error(`chromium ${args.join(' ')} failed: ${why}\n${stderr.slice(-4000)}`));
          } else {
            resolve({ stdout, stderr });
          }
        },
      );
    });
  } finally {
    await stopProcessesUsing(root);
    rmSync(profile, { recursive: true, force: true });
  }
}

/** The DOM after the page's scripts ran, serialized. */
export async function dumpDom(root: string, file: string): Promise<string> {
  return (await runChromium(root, ['--dump-dom', `file://${file}`])).stdout;
}

export async function screenshot(root: string, file: string, png: string, size: [number, number] = [1400, 900]): Promise<void> {
  await runChromium(root, [`--screenshot=${png}`, `--window-size=${size[0]},${size[1]}`, `file://${file}`]);
}
