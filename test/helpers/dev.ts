// `etcd-robustness dev` as a child process, the way the README's newcomer starts it: its output kept,
// the KUBECONFIG line waited for, kubectl with that KUBECONFIG, and a stop that never leaves it running.
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { kubeBinaries } from '../../src/local/index.ts';

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Polls `check` every second until it holds; fails the test after `timeoutMs`. */
export async function waitFor(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(1000);
  }
  assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** The built kubectl with KUBECONFIG=`kubeconfig`; never throws for a non-zero exit. */
export function kubectlWith(kubeconfig: string, args: string[], stdin?: string): Promise<CommandResult> {
  return new Promise((resolve) => {
    const child = execFile(kubeBinaries().kubectl, args, { env: { ...process.env, KUBECONFIG: kubeconfig }, timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr });
    });
    if (stdin !== undefined) child.stdin?.end(stdin);
  });
}

export class DevProcess {
  readonly child: ChildProcess;
  private out = '';
  private err = '';

  /** Starts `node src/cli.ts dev ARGS` in the repository root (the tests' working directory). */
  constructor(args: string[]) {
    this.child = spawn(process.execPath, ['src/cli.ts', 'dev', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout!.on('data', (chunk: Buffer) => (this.out += chunk.toString()));
    this.child.stderr!.on('data', (chunk: Buffer) => (this.err += chunk.toString()));
  }

  get stdout(): string {
    return this.out;
  }

  get stderr(): string {
    return this.err;
  }

  /** Waits for the `export KUBECONFIG=...` line and returns the path; fails the test if dev exits first. */
  async kubeconfig(timeoutMs: number): Promise<string> {
    await waitFor('dev to print KUBECONFIG', timeoutMs, () => Promise.resolve(/^export KUBECONFIG=(.+)$/m.test(this.out) || this.child.exitCode !== null));
    const kubeconfig = /^export KUBECONFIG=(.+)$/m.exec(this.out)?.[1];
    assert.ok(kubeconfig, `dev printed no KUBECONFIG (exit ${this.child.exitCode}): ${this.out}\n${this.err.slice(-2000)}`);
    return kubeconfig;
  }

  /** Sends `signal` and resolves with the exit code. */
  async stop(signal: NodeJS.Signals): Promise<number | null> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return this.child.exitCode;
    const exited = new Promise<number | null>((resolve) => this.child.once('exit', (code) => resolve(code)));
    this.child.kill(signal);
    return exited;
  }
}
