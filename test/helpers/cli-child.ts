// `etcd-robustness` (src/cli.ts) as a child process: its output collected as it comes, its exit awaited.
import { spawn, type ChildProcess } from 'node:child_process';

export const cliPath = new URL('../../src/cli.ts', import.meta.url).pathname;

export interface Started {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
}

export function startCli(args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env): Started {
  const child = spawn(process.execPath, [cliPath, ...args], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, stdout: () => out, stderr: () => err, exited };
}

/** Polls `probe` until it gives a value; gives up early if `started` exits, and then shows its output. */
export async function waitForOutput<T>(what: string, probe: () => T | undefined, timeoutMs: number, started?: Started): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = probe();
    if (value !== undefined) return value;
    if (started !== undefined && started.child.exitCode !== null) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`timed out waiting for ${what}${started ? `\n--- stdout ---\n${started.stdout()}\n--- stderr ---\n${started.stderr()}` : ''}`);
}
