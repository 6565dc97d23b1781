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
  /**
   * Extra etcd flags for every member (`--name=value`, checked by etcdFlagProblem), as a scenario needs them
   * (`run --local --etcd-flag`); one that names a flag of faultReachFlags replaces it.
   */
  etcdFlags?: readonly string[];
}

export class LocalMemberRuntime implements MemberRuntime {
  readonly clusterName: string;
  readonly created = true;
  private cluster: LocalEtcdCluster | undefined;
  private readonly options: LocalClusterOptions;
  private readonly etcdFlags: readonly string[];

  constructor(options: LocalMemberRuntimeOptions) {
    this.clusterName = options.name ?? 'local';
    this.options = { size: options.size, failpoints: options.failpoints ?? true };
    if (options.binaries) this.options.binaries = options.binaries;
    if (options.dataRoot !== undefined) this.options.dataRoot = options.dataRoot;
    if (options.agents) this.options.agents = { ...options.agents };
    if (options.clientTls) this.options.clientTls = { ...options.clientTls };
    this.etcdFlags = [...(options.etcdFlags ?? [])];
  }

  async create(): Promise<void> {
    if (this.cluster) return;
    const options = { ...this.options };
    if (options.agents) {
      const binaries = options.binaries ?? etcdBinaries('current');
      options.binaries = binaries;
      options.extraArgs = [...(options.extraArgs ?? []), ...faultReachFlags(binaries.etcd)];
    }
    // The run's own flags replace any of the same name set above.
    if (this.etcdFlags.length > 0) options.extraArgs = withEtcdFlags(options.extraArgs ?? [], this.etcdFlags);
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

/** The flags the local runtime sets itself (identity, data, URLs, cluster): a per-run flag may not change them. */
const runtimeOwnedFlags = new Set([
  '--name',
  '--data-dir',
  '--wal-dir',
  '--listen-client-urls',
  '--advertise-client-urls',
  '--listen-peer-urls',
  '--initial-advertise-peer-urls',
  '--initial-cluster',
  '--initial-cluster-state',
  '--initial-cluster-token',
]);

/** The `--name` part of `--name=value`. */
export function etcdFlagName(flag: string): string {
  const equals = flag.indexOf('=');
  return equals < 0 ? flag : flag.slice(0, equals);
}

/** Why a per-run etcd flag cannot be passed (undefined when it can): `--name=value`, or `--name` for a boolean. */
export function etcdFlagProblem(flag: string): string | undefined {
  const name = etcdFlagName(flag);
  if (!name.startsWith('--')) return `an etcd flag must start with "--" (e.g. --snapshot-count=10), got "${flag}"`;
  if (!/^--[a-z0-9][a-z0-9-]*$/.test(name)) return `"${name}" is not an etcd flag name (lowercase letters, digits and "-" after "--")`;
  if (runtimeOwnedFlags.has(name)) return `${name} is set by the local runtime for each member and cannot be changed`;
  return undefined;
}

/** `base` with `flags` appended, dropping any flag of `base` that `flags` names again. */
export function withEtcdFlags(base: readonly string[], flags: readonly string[]): string[] {
  const names = new Set(flags.map(etcdFlagName));
  return [...base.filter((flag) => !names.has(etcdFlagName(flag))), ...flags];
}
