/** The member runtime of `run --local`: a LocalEtcdCluster of real etcd processes on loopback. */
import type { MemberRuntime, RuntimeMember } from '../domain/index.ts';
import type { EtcdBinaries } from './binaries.ts';
import { LocalEtcdCluster, type LocalClusterOptions } from './etcd-cluster.ts';

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
  }

  async create(): Promise<void> {
    if (this.cluster) return;
    this.cluster = await LocalEtcdCluster.start(this.options);
  }

  private get started(): LocalEtcdCluster {
    if (!this.cluster) throw new Error(`local cluster ${this.clusterName} is not created yet`);
    return this.cluster;
  }

  get etcdVersion(): string {
    return this.started.binaries.version;
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
      const member: RuntimeMember = { name: m.name, endpoint: m.endpoint, running: m.running };
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

  async close(): Promise<void> {
    await this.cluster?.close();
    this.cluster = undefined;
  }
}
