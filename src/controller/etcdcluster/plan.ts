/**
 * The EtcdCluster reconciler's decision, as a pure function of what is observed: etcd's member list and
 * statuses, the members the placement runs, the spec and the clock. One step per reconcile, the safest
 * first (membership changes one member at a time, the way etcd's own operator and kubeadm do it):
 *
 *   no etcd answers   → bootstrap one member, or start the members that exist, or wait
 *   placement drift   → start a member etcd knows but nobody runs; delete a runner etcd does not know
 *   repairs           → replace a member whose data was lost or that stayed down past the grace period;
 *                       restart one that is down within it
 *   learners          → promote a learner once it serves (etcd refuses until it caught up)
 *   scale             → add one learner, or remove one member (never the leader), until spec.replicas
 */
import type { PlacedMember } from '../../domain/index.ts';
import type { EtcdMemberView, EtcdView } from './observe.ts';

export type ClusterAction =
  | { kind: 'bootstrap'; member: string }
  /** etcd knows the member (added, never started, or its runner is gone) and nothing runs it. */
  | { kind: 'startMember'; member: string; initialCluster: string }
  /** The member's runner is down within the grace period: start it again with its data. */
  | { kind: 'restartMember'; member: string }
  | { kind: 'removeMember'; member: string; id: string; reason: 'dataLost' | 'down' | 'scaleDown' | 'unknown' }
  /** A runner that is no member of the cluster (removed, or a start that never got added). */
  | { kind: 'deleteRunner'; member: string }
  | { kind: 'promote'; member: string; id: string }
  | { kind: 'addLearner'; member: string }
  | { kind: 'wait'; reason: string }
  | { kind: 'lost'; reason: string }
  | { kind: 'steady' };

export interface PlanInput {
  cluster: string;
  replicas: number;
  gracePeriodMs: number;
  now: number;
  placed: readonly PlacedMember[];
  etcd: EtcdView | undefined;
  /** etcd member id → when the operator first saw it not answering (ms). */
  unhealthySince: ReadonlyMap<string, number>;
  /** A member added to etcd whose start may not have happened (recorded before the member add). */
  pendingMember?: { name: string; peerUrl: string } | undefined;
  /** A RobustnessRun injects faults into this cluster: membership is left to its fault executor. */
  repairsPaused: boolean;
}

const indexOf = (cluster: string, name: string): number => {
  const match = new RegExp(`^${cluster.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}-(\\d+)$`).exec(name);
  return match ? Number(match[1]) : -1;
};

/** The next member name: indexes only grow, so a replaced member's name is never reused. */
export function nextMemberName(input: Pick<PlanInput, 'cluster' | 'placed' | 'etcd' | 'pendingMember'>): string {
  const names = [...input.placed.map((m) => m.name), ...(input.etcd?.members.map((m) => m.name) ?? []), input.pendingMember?.name ?? ''];
  const highest = Math.max(-1, ...names.map((n) => indexOf(input.cluster, n)));
  return `${input.cluster}-${highest + 1}`;
}

/** The name a member of etcd is known by: its own, or the runner's or pending member's with its peer URL. */
export function memberName(member: EtcdMemberView, input: Pick<PlanInput, 'placed' | 'pendingMember'>): string | undefined {
  if (member.name !== '') return member.name;
  const byPeer = input.placed.find((p) => member.peerUrls.includes(p.peerUrl));
  if (byPeer) return byPeer.name;
  if (input.pendingMember && member.peerUrls.includes(input.pendingMember.peerUrl)) return input.pendingMember.name;
  return undefined;
}

export const serving = (m: EtcdMemberView): boolean => m.status !== undefined && m.status.hasLeader;

export function initialClusterOf(members: readonly EtcdMemberView[], input: Pick<PlanInput, 'placed' | 'pendingMember'>): string {
  return members
    .map((m) => ({ name: memberName(m, input), peer: m.peerUrls[0] }))
    .filter((m): m is { name: string; peer: string } => m.name !== undefined && m.peer !== undefined)
    .map((m) => `${m.name}=${m.peer}`)
    .join(',');
}

function planWithoutEtcd(input: PlanInput): ClusterAction {
  const { placed } = input;
  if (placed.length === 0) return { kind: 'bootstrap', member: nextMemberName(input) };
  const down = placed.find((p) => p.state === 'failed');
  if (down) return { kind: 'restartMember', member: down.name };
  if (placed.some((p) => p.state === 'starting' || p.state === 'running')) return { kind: 'wait', reason: 'waiting for etcd to answer' };
  return { kind: 'lost', reason: `every member lost its data (${placed.map((p) => p.name).join(', ')}); the cluster needs a restore from a backup` };
}

