/**
 * Cluster metrics: what the operator sees of each EtcdCluster at every reconcile (members by role and
 * health, leader changes, quorum, revision lag, DB size against quota, versions). Label `cluster` is
 * "namespace/name", as on the run metrics.
 *
 * One set of metric objects and one per-cluster memory (last leader, series emitted) per prom-client
 * Registry: the operator builds its controllers again at each leadership term, and a second ClusterMetrics
 * on the same registry must continue the counters, not re-register them.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import { onMetricSet } from '../../metrics-registry.ts';
import type { EtcdClientTls, PlacedMember } from '../../domain/index.ts';
import { etcdHttp } from '../../probes/etcd-transport.ts';
import { hexId, type EtcdMemberView, type EtcdView } from './observe.ts';

export type MemberRole = 'leader' | 'follower' | 'learner' | 'unknown';
export const memberRoles: readonly MemberRole[] = ['leader', 'follower', 'learner', 'unknown'];

/** Members counted by role, split into healthy (answers its status and has a leader) and not. */
export type RoleCounts = Record<MemberRole, { healthy: number; unhealthy: number }>;

export interface ClusterSample {
  members: RoleCounts;
  hasLeader: boolean;
  quorum: boolean;
  /** Member name to revisions behind the highest revision any member reported (answering members only). */
  revisionLag: Map<string, number>;
  /** Member name to its backend DB size in bytes (answering members only). */
  dbSize: Map<string, number>;
  /** Member name to the etcd version it reports (answering members only). */
  version: Map<string, string>;
}

const memberName = (m: EtcdMemberView): string => (m.name === '' ? hexId(m.id) : m.name);

/**
 * The role of an etcd member: the leader the answering members agree on, a learner, a voting member
 * that answered (follower, even while it has no leader: health says that), or unknown when it did not answer.
 */
export function memberRole(member: EtcdMemberView, leaderId: string | undefined): MemberRole {
  if (leaderId !== undefined && member.id === leaderId) return 'leader';
  if (member.isLearner) return 'learner';
  return member.status ? 'follower' : 'unknown';
}

export const memberHealthy = (member: EtcdMemberView): boolean => member.status?.hasLeader === true;

/** A majority of the voting members (learners do not vote) answer and report a leader. */
export function hasQuorum(members: readonly EtcdMemberView[]): boolean {
  const voters = members.filter((m) => !m.isLearner);
  return voters.length > 0 && voters.filter(memberHealthy).length * 2 > voters.length;
}

/**
 * The numbers of one observation. Members are etcd's member list; a placed member etcd does not list
 * (starting, not added yet, or no etcd answered at all) counts as role unknown, unhealthy.
 */
export function clusterSample(etcd: EtcdView | undefined, placed: readonly PlacedMember[]): ClusterSample {
  const members = Object.fromEntries(memberRoles.map((r) => [r, { healthy: 0, unhealthy: 0 }])) as RoleCounts;
  const listed = etcd?.members ?? [];
  for (const m of listed) members[memberRole(m, etcd?.leaderId)][memberHealthy(m) ? 'healthy' : 'unhealthy']++;
  // A member added and not started yet has no name in etcd's list: its peer URL says it is the placed one.
  const listedAs = (p: PlacedMember): boolean => listed.some((m) => m.name === p.name || m.peerUrls.includes(p.peerUrl));
  for (const p of placed) if (!listedAs(p)) members.unknown.unhealthy++;

  const answered = listed.filter((m): m is EtcdMemberView & { status: NonNullable<EtcdMemberView['status']> } => m.status !== undefined);
  const highest = Math.max(0, ...answered.map((m) => m.status.revision));
  return {
    members,
    hasLeader: etcd?.leaderId !== undefined,
    quorum: hasQuorum(listed),
    revisionLag: new Map(answered.map((m) => [memberName(m), highest - m.status.revision])),
    dbSize: new Map(answered.map((m) => [memberName(m), m.status.dbSize])),
    version: new Map(answered.map((m) => [memberName(m), m.status.version])),
  };
}

/**
 * Leader changes between two observations: the last leader seen is remembered across leaderless
 * observations, so A → (none) → B is one change and A → (none) → A none; the first leader is no change.
 */
export function leaderStep(lastLeader: string | undefined, current: string | undefined): { changed: boolean; lastLeader: string | undefined } {
  if (current === undefined) return { changed: false, lastLeader };
  return { changed: lastLeader !== undefined && lastLeader !== current, lastLeader: current };
}

