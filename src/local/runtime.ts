/** The member runtime of `run --local`: a LocalEtcdCluster of real etcd processes on loopback. */
import type { EtcdClientTls, MemberRuntime, RuntimeMember } from '../domain/index.ts';
import { spawnSync } from 'node:child_process';
import type { EtcdBinaries } from './binaries.ts';
import { etcdBinaries } from './binaries.ts';
import { LocalEtcdCluster, type LocalClientTlsFiles, type LocalClusterOptions } from './etcd-cluster.ts';

export interface LocalMemberRuntimeOptions {
  name?: string;
  size: number;
  binaries?: EtcdBinaries;
  /** gofail HTTP APIs (default on). */
  failpoints?: boolean;
  dataRoot?: string;
  /**
   * A fault agent beside each member (RuntimeMember.agentUrl, agentToken), with peer proxies and
   * supervised restarts; the token is generated when not given.
   */
  agents?: { token?: string; maxTtl?: string };
  /** Serve the members' client URLs over TLS (https) with these files; clientTls then carries the CA. */
  clientTls?: LocalClientTlsFiles;
  /** Extra etcd flags for every member (`--name=value`), after the runtime's own: a repeated flag's last value wins. */
  etcdFlags?: readonly string[];
}

export class LocalMemberRuntime implements MemberRuntime {
  readonly clusterName: string;
  readonly created = true;
  private cluster: LocalEtcdCluster | undefined;
  private readonly options: LocalClusterOptions;

  constructor(options: LocalMemberRuntimeOptions) {
    this.clusterName = options.name ?? 'local';
    this.options = { size: options.size, failpoints: options.failpoints ?? true };
    if (options.binaries) this.options.binaries = options.binaries;
    if (options.dataRoot !== undefined) this.options.dataRoot = options.dataRoot;
    if (options.agents) this.options.agents = { ...options.agents };
    if (options.clientTls) this.options.clientTls = { ...options.clientTls };
    if (options.etcdFlags && options.etcdFlags.length > 0) this.options.extraArgs = [...options.etcdFlags];
  }

  async create(): Promise<void> {
    if (this.cluster) return;
    const options = { ...this.options };
    if (options.agents) {
      const binaries = options.binaries ?? etcdBinaries('current');
      options.binaries = binaries;
      // The run's own flags (etcdFlags) go last, so they override these.
      options.extraArgs = [...faultReachFlags(binaries.etcd), ...(options.extraArgs ?? [])];
    }
    this.cluster = await LocalEtcdCluster.start(options);
  }

  private get started(): LocalEtcdCluster {
    if (!this.cluster) throw new Error(`local cluster ${this.clusterName} is not created yet`);
    return this.cluster;
  }

  get etcdVersion(): string {
    return this.started.binaries.version;
  }

  /** The CA of the members' https client URLs (undefined for plain members or before create()). */
  get clientTls(): EtcdClientTls | undefined {
    return this.cluster?.clientTls;
  }

  /** The bearer token of the members' fault agents (undefined without agents or before create()). */
  get agentToken(): string | undefined {
    return this.cluster?.agentToken;
  }

  endpoints(): string[] {
    return this.started.endpoints;
  }

  members(): RuntimeMember[] {
    return this.started.members.map((m) => {
      const member: RuntimeMember = { name: m.name, endpoint: m.endpoint, running: m.running, peerUrl: m.addresses.peerUrl };
      if (m.failpointUrl !== undefined) member.failpointUrl = m.failpointUrl;
      if (m.agentUrl !== undefined) member.agentUrl = m.agentUrl;
      return member;
    });
  }

  async stop(member: string): Promise<void> {
    await this.started.member(member).stop();
  }

  async kill(member: string): Promise<void> {
    await this.started.member(member).kill();
  }

  async restart(member: string): Promise<void> {
    await this.started.member(member).restart();
  }

  async rejoin(member: string, initialCluster: string): Promise<void> {
    await this.started.member(member).rejoin(initialCluster);
  }

  async close(): Promise<void> {
    await this.cluster?.close();
    this.cluster = undefined;
  }
}

/**
 * Flags that let faults reach etcd's rarer code paths, as etcd's robustness suite sets them: compaction
 * commits in small batches (so the compaction failpoints fire on small stores), and snapshots happen
 * every few hundred entries with a short catch-up log (so a member that fell behind gets a snapshot and
 * the snapshot-apply failpoint fires). Flag names differ across releases: each is passed only if this
 * binary's --help lists it.
 */
export function faultReachFlags(etcd: string): string[] {
  const help = spawnSync(etcd, ['--help'], { encoding: 'utf8' });
  const text = `${help.stdout}${help.stderr}`;
  const pick = (values: [flag: string, value: string][]): string[] => {
    const found = values.find(([flag]) => new RegExp(`^\\s*${flag}\\b`, 'm').test(text));
    return found ? [`${found[0]}=${found[1]}`] : [];
  };
  return [
    ...pick([
      ['--compaction-batch-limit', '10'],
      ['--experimental-compaction-batch-limit', '10'],
    ]),
    ...pick([['--snapshot-count', '200']]),
    ...pick([
      ['--snapshot-catchup-entries', '50'],
      ['--experimental-snapshot-catchup-entries', '50'],
    ]),
  ];
}
