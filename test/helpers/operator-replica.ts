// One `etcd-robustness operator` process (--runtime=local, leader election on), as the multi-replica
// integration tests start it, and the small process helpers they share.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const cli = path.join(repo, 'src', 'cli.ts');

export interface ReplicaOptions {
  /** The namespace the operator watches; also where its leader-election Lease lives unless told otherwise. */
  namespace: string;
  /** --lease-duration, in seconds. */
  leaseDurationS: number;
  /** --leader-election-namespace (default: `namespace`). */
  leaderElectionNamespace?: string;
  /** More arguments, after the standard ones. */
  extraArgs?: readonly string[];
  /** How many stderr lines are kept (default 400). */
  keepLines?: number;
}

/** One `etcd-robustness operator` process. */
export class Replica {
  readonly identity: string;
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  metricsUrl = '';
  healthUrl = '';
  private readonly stderrLines: string[] = [];

  constructor(identity: string, kubeconfig: string, dataDir: string, options: ReplicaOptions) {
    this.identity = identity;
    const keepLines = options.keepLines ?? 400;
    this.child = spawn(
      process.execPath,
      [
        cli,
        'operator',
        '--runtime=local',
        '--kubeconfig',
        kubeconfig,
        '--namespaces',
        options.namespace,
        '--leader-elect',
        '--leader-election-namespace',
        options.leaderElectionNamespace ?? options.namespace,
        '--lease-duration',
        `${options.leaseDurationS}s`,
        '--data-dir',
        dataDir,
        '--metrics-port',
        '0',
        '--health-port',
        '0',
        '--bind-address',
        '127.0.0.1',
        '--log-format',
        'json',
        ...(options.extraArgs ?? []),
      ],
      // POD_NAME is the Lease holder identity, as in the chart's Deployment.
      { cwd: repo, env: { ...process.env, POD_NAME: identity }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.exited = new Promise((resolve) => this.child.once('exit', (code, signal) => resolve({ code, signal })));
    let stderr = '';
    this.child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
      const lines = stderr.split('\n');
      stderr = lines.pop()!;
      this.stderrLines.push(...lines);
      if (this.stderrLines.length > keepLines) this.stderrLines.splice(0, this.stderrLines.length - keepLines);
    });
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Resolves once the process printed its metrics and health URLs (it is up and campaigning). */
  async started(timeoutMs = 30_000): Promise<void> {
    let stdout = '';
    const stream = this.child.stdout!.setEncoding('utf8');
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => finish(new Error(`${this.identity} printed no URLs within ${timeoutMs} ms:\n${this.logTail()}`)), timeoutMs);
      const onData = (chunk: string): void => {
        stdout += chunk;
        const metrics = /^metrics: (\S+)$/m.exec(stdout);
        const health = /^health: (\S+)\/healthz$/m.exec(stdout);
        if (metrics && health) {
          this.metricsUrl = metrics[1]!;
          this.healthUrl = health[1]!;
          finish();
        }
      };
      const onExit = (): void => finish(new Error(`${this.identity} exited before it was up:\n${this.logTail()}`));
      const finish = (error?: Error): void => {
        clearTimeout(timer);
        stream.off('data', onData);
        this.child.off('exit', onExit);
        if (error) reject(error);
        else resolve();
      };
      stream.on('data', onData);
      this.child.once('exit', onExit);
    });
    // Keep draining stdout so the child never blocks on a full pipe.
    stream.resume();
  }

  logTail(lines = 40): string {
    return this.stderrLines.slice(-lines).join('\n');
  }

  /** Every stderr line kept (the newest `keepLines`). */
  logLines(): readonly string[] {
    return this.stderrLines;
  }

  /** Stops the process if it still runs (SIGKILL) and waits for it. */
  async kill(): Promise<void> {
    if (this.running) this.child.kill('SIGKILL');
    await this.exited;
  }
}

function pgrep(pattern: string): number[] {
  const result = spawnSync('pgrep', ['-f', '--', pattern], { encoding: 'utf8' });
  return result.stdout
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map(Number);
}

const escapeRegExp = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** pids of etcd processes whose data dir is under `dir` (the operators' own --data-dir is a separate argument). */
export function etcdPids(dir: string): number[] {
  return pgrep(`--data-dir=${dir}/`);
}

/**
 * pids of processes running etcd on exactly the data dir `dataDir` (`<root>/<ns>/<cluster>/<member>.etcd`),
 * however they were started (the operator's guard, or by hand). The fault agent names its member's data
 * dir as a separate argument (`--data-dir D`), so it does not match.
 */
export function etcdPidsOn(dataDir: string): number[] {
  return pgrep(`--data-dir=${escapeRegExp(dataDir)}( |$)`);
}

export const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