/** The quota line of an etcd member's /metrics text, in bytes; undefined when absent or not a number. */
export function parseQuotaBytes(metricsText: string): number | undefined {
  const match = /^etcd_server_quota_backend_bytes(?:\{[^}]*\})?\s+(\S+)/m.exec(metricsText);
  if (!match) return undefined;
  const value = Number(match[1]);
  return Number.isFinite(value) && value >= 0 ? value : undefined;
}

/** A member's backend quota from its own /metrics (over TLS with `tls`); undefined when it does not answer in time. */
export async function readQuotaBytes(clientUrl: string, timeoutMs: number, tls?: EtcdClientTls): Promise<number | undefined> {
  try {
    const response = await etcdHttp(`${clientUrl.replace(/\/$/, '')}/metrics`, { tls, timeoutMs });
    if (response.status !== 200) return undefined;
    return parseQuotaBytes(response.text);
  } catch {
    return undefined;
  }
}

interface QuotaEntry {
  clientUrl: string;
  bytes: number | undefined;
  /** When the last read started (Date.now() ms). */
  readAt: number;
}

type QuotaRead = (clientUrl: string, timeoutMs: number, tls?: EtcdClientTls) => Promise<number | undefined>;

/**
 * Backend quotas of a cluster's members, read from their /metrics at most every `intervalMs` per member
 * and never awaited by the caller: `current` answers from what was read so far and starts the reads
 * that are due (the quota only changes when a member restarts with other flags).
 */
export class QuotaCache {
  private readonly entries = new Map<string, Map<string, QuotaEntry>>();
  private readonly inFlight = new Set<Promise<void>>();
  private readonly read: QuotaRead;
  private readonly intervalMs: number;
  private readonly timeoutMs: number;

  constructor(options: { intervalMs?: number; timeoutMs?: number; read?: QuotaRead } = {}) {
    this.intervalMs = options.intervalMs ?? 30_000;
    this.timeoutMs = options.timeoutMs ?? 1000;
    this.read = options.read ?? readQuotaBytes;
  }

  /** `tls`: the cluster's client TLS (the placement's clientTls), for members whose client URLs are https. */
  current(cluster: string, placed: readonly Pick<PlacedMember, 'name' | 'clientUrl'>[], now = Date.now(), tls?: EtcdClientTls): ReadonlyMap<string, number> {
    let known = this.entries.get(cluster);
    if (!known) {
      known = new Map<string, QuotaEntry>();
      this.entries.set(cluster, known);
    }
    for (const name of [...known.keys()]) if (!placed.some((p) => p.name === name)) known.delete(name);
    for (const p of placed) {
      const entry = known.get(p.name);
      if (entry && entry.clientUrl === p.clientUrl && now - entry.readAt < this.intervalMs) continue;
      // Marked as read now before the read ends, so reconciles in between do not start another one.
      known.set(p.name, { clientUrl: p.clientUrl, bytes: entry?.clientUrl === p.clientUrl ? entry.bytes : undefined, readAt: now });
      const reading = this.read(p.clientUrl, this.timeoutMs, tls).then((bytes) => {
        const latest = known.get(p.name);
        if (latest?.clientUrl === p.clientUrl) latest.bytes = bytes;
      });
      this.inFlight.add(reading);
      void reading.finally(() => this.inFlight.delete(reading));
    }
    const quotas = new Map<string, number>();
    for (const [name, entry] of known) if (entry.bytes !== undefined) quotas.set(name, entry.bytes);
    return quotas;
  }

  /** Resolves when the reads started so far have ended (for tests and shutdown). */
  async settled(): Promise<void> {
    await Promise.all([...this.inFlight]);
  }

  forget(cluster: string): void {
    this.entries.delete(cluster);
  }
}

interface ClusterMemory {
  lastLeader: string | undefined;
  /** Member label values emitted by the last observation, per per-member gauge. */
  lagMembers: Set<string>;
  dbMembers: Set<string>;
  quotaMembers: Set<string>;
  versions: Map<string, string>;
}

