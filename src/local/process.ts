import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';

export interface ProcessExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Set when the process could not be started at all (e.g. ENOENT). */
  error?: Error;
}

export interface ProcessOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** stdout and stderr are appended here. */
  logFile: string;
}

// Every child this process started and that has not exited yet. If this process dies (a test that
// times out, Ctrl-C, an uncaught exception) they are SIGKILLed, so no etcd or apiserver outlives it.
const liveChildren = new Set<ChildProcess>();
let exitHooksInstalled = false;

function killLiveChildren(): void {
  for (const child of liveChildren) {
    try {
      child.kill('SIGKILL');
    } catch {
      // Already gone.
    }
  }
}

function installExitHooks(): void {
  if (exitHooksInstalled) return;
  exitHooksInstalled = true;
  process.on('exit', killLiveChildren);
  for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143], ['SIGHUP', 129]] as const) {
    process.on(signal, () => {
      // A program that handles the signal itself (run --local stops cleanly on Ctrl-C) keeps its children.
      if (process.listenerCount(signal) > 1) return;
      killLiveChildren();
      process.exit(code);
    });
  }
}

/** The last `lines` lines of a log file, for error messages; empty if it cannot be read. */
export function logTail(file: string, lines = 20): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

/** A child process this program owns: it is killed by close() or when this program exits. */
export class ManagedProcess {
  readonly exited: Promise<ProcessExit>;
  private exitInfo: ProcessExit | undefined;
  private readonly child: ChildProcess;
  readonly name: string;

  constructor(name: string, command: string, args: readonly string[], options: ProcessOptions) {
    this.name = name;
    installExitHooks();
    const log = openSync(options.logFile, 'a');
    try {
      this.child = spawn(command, args, {
        cwd: options.cwd,
        env: options.env ?? process.env,
        stdio: ['ignore', log, log],
        // Its own process group: a Ctrl-C at the terminal reaches this program only, which then stops
        // its children in order (or kills them on exit) instead of etcd dying mid-run.
        detached: true,
      });
    } finally {
      closeSync(log);
    }
    liveChildren.add(this.child);
    this.exited = new Promise<ProcessExit>((resolve) => {
      const done = (exit: ProcessExit): void => {
        liveChildren.delete(this.child);
        this.exitInfo ??= exit;
        resolve(this.exitInfo);
      };
      this.child.once('error', (error) => done({ code: null, signal: null, error }));
      this.child.once('exit', (code, signal) => done({ code, signal }));
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** How the process ended, or undefined while it runs. */
  get exit(): ProcessExit | undefined {
    return this.exitInfo;
  }

  get running(): boolean {
    return this.exitInfo === undefined;
  }

  signal(signal: NodeJS.Signals): void {
    if (this.running) this.child.kill(signal);
  }

  /** SIGTERM, then SIGKILL if it has not exited after `graceMs`. */
  async stop(graceMs = 10_000): Promise<ProcessExit> {
    if (!this.running) return this.exited;
    this.child.kill('SIGCONT'); // a paused process cannot handle SIGTERM
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  async kill(): Promise<ProcessExit> {
    if (this.running) this.child.kill('SIGKILL');
    return this.exited;
  }

  async close(): Promise<void> {
    await this.kill();
  }
}