export function planCluster(input: PlanInput): ClusterAction {
  const { etcd, placed, now, gracePeriodMs } = input;
  if (!etcd) return planWithoutEtcd(input);

  const byName = new Map(placed.map((p) => [p.name, p]));
  const leader = etcd.members.find((m) => m.id === etcd.leaderId);

  // 1. Placement drift: every etcd member has a runner, every runner is a member.
  for (const m of etcd.members) {
    const name = memberName(m, input);
    if (name === undefined) {
      if (input.repairsPaused) continue;
      return { kind: 'removeMember', member: m.peerUrls.join(','), id: m.id, reason: 'unknown' };
    }
    if (!byName.has(name) && m.name === '') {
      // Added to etcd but never started (the operator stopped between the member add and the start).
      return { kind: 'startMember', member: name, initialCluster: initialClusterOf(etcd.members, input) };
    }
  }
  for (const p of placed) {
    const known = etcd.members.some((m) => m.name === p.name || m.peerUrls.includes(p.peerUrl));
    if (!known) return { kind: 'deleteRunner', member: p.name };
  }

  if (input.repairsPaused) return { kind: 'steady' };

  // 2. Repairs.
  for (const m of etcd.members) {
    const name = memberName(m, input)!;
    const runner = byName.get(name);
    // A placement lists every member whose data it holds (a PVC, a data dir and its record): a member etcd
    // knows as started (named) that it does not list has lost its data, and is replaced like one that says so.
    if (!runner || runner.state === 'dataLost') {
      // Not the leader while others could lead: it is stopped (local) or loses its Pod, and then is replaced as a follower.
      if (m.id === leader?.id) {
        return etcd.members.length > 1
          ? { kind: 'wait', reason: `the leader ${name} lost its data; waiting for another leader before removing it` }
          : { kind: 'lost', reason: `the only member ${name} lost its data; the cluster needs a restore from a backup` };
      }
      return { kind: 'removeMember', member: name, id: m.id, reason: 'dataLost' };
    }
    const downFor = runner.state === 'failed' ? now - Date.parse(runner.since) : 0;
    const unansweredFor = !serving(m) && input.unhealthySince.has(m.id) ? now - input.unhealthySince.get(m.id)! : 0;
    if (Math.max(downFor, unansweredFor) > gracePeriodMs && leader && m.id !== leader.id) {
      return { kind: 'removeMember', member: name, id: m.id, reason: 'down' };
    }
    if (runner.state === 'failed') return { kind: 'restartMember', member: name };
  }

  // 3. Learners: one at a time, promoted once they serve (etcd checks they caught up).
  const learner = etcd.members.find((m) => m.isLearner);
  if (learner) {
    const name = memberName(learner, input)!;
    if (serving(learner) || learner.status !== undefined) return { kind: 'promote', member: name, id: learner.id };
    return { kind: 'wait', reason: `learner ${name} is starting` };
  }

  // 4. Scale, only from a cluster whose every member serves.
  const notServing = etcd.members.filter((m) => !serving(m));
  if (notServing.length > 0) {
    return { kind: 'wait', reason: `waiting for ${notServing.map((m) => memberName(m, input)).join(', ')} to serve` };
  }
  if (etcd.members.length < input.replicas) {
    // A pending member that never made it into etcd (the member add failed) keeps its name.
    const pending = input.pendingMember;
    const unused = pending !== undefined && !placed.some((p) => p.name === pending.name) && !etcd.members.some((m) => m.name === pending.name || m.peerUrls.includes(pending.peerUrl));
    return { kind: 'addLearner', member: unused ? pending.name : nextMemberName(input) };
  }
  if (etcd.members.length > input.replicas) {
    const candidates = etcd.members
      .filter((m) => m.id !== etcd.leaderId)
      .sort((a, b) => indexOf(input.cluster, memberName(b, input) ?? '') - indexOf(input.cluster, memberName(a, input) ?? ''));
    const victim = candidates[0];
    if (victim) return { kind: 'removeMember', member: memberName(victim, input)!, id: victim.id, reason: 'scaleDown' };
  }
  return { kind: 'steady' };
}
