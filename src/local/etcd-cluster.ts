import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { EtcdClientTls } from '../domain/index.ts';
import { holdFile } from '../faults/hold.ts';
import { logger } from '../log.ts';
import { pollUntil } from '../poll.ts';
import { memberHealth } from '../probes/health.ts';
import { etcdBinaries, type EtcdBinaries } from './binaries.ts';
import { freeLoopbackPorts } from './ports.ts';
import { createScratch } from './scratch.ts';
import { describeExit, httpNotReady, logTail, ManagedProcess, SupervisedProcess, type ProcessExit } from './process.ts';

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
  /** Folder for data dirs and logs; a fresh scratch folder by default (src/local/scratch.ts; removed by close()). */
  dataRoot?: string;
  /**
   * Route peer traffic through a proxy per member: each member advertises `peerUrl` (where its proxy
   * listens; the caller or the member's fault agent runs the proxy) and etcd itself listens on
   * `peerListenUrl`. Off: both are the same address.
   */
  peerProxy?: boolean;
  /**
   * Run a fault agent (src/faults/agent.ts) beside each member, as a child process with its own
   * loopback port: member.agentUrl. Turns on peerProxy (each agent runs its member's peer proxy) and
   * supervise. The token is generated when not given (cluster.agentToken); it is written to
   * <dataRoot>/agent-token (mode 0600) for the agents.
   */
  agents?: { token?: string; maxTtl?: string };
  /**
   * Restart a member whose etcd exits when nobody called stop(), kill() or close() on it (an agent's
   * kill, a failpoint panic), like a kubelet with restartPolicy Always: after 200 ms, doubling on
   * quick repeated crashes up to 2 s; not while a crash fault's hold file (`<data-dir>.hold`, see
   * src/faults/hold.ts) holds it down. Default: on with agents, off otherwise.
   */
  supervise?: boolean;
  /** Extra etcd flags for every member. */
  extraArgs?: readonly string[];
  /**
   * Serve the client listener over TLS: client URLs are https, and cluster.clientTls carries what
   * clients need (this cluster's own health checks use it too). The certificate must name 127.0.0.1.
   */
  clientTls?: LocalClientTlsFiles;
  startTimeoutMs?: number;
}

/** PEM files of a local cluster's client listener. */
export interface LocalClientTlsFiles {
  /** The members' serving certificate and key. */
  certFile: string;
  keyFile: string;
  /** The CA the certificates chain to. */
  caFile: string;
  /**
   * Require client certificates signed by caFile, and use this one (its clientTls carries it). Absent:
   * server TLS only, clients need the CA and no certificate.
   */
  clientCertificate?: { certFile: string; keyFile: string };
}

/**
 * etcd's flags for its client listener. Server TLS only gets no --trusted-ca-file: with one, etcd
 * requires and verifies a client certificate from every client (go.etcd.io/etcd/client/pkg transport
 * TLSInfo.ServerConfig), so it is there only when client certificates are wanted.
 */
export function etcdClientTlsFlags(files: LocalClientTlsFiles): string[] {
  const serving = [`--cert-file=${files.certFile}`, `--key-file=${files.keyFile}`];
  return files.clientCertificate === undefined ? serving : [...serving, `--trusted-ca-file=${files.caFile}`, '--client-cert-auth=true'];
}

/** What a client of a cluster started with `files` needs: the CA, and the client certificate when one is required. */
function clientTlsOf(files: LocalClientTlsFiles): EtcdClientTls {
  const { clientCertificate } = files;
  const tls: EtcdClientTls = { ca: readFileSync(files.caFile) };
  if (clientCertificate !== undefined) tls.clientCertificate = { cert: readFileSync(clientCertificate.certFile), key: readFileSync(clientCertificate.keyFile) };
  return tls;
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
  /** The member's fault agent API, when agents are enabled. */
  agentUrl?: string;
}

/** Where this module's CLI entry point is: src/cli.ts when running from source, dist/cli.js when built. */
export const cliEntryPoint = fileURLToPath(new URL(import.meta.url.endsWith('.ts') ? '../cli.ts' : '../cli.js', import.meta.url));

