/**
 * The EtcdCluster status, computed from observation (etcd's member list and statuses, the placement's
 * members) and the step the reconciler takes. Pure: the reconciler writes what this returns.
 */
import type { ClusterPhase, Condition, EtcdCluster, EtcdClusterStatus, MemberStatus, PlacedMember } from '../../domain/index.ts';
import { setCondition } from '../kit/index.ts';
import type { EtcdView } from './observe.ts';
import { hexId } from './observe.ts';
import { memberName, serving, type ClusterAction } from './plan.ts';

const quorum = (voters: number): number => Math.floor(voters / 2) + 1;

const progressReasons: Record<ClusterAction['kind'], string> = {
  bootstrap: 'Bootstrapping',
  startMember: 'StartingMember',
  restartMember: 'RestartingMember',
  removeMember: 'RemovingMember',
  deleteRunner: 'DeletingMember',
  promote: 'PromotingLearner',
  addLearner: 'AddingMember',
  wait: 'Waiting',
  lost: 'Lost',
  steady: 'Stable',
};

export function describeAction(action: ClusterAction): string {
  switch (action.kind) {
    case 'bootstrap':
      return `bootstrapping the cluster with ${action.member}`;
    case 'startMember':
      return `starting ${action.member}`;
    case 'restartMember':
      return `restarting ${action.member}`;
    case 'removeMember':
      return `removing ${action.member} (${action.reason})`;
    case 'deleteRunner':
      return `deleting ${action.member}, which is no member of the cluster`;
    case 'promote':
      return `promoting learner ${action.member}`;
    case 'addLearner':
      return `adding ${action.member} as a learner`;
    case 'wait':
    case 'lost':
      return action.reason;
    case 'steady':
      return 'members match the spec';
  }
}

export function memberStatuses(etcd: EtcdView | undefined, placed: readonly PlacedMember[], pending?: { name: string; peerUrl: string }): MemberStatus[] {
  const statuses: MemberStatus[] = [];
  const seen = new Set<string>();
  for (const m of etcd?.members ?? []) {
    const name = memberName(m, { placed, pendingMember: pending }) ?? `(unknown ${hexId(m.id)})`;
    seen.add(name);
    const status: MemberStatus = {
      name,
      id: hexId(m.id),
      role: m.isLearner ? 'learner' : m.status === undefined ? 'unknown' : m.id === etcd?.leaderId ? 'leader' : 'follower',
      healthy: serving(m),
    };
    if (m.status) {
      status.version = m.status.version;
      status.revision = m.status.revision;
    }
    if (m.clientUrls[0] !== undefined) status.clientUrl = m.clientUrls[0];
    if (m.peerUrls[0] !== undefined) status.peerUrl = m.peerUrls[0];
    statuses.push(status);
  }
  // Runners etcd does not (yet) know: shown so a stuck start is visible.
  for (const p of placed) {
    if (!seen.has(p.name)) statuses.push({ name: p.name, role: 'unknown', healthy: false, clientUrl: p.clientUrl, peerUrl: p.peerUrl });
  }
  return statuses.sort((a, b) => a.name.localeCompare(b.name, 'en', { numeric: true }));
}

export interface StatusInput {
  cluster: EtcdCluster;
  etcd: EtcdView | undefined;
  placed: readonly PlacedMember[];
  action: ClusterAction;
  endpoints: string[];
  pending?: { name: string; peerUrl: string };
  now: Date;
}

export function clusterStatus(input: StatusInput): EtcdClusterStatus {
  const { cluster, etcd, placed, action, now } = input;
  const generation = cluster.metadata.generation ?? 0;
  const members = memberStatuses(etcd, placed, input.pending);
  const voters = etcd?.members.filter((m) => !m.isLearner) ?? [];
  const servingVoters = voters.filter(serving);
  const leaderName = members.find((m) => m.role === 'leader')?.name;
  const available = etcd !== undefined && leaderName !== undefined && servingVoters.length >= quorum(voters.length);
  const unhealthy = [
    ...members.filter((m) => !m.healthy && m.role !== 'learner').map((m) => m.name),
    ...placed.filter((p) => p.state === 'failed' || p.state === 'dataLost').map((p) => p.name),
  ];
  const unhealthyNames = [...new Set(unhealthy)].sort();
  const progressing = action.kind !== 'steady';

  let conditions: Condition[] = cluster.status?.conditions ?? [];
  conditions = setCondition(
    conditions,
    available
      ? { type: 'Available', status: 'True', observedGeneration: generation, reason: 'QuorumHealthy', message: `${servingVoters.length} of ${voters.length} voting members serve; leader ${leaderName}` }
      : {
          type: 'Available',
          status: 'False',
          observedGeneration: generation,
          reason: etcd === undefined ? 'Unreachable' : 'NoQuorum',
          message: etcd === undefined ? 'no member answers' : `${servingVoters.length} of ${voters.length} voting members serve`,
        },
    now,
  );
  conditions = setCondition(
    conditions,
    { type: 'Progressing', status: progressing ? 'True' : 'False', observedGeneration: generation, reason: progressReasons[action.kind], message: describeAction(action) },
    now,
  );
  conditions = setCondition(
    conditions,
    unhealthyNames.length > 0
      ? { type: 'Degraded', status: 'True', observedGeneration: generation, reason: 'MemberUnhealthy', message: `not serving: ${unhealthyNames.join(', ')}` }
      : { type: 'Degraded', status: 'False', observedGeneration: generation, reason: 'AllMembersHealthy', message: 'every member serves' },
    now,
  );

  const wasAvailable = cluster.status?.phase !== undefined && cluster.status.phase !== 'Pending' && cluster.status.phase !== 'Creating';
  let phase: ClusterPhase;
  if (action.kind === 'lost') phase = 'Failed';
  else if (!available) phase = wasAvailable ? 'Degraded' : 'Creating';
  else if (unhealthyNames.length > 0) phase = 'Degraded';
  else if (action.kind === 'addLearner' || action.kind === 'promote' || (action.kind === 'removeMember' && action.reason === 'scaleDown') || voters.length !== cluster.spec.replicas) phase = 'Scaling';
  else phase = 'Running';

  const status: EtcdClusterStatus = {
    phase,
    observedGeneration: generation,
    members,
    readyMembers: servingVoters.length,
    endpoints: input.endpoints,
    conditions,
  };
  if (etcd) status.clusterId = hexId(etcd.clusterId);
  if (leaderName !== undefined) status.leader = leaderName;
  return status;
}
