import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, closeSync, constants, openSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { holdUntil } from '../faults/hold.ts';
import { logger } from '../log.ts';

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
  /**
   * The kernel sends the child this signal when this program dies, even by SIGKILL (prctl
   * PR_SET_PDEATHSIG, set by util-linux `setpriv --pdeathsig` just before it execs the command, so the
   * pid stays the command's). Without setpriv on the PATH the child is spawned directly, with a warning.
   */
  parentDeathSignal?: NodeJS.Signals;
  /**
   * What the child gets when this program exits without closing it (default SIGKILL). A child that
   * cleans up after itself (a fault agent heals its faults) gets SIGTERM instead.
   */
  exitSignal?: NodeJS.Signals;
}

let setprivPath: string | null | undefined;

/** util-linux setpriv on the PATH (or in /usr/bin, /bin), or null. */
export function findSetpriv(): string | null {
  if (setprivPath !== undefined) return setprivPath;
  const dirs = [...(process.env['PATH'] ?? '').split(path.delimiter).filter((d) => d !== ''), '/usr/bin', '/bin'];
  setprivPath = null;
  for (const dir of dirs) {
    const candidate = path.join(dir, 'setpriv');
    try {
      accessSync(candidate, constants.X_OK);
      setprivPath = candidate;
      break;
    } catch {
      // Not here.
    }
  }
  return setprivPath;
}

let warnedNoSetpriv = false;

/** The command line that runs `command` with a parent-death signal, or the command itself. */
function withParentDeathSignal(name: string, command: string, args: readonly string[], signal: NodeJS.Signals | undefined): [string, readonly string[]] {
  if (signal === undefined || process.platform !== 'linux') return [command, args];
  const setpriv = findSetpriv();
  if (setpriv === null) {
    if (!warnedNoSetpriv) {
      warnedNoSetpriv = true;
      logger.warn(`setpriv (util-linux) not found: ${name} and other children will not die with this program if it is SIGKILLed`);
    }
    return [command, args];
  }
  return [setpriv, ['--pdeathsig', signal.replace(/^SIG/, ''), '--', command, ...args]];
}

/**
 * The delay before restarting a supervised process, like a kubelet's crash-loop back-off: `initialMs`
 * after a process that ran `stableMs` or more, doubling on each quick crash up to `maxMs`.
 */
export class RestartBackoff {
  private delayMs: number;
  private readonly initialMs: number;
  private readonly maxMs: number;
  private readonly stableMs: number;

  constructor(options: { initialMs?: number; maxMs?: number; stableMs?: number } = {}) {
    this.initialMs = options.initialMs ?? 200;
    this.maxMs = options.maxMs ?? 2000;
    this.stableMs = options.stableMs ?? 10_000;
    this.delayMs = this.initialMs;
  }

  /** The delay before the next start, given how long the process that just exited ran. */
  next(ranMs: number): number {
    if (ranMs >= this.stableMs) this.delayMs = this.initialMs;
    const delay = this.delayMs;
    this.delayMs = Math.min(this.maxMs, this.delayMs * 2);
    return delay;
  }
}

/** "code 2", "signal SIGKILL" or the spawn error, for log lines. */
export function describeExit(exit: ProcessExit): string {
  if (exit.error) return `spawn error: ${exit.error.message}`;
  return exit.signal ? `signal ${exit.signal}` : `code ${exit.code ?? '?'}`;
}

// Every child this process started and that has not exited yet. If this process dies (a test that
// times out, Ctrl-C, an uncaught exception) they are SIGKILLed, so no etcd or apiserver outlives it.
const liveChildren = new Map<ChildProcess, NodeJS.Signals>();
let exitHooksInstalled = false;