const hostPort = (url: string): string => new URL(url).host;

function etcdEnvironment(failpointAddress: string | undefined): NodeJS.ProcessEnv {
  // etcd reads every ETCD_* variable as a flag: never let the caller's environment configure it.
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('ETCD')));
  if (failpointAddress) env['GOFAIL_HTTP'] = failpointAddress;
  return env;
}

/**
 * The `etcd-robustness agent` arguments of a member's fault agent: its API on agentUrl, the member's peer
 * proxy in front of etcd (advertised peerUrl -> peerListenUrl), gofail when the member has failpoints.
 */
/** How a member starts: its data dir, the cluster it founds or joins, and the cluster token. */
export interface MemberStart {
  dataDir: string;
  /** `name=peerURL,...` of every member including this one. */
  initialCluster: string;
  initialClusterState: 'new' | 'existing';
  token?: string;
}

/** The etcd flags of a member on loopback: names, URLs (peers through its proxy's listener) and cluster. */
export function etcdMemberFlags(a: Pick<MemberAddresses, 'name' | 'clientUrl' | 'peerUrl' | 'peerListenUrl'>, start: MemberStart): string[] {
  return [
    `--name=${a.name}`,
    `--data-dir=${start.dataDir}`,
    `--listen-client-urls=${a.clientUrl}`,
    `--advertise-client-urls=${a.clientUrl}`,
    `--listen-peer-urls=${a.peerListenUrl}`,
    `--initial-advertise-peer-urls=${a.peerUrl}`,
    `--initial-cluster=${start.initialCluster}`,
    `--initial-cluster-state=${start.initialClusterState}`,
    ...(start.token === undefined ? [] : [`--initial-cluster-token=${start.token}`]),
  ];
}

export function faultAgentArgs(a: MemberAddresses, dataDir: string, tokenFile: string): string[] {
  if (a.agentUrl === undefined) throw new Error(`member ${a.name} has no agent address`);
  return [
    '--member', a.name,
    '--data-dir', dataDir,
    '--listen', hostPort(a.agentUrl),
    '--token-file', tokenFile,
    '--peer-listen', hostPort(a.peerUrl),
    '--peer-target', hostPort(a.peerListenUrl),
    '--exit-with-parent',
    ...(a.failpointUrl === undefined ? [] : ['--gofail-url', a.failpointUrl]),
  ];
}

/**
 * One etcd process on loopback. Restarting it reuses its data dir, as a crashed member would. etcd is
 * spawned with a parent-death signal (SIGKILL), so it dies with this program even if this program is
 * SIGKILLed.
 */
export class LocalEtcdMember {
  private readonly process: SupervisedProcess;
  readonly addresses: MemberAddresses;
  readonly dataDir: string;
  readonly logFile: string;
  private readonly binaries: EtcdBinaries;
  private args: readonly string[];
  readonly supervised: boolean;
  /** The CA its health checks trust, when its client URL is https. */
  readonly clientTls: EtcdClientTls | undefined;
  /** The member's fault agent, when the cluster runs agents. */
  agent: LocalFaultAgent | undefined;

