/**
 * The HTTP witness (`etcd-robustness witness`) as a child process of this program, for the local runtime
 * and the tests: spawned like the fault agents (this package's CLI under node, a parent-death signal,
 * --exit-with-parent). It keeps its port across restarts, so `url` stays valid: the first start listens
 * on the given port, or on a free one the witness picks and prints.
 *
 * It is not restarted when it exits by itself (a witness that died stays down until restart(): a crash
 * test decides when it comes back).
 */
import { mkdirSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import path from 'node:path';
import { pollUntil } from '../poll.ts';
import { cliEntryPoint } from './etcd-cluster.ts';
import { describeExit, httpNotReady, logTail, ManagedProcess, type ProcessExit } from './process.ts';

export interface LocalWitnessOptions {
  /** The witness's data dir (its record is DIR/witness.json); created if missing. */
  dataDir: string;
  /** Default: a free port the witness picks at its first start. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** Where its stdout and stderr go (appended); default DIR/witness.log. */
  logFile?: string;
}

/** The witness's first line on stdout. */
const listeningLine = /^witness listening on (http:\/\/\S+)$/m;

function fileSize(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

async function readFrom(file: string, offset: number): Promise<string> {
  let handle;
  try {
    handle = await open(file, 'r');
  } catch {
    return '';
  }
  try {
    const { size } = await handle.stat();
    if (size <= offset) return '';
    const buffer = Buffer.alloc(size - offset);
    await handle.read(buffer, 0, buffer.length, offset);
    return buffer.toString('utf8');
  } finally {
    await handle.close();
  }
}

export class LocalWitness {
  readonly dataDir: string;
  readonly host: string;
  readonly logFile: string;
  private port: number | undefined;
  private proc: ManagedProcess | undefined;
  /** The log file's size when the current process was spawned: its listening line comes after it. */
  private logOffset = 0;

  constructor(options: LocalWitnessOptions) {
    this.dataDir = path.resolve(options.dataDir);
    this.host = options.host ?? '127.0.0.1';
    this.port = options.port === 0 ? undefined : options.port;
    this.logFile = options.logFile ?? path.join(this.dataDir, 'witness.log');
  }

  /** The witness's URL; known once a port was given or the first start is ready. */
  get url(): string {
    if (this.port === undefined) throw new Error('the local witness has no port yet: start() and waitReady() first');
    const host = this.host.includes(':') ? `[${this.host}]` : this.host;
    return `http://${host}:${this.port}`;
  }

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  get running(): boolean {
    return this.proc?.running ?? false;
  }

  /** How the current (last) process ended; undefined while it runs or before start(). */
  get exit(): ProcessExit | undefined {
    return this.proc?.exit;
  }

  /** Spawns the witness (a no-op while one runs); waitReady() tells when it answers. */
  start(): void {
    if (this.running) return;
    // The log file is opened before the witness runs (which creates its data dir itself).
    mkdirSync(path.dirname(this.logFile), { recursive: true });
    this.logOffset = fileSize(this.logFile);
    // etcd's ETCD_* flags and node:test's context are not the witness's business.
    const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('ETCD') && key !== 'NODE_TEST_CONTEXT'));
    const args = [cliEntryPoint, 'witness', '--data-dir', this.dataDir, '--bind-address', this.host, '--port', String(this.port ?? 0), '--exit-with-parent'];
    this.proc = new ManagedProcess('witness', process.execPath, args, {
      env,
      logFile: this.logFile,
      parentDeathSignal: 'SIGTERM',
      exitSignal: 'SIGTERM',
    });
  }

  /** Waits for the listening line (learning the port), then for GET /healthz to answer 200. */
  async waitReady(timeoutMs = 15_000): Promise<void> {
    const proc = this.proc;
    if (!proc) throw new Error('the local witness was not started');
    let last = 'no answer yet';
    const answers = async (): Promise<true | undefined> => {
      if (proc.exit) throw new Error(`the witness exited (${describeExit(proc.exit)})${this.tail()}`);
      if (this.port === undefined) {
        const match = listeningLine.exec(await readFrom(this.logFile, this.logOffset));
        if (match) this.port = Number(new URL(match[1]!).port);
      }
      if (this.port !== undefined) {
        const notReady = await httpNotReady(`${this.url}/healthz`);
        if (notReady === undefined) return true;
        last = notReady;
      }
      return undefined;
    };
    await pollUntil(answers, { timeoutMs, intervalMs: 50, timeout: () => new Error(`the witness did not answer within ${timeoutMs} ms (${last})${this.tail()}`) });
  }

  /** SIGKILL, as a crash would (no restart follows). */
  async kill(): Promise<ProcessExit | undefined> {
    return this.proc?.kill();
  }

  /** Stops the witness if it runs (SIGTERM), starts it again on the same port and waits until it answers. */
  async restart(timeoutMs?: number): Promise<void> {
    await this.proc?.stop(5000);
    this.start();
    await this.waitReady(timeoutMs);
  }

  /** SIGTERM (the witness finishes the writes in flight and exits 0), SIGKILL after 5 s; how it ended. */
  async close(): Promise<ProcessExit | undefined> {
    return this.proc?.stop(5000);
  }

  private tail(): string {
    const text = logTail(this.logFile, 15);
    return text ? `\n--- ${this.logFile} (last lines) ---\n${text}` : '';
  }
}
