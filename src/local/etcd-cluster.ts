import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { etcdBinaries, type EtcdBinaries } from './binaries.ts';
import { freeLoopbackPorts } from './ports.ts';
import { logTail, ManagedProcess, type ProcessExit } from './process.ts';

export class EtcdStartError extends Error {
  override name = 'EtcdStartError';
  readonly member: string;
  readonly logFile: string;
  constructor(member: string, reason: string, logFile: string) {
    const tail = logTail(logFile, 15);
    super(`etcd member ${member} did not become healthy: ${reason}${tail ? `\n--- ${logFile} (last lines) ---\n${tail}` : ''}`);
    this.member = member;
    this.logFile = logFile;
  }
}

export interface LocalClusterOptions {
  /** Number of voting members. */
  size: number;
  binaries?: EtcdBinaries;
  /** Expose each member's gofail HTTP API on its own loopback port (needs a gofail-enabled etcd). */
  failpoints?: boolean;
  /** Folder for data dirs and logs; a fresh temporary folder by default (removed by close()). */
  dataRoot?: string;
  /**
   * Route peer traffic through a proxy per member: each member advertises `peerUrl` (where its proxy
   * listens; the caller or the member's fault agent runs the proxy) and etcd itself listens on
   * `peerListenUrl`. Off: both are the same address.
   */
  peerProxy?: boolean;
  /** Extra etcd flags for every member. */
  extraArgs?: readonly string[];
  startTimeoutMs?: number;
}

export interface MemberAddresses {
  name: string;
  clientUrl: string;
  /** The peer URL the cluster knows this member by (its proxy's address when peer traffic is proxied). */
  peerUrl: string;
  /** Where etcd listens for peers (equal to peerUrl unless peer traffic is proxied). */
  peerListenUrl: string;
  /** The gofail HTTP API, when failpoints are enabled. */
  failpointUrl: string | undefined;
}

function etcdEnvironment(failpointAddress: string | undefined): NodeJS.ProcessEnv {
  // etcd reads every ETCD_* variable as a flag: never let the caller's environment configure it.
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('ETCD')));
  if (failpointAddress) env['GOFAIL_HTTP'] = failpointAddress;
  return env;
}

/** One etcd process on loopback. Restarting it reuses its data dir, as a crashed member would. */
export class LocalEtcdMember {
  private proc: ManagedProcess | undefined;
  readonly addresses: MemberAddresses;
  readonly dataDir: string;
  readonly logFile: string;
  private readonly binaries: EtcdBinaries;
  private readonly args: readonly string[];

  constructor(addresses: MemberAddresses, binaries: EtcdBinaries, args: readonly string[], root: string) {
    this.addresses = addresses;
    this.binaries = binaries;
    this.args = args;
    this.dataDir = path.join(root, `${addresses.name}.etcd`);
    this.logFile = path.join(root, `${addresses.name}.log`);
  }

  get name(): string {
    return this.addresses.name;
  }

  get endpoint(): string {
    return this.addresses.clientUrl;
  }

  get failpointUrl(): string | undefined {
    return this.addresses.failpointUrl;
  }

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  get running(): boolean {
    return this.proc?.running ?? false;
  }

  /** Resolves when the current process exits. */
  get exited(): Promise<ProcessExit> {
    if (!this.proc) return Promise.resolve({ code: null, signal: null });
    return this.proc.exited;
  }