  constructor(addresses: MemberAddresses, binaries: EtcdBinaries, args: readonly string[], root: string, options: { supervise?: boolean; clientTls?: EtcdClientTls } = {}) {
    this.addresses = addresses;
    this.clientTls = options.clientTls;
    this.binaries = binaries;
    this.args = args;
    this.dataDir = path.join(root, `${addresses.name}.etcd`);
    this.logFile = path.join(root, `${addresses.name}.log`);
    this.supervised = options.supervise ?? false;
    // Supervision begins once the member has been healthy (a member that cannot start fails fast). A
    // crash fault's hold file beside the data dir keeps it down until the fault heals or the hold expires.
    this.process = new SupervisedProcess(`etcd member ${addresses.name}`, () => this.launch(), { supervise: this.supervised, holdFile: holdFile(this.dataDir) });
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

  get agentUrl(): string | undefined {
    return this.addresses.agentUrl;
  }

  get pid(): number | undefined {
    return this.process.pid;
  }

  get running(): boolean {
    return this.process.running;
  }

  /** It exited and the supervisor will start it again. */
  get restarting(): boolean {
    return this.process.restarting;
  }

  /** While a crash fault's hold file keeps the supervisor from restarting it: the hold's expiry (ms since the epoch). */
  get held(): number | undefined {
    return this.process.held;
  }

  /** How many times the supervisor restarted this member. */
  get restarts(): number {
    return this.process.restarts;
  }

  /** Resolves when the current process exits. */
  get exited(): Promise<ProcessExit> {
    return this.process.current?.exited ?? Promise.resolve({ code: null, signal: null });
  }

  start(): void {
    this.process.start();
  }

  private launch(): ManagedProcess {
    const failpointAddress = this.addresses.failpointUrl?.replace(/^http:\/\//, '');
    return new ManagedProcess(this.name, this.binaries.etcd, this.args, {
      env: etcdEnvironment(failpointAddress),
      logFile: this.logFile,
      parentDeathSignal: 'SIGKILL',
    });
  }

  /** Polls /health until the member answers healthy (it needs a quorum for that). */
  async waitHealthy(timeoutMs = 30_000): Promise<void> {
    let last = 'no answer yet';
    const healthy = async (): Promise<true | undefined> => {
      const proc = this.process.current;
      const exit = proc?.exit;
      if ((!proc || exit) && !this.process.restarting) {
        throw new EtcdStartError(this.name, `process exited (${JSON.stringify(exit ?? 'never started')})`, this.logFile);
      }
      const health = await memberHealth(this.endpoint, 1000, this.clientTls);
      if (health.healthy) return true;
      last = health.detail;
      return undefined;
    };
    await pollUntil(healthy, { timeoutMs, intervalMs: 100, timeout: () => new EtcdStartError(this.name, `timed out after ${timeoutMs} ms (${last})`, this.logFile) });
    this.process.markReady();
  }

  async kill(): Promise<ProcessExit | undefined> {
    return this.process.kill();
  }

  async stop(): Promise<ProcessExit | undefined> {
    return this.process.stop();
  }

  pause(): void {
    this.process.signal('SIGSTOP');
  }

  resume(): void {
    this.process.signal('SIGCONT');
  }

  async restart(timeoutMs?: number): Promise<void> {
    await this.kill();
    this.start();
    await this.waitHealthy(timeoutMs);
  }

  /**
   * Starts this member afresh as a new member of an existing cluster (after it was removed and added
   * back): its data is wiped and it joins with `initialCluster` as etcd's member add printed it.
   */
  async rejoin(initialCluster: string, timeoutMs?: number): Promise<void> {
    await this.kill();
    rmSync(this.dataDir, { recursive: true, force: true });
    this.args = this.args
      .filter((a) => !a.startsWith('--initial-cluster=') && !a.startsWith('--initial-cluster-state='))
      .concat([`--initial-cluster=${initialCluster}`, '--initial-cluster-state=existing']);
    this.start();
    await this.waitHealthy(timeoutMs);
  }

  async close(): Promise<void> {
    await this.kill();
  }
}

/**
 * A member's fault agent as a child process (`etcd-robustness agent`), restarted when it exits
 * unexpectedly; a restarted agent heals what its predecessor left. It gets SIGTERM if this program
 * dies (parent-death signal) and also watches its parent, so it heals and exits then.
 */
export class LocalFaultAgent {
  readonly member: string;
  readonly url: string;
  readonly logFile: string;
  private readonly args: readonly string[];
  /** Supervision begins once the agent has answered (one that cannot start fails fast). */
  private readonly process: SupervisedProcess;

  constructor(member: string, url: string, args: readonly string[], logFile: string) {
    this.member = member;
    this.url = url;
    this.args = args;
    this.logFile = logFile;
    this.process = new SupervisedProcess(`fault agent of ${member}`, () => this.launch(), { supervise: true });
  }

  get pid(): number | undefined {
    return this.process.pid;
  }

  get running(): boolean {
    return this.process.running;
  }

  get restarts(): number {
    return this.process.restarts;
  }

  start(): void {
    this.process.start();
  }

  private launch(): ManagedProcess {
    // etcd reads ETCD_* variables as flags and node:test children its context: neither belongs here.
    const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('ETCD') && key !== 'NODE_TEST_CONTEXT'));
    return new ManagedProcess(`agent-${this.member}`, process.execPath, [cliEntryPoint, 'agent', ...this.args], {
      env,
      logFile: this.logFile,
      parentDeathSignal: 'SIGTERM',
      exitSignal: 'SIGTERM',
    });
  }