function killLiveChildren(): void {
  for (const [child, signal] of liveChildren) {
    try {
      child.kill(signal);
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
  /** Date.now() when it was spawned. */
  readonly startedAt = Date.now();

  constructor(name: string, command: string, args: readonly string[], options: ProcessOptions) {
    this.name = name;
    installExitHooks();
    const [file, argv] = withParentDeathSignal(name, command, args, options.parentDeathSignal);
    const log = openSync(options.logFile, 'a');
    try {
      this.child = spawn(file, argv, {
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
    liveChildren.set(this.child, options.exitSignal ?? 'SIGKILL');
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

export interface SupervisionOptions {
  supervise: boolean;
  /**
   * A hold file (src/faults/hold.ts; the crash fault's `<data-dir>.hold`): while it exists and holds an
   * expiry in the future, a restart waits, polling it every `holdPollMs` (default 100 ms); it happens as
   * soon as the file is gone or expired. An unreadable one is ignored. Explicit start() calls ignore it.
   */
  holdFile?: string;
  holdPollMs?: number;
}

/**
 * A child that is started again when it exits without being asked to, the way a kubelet restarts a
 * container: etcd members (after a kill fault or a panic) and fault agents. Supervision begins once the
 * owner says the child was ready (markReady), so one that cannot start at all fails fast instead.
 */
export class SupervisedProcess {
  private proc: ManagedProcess | undefined;
  private stopRequested = false;
  private ready = false;
  private restartTimer: NodeJS.Timeout | undefined;
  private readonly backoff = new RestartBackoff();
  private restartCount = 0;
  private heldUntil: number | undefined;
  private readonly label: string;
  private readonly launch: () => ManagedProcess;
  private readonly supervise: boolean;
  private readonly holdFile: string | undefined;
  private readonly holdPollMs: number;

  /** `label` names the child in log lines ("etcd member m1"); `launch` spawns one instance. */
  constructor(label: string, launch: () => ManagedProcess, options: SupervisionOptions) {
    this.label = label;
    this.launch = launch;
    this.supervise = options.supervise;
    this.holdFile = options.holdFile;
    this.holdPollMs = options.holdPollMs ?? 100;
  }

  /** The expiry (ms since the epoch) of the hold file a pending restart is waiting on, if any. */
  get held(): number | undefined {
    return this.heldUntil;
  }

  get current(): ManagedProcess | undefined {
    return this.proc;
  }

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  get running(): boolean {
    return this.proc?.running ?? false;
  }

  get restarts(): number {
    return this.restartCount;
  }

  /** stop() or kill() was called since the last start(). */
  get stopped(): boolean {
    return this.stopRequested;
  }

  /** An exit now would be followed by a restart. */
  get restarting(): boolean {
    return this.supervise && this.ready && !this.stopRequested;
  }

  markReady(): void {
    this.ready = true;
  }

  start(): void {
    this.stopRequested = false;
    this.cancelRestart();
    if (this.running) return;
    this.spawn();
  }

  private spawn(): void {
    const proc = this.launch();
    this.proc = proc;
    void proc.exited.then((exit) => {
      if (proc !== this.proc || !this.restarting) return;
      const delay = this.backoff.next(Date.now() - proc.startedAt);
      logger.warn(`${this.label} (pid ${proc.pid ?? '?'}) exited unexpectedly (${describeExit(exit)}); restarting it in ${delay} ms`);
      this.restartTimer = setTimeout(() => this.restartUnlessHeld(), delay);
    });
  }

  /** Restarts the child now, or polls again later while a hold file holds it down. */
  private restartUnlessHeld(): void {
    this.restartTimer = undefined;
    if (this.stopRequested || this.running) return;
    const until = this.holdFile === undefined ? undefined : holdUntil(this.holdFile);
    if (until !== undefined) {
      if (this.heldUntil !== until) logger.info(`${this.label} is held down by ${this.holdFile ?? ''} until ${new Date(until).toISOString()}`);
      this.heldUntil = until;
      this.restartTimer = setTimeout(() => this.restartUnlessHeld(), Math.max(1, Math.min(this.holdPollMs, until - Date.now())));
      return;
    }
    if (this.heldUntil !== undefined) logger.info(`${this.label}: the hold is released`);
    this.heldUntil = undefined;
    this.restartCount += 1;
    this.spawn();
    logger.info(`${this.label} restarted (pid ${this.proc?.pid ?? '?'}, restart ${this.restartCount})`);
  }

  private cancelRestart(): void {
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
    this.heldUntil = undefined;
  }

  async kill(): Promise<ProcessExit | undefined> {
    this.stopRequested = true;
    this.cancelRestart();
    return this.proc?.kill();
  }

  async stop(graceMs?: number): Promise<ProcessExit | undefined> {
    this.stopRequested = true;
    this.cancelRestart();
    return this.proc?.stop(graceMs);
  }

  signal(signal: NodeJS.Signals): void {
    this.proc?.signal(signal);
  }
}

/**
 * One GET of a local server's readiness endpoint: undefined when it answered 2xx, else why not (the
 * status, or the connection error), for a wait's timeout message.
 */
export async function httpNotReady(url: string, headers: Record<string, string> = {}): Promise<string | undefined> {
  try {
    const response = await fetch(url, { headers, signal: AbortSignal.timeout(1000) });
    await response.arrayBuffer();
    return response.ok ? undefined : `HTTP ${response.status}`;
  } catch (error) {
    return (error as Error).message;
  }
}