function createMetrics(registry: Registry) {
  const registers = [registry];
  return {
    clusters: new Map<string, ClusterMemory>(),
    members: new Gauge({
      name: 'etcd_robustness_cluster_members',
      help: 'Members by role (leader, follower, learner, unknown) and health (healthy: answers its status and has a leader).',
      labelNames: ['cluster', 'role', 'healthy'],
      registers,
    }),
    leaderChanges: new Counter({
      name: 'etcd_robustness_cluster_leader_changes_total',
      help: 'Leader changes the operator saw between its observations of the cluster.',
      labelNames: ['cluster'],
      registers,
    }),
    hasLeader: new Gauge({
      name: 'etcd_robustness_cluster_has_leader',
      help: '1 when the answering members report a leader, 0 otherwise.',
      labelNames: ['cluster'],
      registers,
    }),
    quorum: new Gauge({
      name: 'etcd_robustness_cluster_quorum',
      help: '1 when a majority of the voting members (learners excluded) answer and report a leader, 0 otherwise.',
      labelNames: ['cluster'],
      registers,
    }),
    revisionLag: new Gauge({
      name: 'etcd_robustness_cluster_member_revision_lag',
      help: 'Revisions a member is behind the highest revision any member reported.',
      labelNames: ['cluster', 'member'],
      registers,
    }),
    dbSize: new Gauge({
      name: 'etcd_robustness_cluster_db_size_bytes',
      help: "A member's backend database size in bytes, as its status reports it.",
      labelNames: ['cluster', 'member'],
      registers,
    }),
    dbQuota: new Gauge({
      name: 'etcd_robustness_cluster_db_quota_bytes',
      help: "A member's backend quota in bytes (etcd_server_quota_backend_bytes of its own /metrics).",
      labelNames: ['cluster', 'member'],
      registers,
    }),
    memberInfo: new Gauge({
      name: 'etcd_robustness_cluster_member_info',
      help: 'Always 1: the etcd server version a member reports.',
      labelNames: ['cluster', 'member', 'version'],
      registers,
    }),
  };
}

/** Sets `values` as the series of `gauge` for the cluster, removing the members it no longer has. */
function setPerMember(gauge: Gauge, cluster: string, values: ReadonlyMap<string, number>, previous: Set<string>): Set<string> {
  for (const member of previous) if (!values.has(member)) gauge.remove({ cluster, member });
  for (const [member, value] of values) gauge.set({ cluster, member }, value);
  return new Set(values.keys());
}

export class ClusterMetrics extends onMetricSet(createMetrics) {
  /** Updates every cluster gauge from one observation (`cluster` is "namespace/name"). */
  observe(cluster: string, etcd: EtcdView | undefined, placed: readonly PlacedMember[], quotaBytes: ReadonlyMap<string, number> = new Map()): void {
    const sample = clusterSample(etcd, placed);
    let memory = this.m.clusters.get(cluster);
    if (!memory) {
      memory = { lastLeader: undefined, lagMembers: new Set(), dbMembers: new Set(), quotaMembers: new Set(), versions: new Map() };
      this.m.clusters.set(cluster, memory);
    }

    for (const role of memberRoles) {
      this.m.members.set({ cluster, role, healthy: 'true' }, sample.members[role].healthy);
      this.m.members.set({ cluster, role, healthy: 'false' }, sample.members[role].unhealthy);
    }
    const step = leaderStep(memory.lastLeader, etcd?.leaderId);
    memory.lastLeader = step.lastLeader;
    this.m.leaderChanges.inc({ cluster }, step.changed ? 1 : 0);
    this.m.hasLeader.set({ cluster }, sample.hasLeader ? 1 : 0);
    this.m.quorum.set({ cluster }, sample.quorum ? 1 : 0);

    memory.lagMembers = setPerMember(this.m.revisionLag, cluster, sample.revisionLag, memory.lagMembers);
    memory.dbMembers = setPerMember(this.m.dbSize, cluster, sample.dbSize, memory.dbMembers);
    memory.quotaMembers = setPerMember(this.m.dbQuota, cluster, quotaBytes, memory.quotaMembers);

    // One info series per member: a new version (an upgrade) replaces the old series.
    for (const [member, version] of memory.versions) {
      if (sample.version.get(member) !== version) this.m.memberInfo.remove({ cluster, member, version });
    }
    for (const [member, version] of sample.version) this.m.memberInfo.set({ cluster, member, version }, 1);
    memory.versions = sample.version;
  }

  /** Removes every series of a cluster (deleted, or no longer reconciled by this replica). */
  forget(cluster: string): void {
    const memory = this.m.clusters.get(cluster);
    this.m.clusters.delete(cluster);
    for (const role of memberRoles) for (const healthy of ['true', 'false']) this.m.members.remove({ cluster, role, healthy });
    this.m.leaderChanges.remove({ cluster });
    this.m.hasLeader.remove({ cluster });
    this.m.quorum.remove({ cluster });
    if (!memory) return;
    for (const member of memory.lagMembers) this.m.revisionLag.remove({ cluster, member });
    for (const member of memory.dbMembers) this.m.dbSize.remove({ cluster, member });
    for (const member of memory.quotaMembers) this.m.dbQuota.remove({ cluster, member });
    for (const [member, version] of memory.versions) this.m.memberInfo.remove({ cluster, member, version });
  }

  /** Forgets every cluster: a replica that stops leading no longer observes them. */
  forgetAll(): void {
    for (const cluster of [...this.m.clusters.keys()]) this.forget(cluster);
  }
}