  /** Polls GET /v1/status until the agent answers. */
  async waitReady(token: string, timeoutMs = 15_000): Promise<void> {
    let last = 'no answer yet';
    const answers = async (): Promise<true | undefined> => {
      const proc = this.process.current;
      const exit = proc?.exit;
      if (this.process.stopped || !proc || (exit && !this.process.restarting)) {
        throw new Error(`the fault agent of ${this.member} exited (${exit ? describeExit(exit) : 'not started'})${tail(this.logFile)}`);
      }
      const notReady = await httpNotReady(`${this.url}/v1/status`, { Authorization: `Bearer ${token}` });
      if (notReady === undefined) return true;
      last = notReady;
      return undefined;
    };
    await pollUntil(answers, { timeoutMs, intervalMs: 100, timeout: () => new Error(`the fault agent of ${this.member} did not answer within ${timeoutMs} ms (${last})${tail(this.logFile)}`) });
    this.process.markReady();
  }

  /** SIGTERM (the agent heals its faults and exits), SIGKILL after 5 s. */
  async stop(): Promise<void> {
    await this.process.stop(5000);
  }
}

function tail(logFile: string): string {
  const text = logTail(logFile, 15);
  return text ? `\n--- ${logFile} (last lines) ---\n${text}` : '';
}

/** A real etcd cluster of local processes on free loopback ports. */
export class LocalEtcdCluster {
  readonly members: readonly LocalEtcdMember[];
  readonly dataRoot: string;
  readonly binaries: EtcdBinaries;
  /** The bearer token of the members' fault agents, when the cluster runs agents. */
  readonly agentToken: string | undefined;
  /** What clients need for the https client URLs, when the cluster serves client TLS. */
  readonly clientTls: EtcdClientTls | undefined;
  private readonly ownsDataRoot: boolean;

  private constructor(members: readonly LocalEtcdMember[], dataRoot: string, ownsDataRoot: boolean, binaries: EtcdBinaries, agentToken: string | undefined, clientTls: EtcdClientTls | undefined) {
    this.members = members;
    this.dataRoot = dataRoot;
    this.ownsDataRoot = ownsDataRoot;
    this.binaries = binaries;
    this.agentToken = agentToken;
    this.clientTls = clientTls;
  }

  get endpoints(): string[] {
    return this.members.map((m) => m.endpoint);
  }

  member(name: string): LocalEtcdMember {
    const found = this.members.find((m) => m.name === name);
    if (!found) throw new Error(`no member named ${name} (members: ${this.members.map((m) => m.name).join(', ')})`);
    return found;
  }

  /**
   * Starts the cluster on free loopback ports. Another process may take one of them between the
   * allocation and the bind (more likely with agents, which bind theirs a few hundred ms later): a
   * start that fails with "address already in use" is retried on fresh ports, up to 3 attempts.
   */
  static async start(options: LocalClusterOptions): Promise<LocalEtcdCluster> {
    const { size } = options;
    if (!Number.isInteger(size) || size < 1) throw new RangeError(`cluster size must be a positive integer, got ${size}`);
    for (let attempt = 1; ; attempt++) {
      const dataRoot = options.dataRoot ?? createScratch('cluster');
      mkdirSync(dataRoot, { recursive: true });
      const fresh = Array.from({ length: size }, (_, i) => path.join(dataRoot, `m${i + 1}.etcd`)).filter((dir) => !existsSync(dir));
      try {
        return await LocalEtcdCluster.startOnce(options, dataRoot);
      } catch (error) {
        if (attempt >= 3 || !(error instanceof Error && /address already in use/i.test(error.message))) throw error;
        logger.warn(`local cluster: a port was taken during start (attempt ${attempt}); retrying on other ports`);
        // The failed attempt's data dirs hold the old ports: a new start needs empty ones.
        for (const dir of fresh) rmSync(dir, { recursive: true, force: true });
      }
    }
  }