  start(): void {
    if (this.running) return;
    const failpointAddress = this.addresses.failpointUrl?.replace(/^http:\/\//, '');
    this.proc = new ManagedProcess(this.name, this.binaries.etcd, this.args, {
      env: etcdEnvironment(failpointAddress),
      logFile: this.logFile,
    });
  }

  /** Polls /health until the member answers healthy (it needs a quorum for that). */
  async waitHealthy(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = 'no answer yet';
    while (Date.now() < deadline) {
      const exit = this.proc?.exit;
      if (!this.proc || exit) {
        throw new EtcdStartError(this.name, `process exited (${JSON.stringify(exit ?? 'never started')})`, this.logFile);
      }
      try {
        const response = await fetch(`${this.endpoint}/health`, { signal: AbortSignal.timeout(1000) });
        const body = (await response.json()) as { health?: string; reason?: string };
        if (body.health === 'true') return;
        last = `health=${body.health ?? '?'} ${body.reason ?? ''}`.trim();
      } catch (error) {
        last = (error as Error).message;
      }
      await sleep(100);
    }
    throw new EtcdStartError(this.name, `timed out after ${timeoutMs} ms (${last})`, this.logFile);
  }

  async kill(): Promise<ProcessExit | undefined> {
    return this.proc?.kill();
  }

  async stop(): Promise<ProcessExit | undefined> {
    return this.proc?.stop();
  }

  pause(): void {
    this.proc?.signal('SIGSTOP');
  }

  resume(): void {
    this.proc?.signal('SIGCONT');
  }

  async restart(timeoutMs?: number): Promise<void> {
    await this.kill();
    this.start();
    await this.waitHealthy(timeoutMs);
  }

  async close(): Promise<void> {
    await this.kill();
  }
}

/** A real etcd cluster of local processes on free loopback ports. */
export class LocalEtcdCluster {
  readonly members: readonly LocalEtcdMember[];
  readonly dataRoot: string;
  readonly binaries: EtcdBinaries;
  private readonly ownsDataRoot: boolean;

  private constructor(members: readonly LocalEtcdMember[], dataRoot: string, ownsDataRoot: boolean, binaries: EtcdBinaries) {
    this.members = members;
    this.dataRoot = dataRoot;
    this.ownsDataRoot = ownsDataRoot;
    this.binaries = binaries;
  }

  get endpoints(): string[] {
    return this.members.map((m) => m.endpoint);
  }

  member(name: string): LocalEtcdMember {
    const found = this.members.find((m) => m.name === name);
    if (!found) throw new Error(`no member named ${name} (members: ${this.members.map((m) => m.name).join(', ')})`);
    return found;
  }

  static async start(options: LocalClusterOptions): Promise<LocalEtcdCluster> {
    const { size } = options;
    if (!Number.isInteger(size) || size < 1) throw new RangeError(`cluster size must be a positive integer, got ${size}`);
    const binaries = options.binaries ?? etcdBinaries('current');
    const ownsDataRoot = options.dataRoot === undefined;
    const dataRoot = options.dataRoot ?? mkdtempSync(path.join(os.tmpdir(), 'etcd-robustness-'));
    mkdirSync(dataRoot, { recursive: true });

    const perMember = 4;
    const ports = await freeLoopbackPorts(size * perMember);
    const addresses: MemberAddresses[] = Array.from({ length: size }, (_, i) => {
      const port = (k: number): number => ports[i * perMember + k]!;
      const peerUrl = `http://127.0.0.1:${port(1)}`;
      return {
        name: `m${i + 1}`,
        clientUrl: `http://127.0.0.1:${port(0)}`,
        peerUrl,
        peerListenUrl: options.peerProxy ? `http://127.0.0.1:${port(3)}` : peerUrl,
        failpointUrl: options.failpoints ? `http://127.0.0.1:${port(2)}` : undefined,
      };
    });
    const initialCluster = addresses.map((a) => `${a.name}=${a.peerUrl}`).join(',');
    const token = `etcd-robustness-${path.basename(dataRoot)}`;

    const members = addresses.map((a) => {
      const args = [
        `--name=${a.name}`,
        `--data-dir=${path.join(dataRoot, `${a.name}.etcd`)}`,
        `--listen-client-urls=${a.clientUrl}`,
        `--advertise-client-urls=${a.clientUrl}`,
        `--listen-peer-urls=${a.peerListenUrl}`,
        `--initial-advertise-peer-urls=${a.peerUrl}`,
        `--initial-cluster=${initialCluster}`,
        '--initial-cluster-state=new',
        `--initial-cluster-token=${token}`,
        ...(options.extraArgs ?? []),
      ];
      return new LocalEtcdMember(a, binaries, args, dataRoot);
    });
    const cluster = new LocalEtcdCluster(members, dataRoot, ownsDataRoot, binaries);
    try {
      for (const m of members) m.start();
      await Promise.all(members.map((m) => m.waitHealthy(options.startTimeoutMs)));
    } catch (error) {
      await cluster.close();
      throw error;
    }
    return cluster;
  }

  /** Kills every member and removes the data folder if this cluster created it. */
  async close(): Promise<void> {
    await Promise.all(this.members.map((m) => m.close()));
    if (this.ownsDataRoot) rmSync(this.dataRoot, { recursive: true, force: true });
  }
}