  private static async startOnce(options: LocalClusterOptions, dataRoot: string): Promise<LocalEtcdCluster> {
    const { size } = options;
    const binaries = options.binaries ?? etcdBinaries('current');
    const ownsDataRoot = options.dataRoot === undefined;
    const agents = options.agents;
    const peerProxy = (options.peerProxy ?? false) || agents !== undefined;
    const supervise = options.supervise ?? agents !== undefined;
    const clientTls = options.clientTls === undefined ? undefined : clientTlsOf(options.clientTls);
    const clientScheme = clientTls === undefined ? 'http' : 'https';

    const perMember = 5;
    const ports = await freeLoopbackPorts(size * perMember);
    const addresses: MemberAddresses[] = Array.from({ length: size }, (_, i) => {
      const port = (k: number): number => ports[i * perMember + k]!;
      const peerUrl = `http://127.0.0.1:${port(1)}`;
      const member: MemberAddresses = {
        name: `m${i + 1}`,
        clientUrl: `${clientScheme}://127.0.0.1:${port(0)}`,
        peerUrl,
        peerListenUrl: peerProxy ? `http://127.0.0.1:${port(3)}` : peerUrl,
        failpointUrl: options.failpoints ? `http://127.0.0.1:${port(2)}` : undefined,
      };
      if (agents) member.agentUrl = `http://127.0.0.1:${port(4)}`;
      return member;
    });
    const initialCluster = addresses.map((a) => `${a.name}=${a.peerUrl}`).join(',');
    const token = `etcd-robustness-${path.basename(dataRoot)}`;

    const members = addresses.map((a) => {
      const args = [
        ...etcdMemberFlags(a, { dataDir: path.join(dataRoot, `${a.name}.etcd`), initialCluster, initialClusterState: 'new', token }),
        ...(options.clientTls === undefined ? [] : etcdClientTlsFlags(options.clientTls)),
        ...(options.extraArgs ?? []),
      ];
      return new LocalEtcdMember(a, binaries, args, dataRoot, { supervise, ...(clientTls === undefined ? {} : { clientTls }) });
    });

    let agentToken: string | undefined;
    if (agents) {
      agentToken = agents.token ?? randomBytes(24).toString('base64url');
      const tokenFile = path.join(dataRoot, 'agent-token');
      writeFileSync(tokenFile, `${agentToken}\n`, { mode: 0o600 });
      chmodSync(tokenFile, 0o600); // an existing file keeps its mode on write
      for (const m of members) {
        const a = m.addresses;
        const args = [...faultAgentArgs(a, m.dataDir, tokenFile), ...(agents.maxTtl === undefined ? [] : ['--max-ttl', agents.maxTtl])];
        m.agent = new LocalFaultAgent(a.name, a.agentUrl!, args, path.join(dataRoot, `${a.name}.agent.log`));
      }
    }

    const cluster = new LocalEtcdCluster(members, dataRoot, ownsDataRoot, binaries, agentToken, clientTls);
    try {
      for (const m of members) m.start();
      // The agents run the peer proxies the members advertise: the cluster forms only once they run.
      if (agentToken !== undefined) {
        for (const m of members) m.agent?.start();
        await Promise.all(members.map((m) => (m.agent ? m.agent.waitReady(agentToken) : Promise.resolve())));
      }
      await Promise.all(members.map((m) => m.waitHealthy(options.startTimeoutMs)));
    } catch (error) {
      await cluster.close();
      throw error;
    }
    return cluster;
  }

  /** Stops the agents (they heal their faults), kills every member and removes the data folder if this cluster created it. */
  async close(): Promise<void> {
    await Promise.all(this.members.map((m) => (m.agent ? m.agent.stop() : Promise.resolve())));
    await Promise.all(this.members.map((m) => m.close()));
    if (this.ownsDataRoot) rmSync(this.dataRoot, { recursive: true, force: true });
  }
}
