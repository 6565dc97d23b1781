/**
 * The two-node-plus-witness protocol's decision, as a pure function of what the operator observes:
 * the witness record, etcd's member list and statuses, the members the placement runs, the clock.
 * One step per call; the reconciler executes it and calls again. The deterministic simulation
 * (test/witness-sim) runs this same function against simulated members, witness and network.
 *
 * The record is the protocol's memory, not the operator: every change of who may serve is first won
 * in the witness (compare-and-swap to the next epoch), then carried out, so a step interrupted by an
 * operator crash is finished by whichever replica holds the record next. docs/two-node-witness.md has
 * the safety argument.
 *
 *   no record               → write epoch 1 (naming the founder, or adopting the members etcd has)
 *   record of another owner → claim it (same content, next epoch): a replica that lost its Lease is
 *                             refused from then on by the term rule
 *   paired, no quorum for the grace → failover: win failingOver{survivor, fenced} for the next epoch
 *   failingOver             → fence the other member, recover the survivor alone (once per failover),
 *                             then write single{survivor} once it serves writes alone
 *   single or paired        → first remove a survivor's forced-start mark left from its failover
 *   single                  → delete what is not a member, announce the replacement (paired{S, N})
 *   paired with a learner   → add N as a learner, start it, promote it once it caught up
 */
import type { PlacedMember, VersionedWitnessRecord, WitnessRecord } from '../../domain/index.ts';
import type { EtcdMemberView, EtcdView } from '../etcdcluster/observe.ts';
import { memberName, nextMemberName, serving } from '../etcdcluster/plan.ts';

/** The operator replica deciding: its leader-election identity and term. */
export interface OperatorIdentity {
  identity: string;
  term: number;
}

export interface TwoNodeInput {
  cluster: string;
  self: OperatorIdentity;
  now: number;
  failoverGraceMs: number;
  witness: VersionedWitnessRecord;
  etcd: EtcdView | undefined;
  placed: readonly PlacedMember[];
  /** When this replica first saw the pair without quorum (no answering member has a leader), ms. */
  quorumLostSince: number | undefined;
}

export type WitnessWriteReason = 'init' | 'claim' | 'failover' | 'single' | 'announce';

export type TwoNodeAction =
  | { kind: 'writeWitness'; reason: WitnessWriteReason; next: WitnessRecord; expectedVersion: string }
  | { kind: 'bootstrap'; member: string }
  | { kind: 'fence'; member: string; epoch: number }
  | { kind: 'recoverSurvivor'; member: string; failoverEpoch: number }
  /** The failover is over (the record says so): the survivor's forced-start mark goes. */
  | { kind: 'finishRecovery'; member: string }
  /** A runner that is no member of the cluster (fenced, or removed by the survivor's recovery). */
  | { kind: 'deleteRunner'; member: string }
  | { kind: 'restartMember'; member: string }
  | { kind: 'startMember'; member: string; initialCluster: string }
  | { kind: 'addLearner'; member: string }
  | { kind: 'promote'; member: string; id: string }
  | { kind: 'removeMember'; member: string; id: string }
  /** This replica may not act: the record belongs to a newer term. */
  | { kind: 'refused'; reason: string }
  | { kind: 'wait'; reason: string }
  | { kind: 'steady' };

const voters = (etcd: EtcdView): EtcdMemberView[] => etcd.members.filter((m) => !m.isLearner);

function nextRecord(input: TwoNodeInput, current: WitnessRecord | undefined, changes: Partial<WitnessRecord>): WitnessRecord {
  const base: WitnessRecord = current ?? { epoch: 0, owner: '', ownerTerm: 0, phase: 'single', members: [], fenced: [], updatedAt: '' };
  const next: WitnessRecord = {
    ...base,
    ...changes,
    epoch: base.epoch + 1,
    owner: input.self.identity,
    ownerTerm: input.self.term,
    updatedAt: new Date(input.now).toISOString(),
  };
  // Fields that only belong to a failover do not outlive it.
  if (next.phase !== 'failingOver') {
    delete next.survivor;
    delete next.failoverEpoch;
  }
  return next;
}

function write(input: TwoNodeInput, reason: WitnessWriteReason, changes: Partial<WitnessRecord>): TwoNodeAction {
  return { kind: 'writeWitness', reason, next: nextRecord(input, input.witness.record, changes), expectedVersion: input.witness.version };
}

/** The first record: names the founder of a new cluster, or adopts the members that exist. */
function initialRecord(input: TwoNodeInput): TwoNodeAction {
  const { etcd, placed } = input;
  if (etcd) {
    const names = etcd.members.map((m) => memberName(m, input)).filter((n): n is string => n !== undefined);
    return write(input, 'init', { phase: voters(etcd).length >= 2 ? 'paired' : 'single', members: names, fenced: [] });
  }
  const alive = placed.filter((p) => p.state !== 'dataLost' && p.fenced !== true).map((p) => p.name);
  if (alive.length > 0) return write(input, 'init', { phase: alive.length >= 2 ? 'paired' : 'single', members: alive, fenced: [] });
  return write(input, 'init', { phase: 'single', members: [nextMemberName({ cluster: input.cluster, placed, etcd })], fenced: [] });
}

/** A name no member ever had: fenced names (whose runners are gone) included. */
function newMemberName(input: TwoNodeInput, record: WitnessRecord): string {
  const named = [...record.fenced, ...record.members].map((name) => ({ name, clientUrl: '', peerUrl: '', state: 'dataLost' as const, since: '' }));
  return nextMemberName({ cluster: input.cluster, placed: [...input.placed, ...named], etcd: input.etcd });
}

/**
 * Runners etcd does not know and the record does not name (leftovers of a removed member): deleted.
 * A fenced runner stays (stopped, with its data, for a post-mortem) until the pair is whole again.
 */
function strayRunner(input: TwoNodeInput, record: WitnessRecord, includeFenced: boolean): TwoNodeAction | undefined {
  const { etcd, placed } = input;
  if (!etcd) return undefined;
  for (const p of placed) {
    if (p.fenced === true && !includeFenced) continue;
    const known = etcd.members.some((m) => m.name === p.name || m.peerUrls.includes(p.peerUrl));
    if (!known && (!record.members.includes(p.name) || p.fenced === true)) return { kind: 'deleteRunner', member: p.name };
  }
  return undefined;
}

function planFailingOver(input: TwoNodeInput, record: WitnessRecord): TwoNodeAction {
  const survivor = record.survivor!;
  const failoverEpoch = record.failoverEpoch!;
  const fenced = record.fencedMember;
  const byName = new Map(input.placed.map((p) => [p.name, p]));
  // Fence first: the other member must be stopped and marked before the survivor may serve alone.
  if (fenced !== undefined) {
    const runner = byName.get(fenced);
    if (runner && runner.fenced !== true) return { kind: 'fence', member: fenced, epoch: failoverEpoch };
  }
  const runner = byName.get(survivor);
  if (!runner) return { kind: 'wait', reason: `the survivor ${survivor} has no runner` };
  if (runner.state === 'dataLost') return { kind: 'wait', reason: `the survivor ${survivor} lost its data; the cluster needs a restore from a backup` };
  if (runner.recoveredEpoch !== failoverEpoch) return { kind: 'recoverSurvivor', member: survivor, failoverEpoch };
  const member = input.etcd?.members.find((m) => memberName(m, input) === survivor);
  const alone = input.etcd !== undefined && input.etcd.members.length === 1 && member !== undefined && !member.isLearner;
  if (alone && serving(member)) return write(input, 'single', { phase: 'single', members: [survivor] });
  if (runner.state === 'failed') return { kind: 'restartMember', member: survivor };
  return { kind: 'wait', reason: `the survivor ${survivor} is starting as a one-member cluster` };
}

/**
 * A survivor whose forced-start mark outlived its failover: removed before anything else happens (a
 * later start of the survivor must not force a new cluster again, which would drop a replacement).
 */
function unfinishedRecovery(input: TwoNodeInput): TwoNodeAction | undefined {
  const survivor = input.placed.find((p) => p.recovering === true);
  return survivor ? { kind: 'finishRecovery', member: survivor.name } : undefined;
}

function planSingle(input: TwoNodeInput, record: WitnessRecord): TwoNodeAction {
  const unfinished = unfinishedRecovery(input);
  if (unfinished) return unfinished;
  const { etcd, placed } = input;
  const founder = record.members[0];
  if (!etcd) {
    if (placed.length === 0 && founder !== undefined) return { kind: 'bootstrap', member: founder };
    const down = placed.find((p) => p.state === 'failed' && record.members.includes(p.name) && p.fenced !== true);
    if (down) return { kind: 'restartMember', member: down.name };
    return { kind: 'wait', reason: 'waiting for etcd to answer' };
  }
  const stray = strayRunner(input, record, false);
  if (stray) return stray;
  // A member etcd has that the record does not name (a replica that lost its Lease added it): removed.
  const unnamed = etcd.members.find((m) => {
    const name = memberName(m, input);
    return (name === undefined || !record.members.includes(name)) && m.id !== etcd.leaderId;
  });
  if (unnamed) return { kind: 'removeMember', member: memberName(unnamed, input) ?? unnamed.peerUrls.join(','), id: unnamed.id };
  const down = placed.find((p) => p.state === 'failed' && record.members.includes(p.name));
  if (down) return { kind: 'restartMember', member: down.name };
  const only = etcd.members[0];
  if (etcd.members.length === 1 && only !== undefined && serving(only)) {
    // Announced in the witness before etcd hears of it: the record always names every member that may run.
    return write(input, 'announce', { phase: 'paired', members: [...record.members, newMemberName(input, record)] });
  }
  return { kind: 'wait', reason: 'waiting for the member to serve' };
}

/** The survivor of a failover: an answering voter the record names, the most up to date first. */
function chooseSurvivor(input: TwoNodeInput, record: WitnessRecord, etcd: EtcdView): EtcdMemberView | undefined {
  const byName = new Map(input.placed.map((p) => [p.name, p]));
  return voters(etcd)
    .filter((m) => {
      const name = memberName(m, input);
      const runner = name === undefined ? undefined : byName.get(name);
      return name !== undefined && record.members.includes(name) && !record.fenced.includes(name) && m.status !== undefined && runner !== undefined && runner.state !== 'dataLost' && runner.fenced !== true;
    })
    .sort((a, b) => (b.status?.raftIndex ?? 0) - (a.status?.raftIndex ?? 0) || (memberName(a, input) ?? '').localeCompare(memberName(b, input) ?? ''))[0];
}

function planPaired(input: TwoNodeInput, record: WitnessRecord): TwoNodeAction {
  const unfinished = unfinishedRecovery(input);
  if (unfinished) return unfinished;
  const { etcd, placed, now } = input;
  if (!etcd) {
    const down = placed.find((p) => p.state === 'failed' && record.members.includes(p.name) && p.fenced !== true);
    if (down) return { kind: 'restartMember', member: down.name };
    return { kind: 'wait', reason: 'no member answers' };
  }
  const pair = voters(etcd);
  const lostFor = input.quorumLostSince === undefined ? 0 : now - input.quorumLostSince;
  if (pair.length === 2 && input.quorumLostSince !== undefined && lostFor >= input.failoverGraceMs) {
    const survivor = chooseSurvivor(input, record, etcd);
    if (!survivor) return { kind: 'wait', reason: `no quorum for ${Math.round(lostFor / 1000)} s and no member answers to fail over to` };
    const survivorName = memberName(survivor, input)!;
    const other = pair.find((m) => m.id !== survivor.id)!;
    const fenced = memberName(other, input) ?? other.peerUrls.join(',');
    return write(input, 'failover', {
      phase: 'failingOver',
      survivor: survivorName,
      failoverEpoch: record.epoch + 1,
      fencedMember: fenced,
      fenced: record.fenced.includes(fenced) ? record.fenced : [...record.fenced, fenced],
      members: [survivorName],
    });
  }
  const stray = strayRunner(input, record, false);
  if (stray) return stray;
  const byName = new Map(placed.map((p) => [p.name, p]));
  // Repairs within the grace: a member whose runner is down is started again with its data.
  for (const m of etcd.members) {
    const name = memberName(m, input);
    if (name === undefined) continue;
    const runner = byName.get(name);
    if (!runner && m.name !== '') return { kind: 'startMember', member: name, initialCluster: initialCluster(etcd, input) };
    if (runner?.state === 'failed' && runner.fenced !== true) return { kind: 'restartMember', member: name };
  }
  // The replacement the record announced: added as a learner, started, promoted once it caught up.
  const newcomer = record.members.find((n) => !etcd.members.some((m) => memberName(m, input) === n));
  if (newcomer !== undefined && pair.length === 1) {
    if (!serving(pair[0]!)) return { kind: 'wait', reason: 'waiting for the member to serve before adding a learner' };
    // A learner etcd has and nothing runs is the newcomer whose start never happened (the operator
    // stopped between the member add and the start): started, not added again (etcd allows one learner).
    // Found by the simulation (seed 2792).
    const orphan = etcd.members.find((m) => m.isLearner && memberName(m, input) === undefined);
    if (orphan) return { kind: 'startMember', member: newcomer, initialCluster: [initialCluster(etcd, input), `${newcomer}=${orphan.peerUrls[0] ?? ''}`].filter((x) => x !== '').join(',') };
    return { kind: 'addLearner', member: newcomer };
  }
  const learner = etcd.members.find((m) => m.isLearner);
  if (learner) {
    const name = memberName(learner, input);
    if (name !== undefined && !byName.has(name)) return { kind: 'startMember', member: name, initialCluster: initialCluster(etcd, input) };
    if (learner.status !== undefined) return { kind: 'promote', member: name ?? learner.id, id: learner.id };
    return { kind: 'wait', reason: `learner ${name ?? learner.id} is starting` };
  }
  const notServing = etcd.members.filter((m) => !serving(m));
  if (notServing.length > 0) return { kind: 'wait', reason: `waiting for ${notServing.map((m) => memberName(m, input) ?? m.id).join(', ')} to serve` };
  // The pair is whole again: the fenced member's runner and data go (its fence mark stays).
  return strayRunner(input, record, true) ?? { kind: 'steady' };
}

function initialCluster(etcd: EtcdView, input: TwoNodeInput): string {
  return etcd.members
    .map((m) => ({ name: memberName(m, input), peer: m.peerUrls[0] }))
    .filter((m): m is { name: string; peer: string } => m.name !== undefined && m.peer !== undefined)
    .map((m) => `${m.name}=${m.peer}`)
    .join(',');
}

export function planTwoNode(input: TwoNodeInput): TwoNodeAction {
  const { record } = input.witness;
  if (!record) return initialRecord(input);
  if (record.ownerTerm > input.self.term) {
    return { kind: 'refused', reason: `the witness record (epoch ${record.epoch}) belongs to ${record.owner} at term ${record.ownerTerm}, newer than ours (${input.self.term})` };
  }
  if (record.owner !== input.self.identity || record.ownerTerm !== input.self.term) return write(input, 'claim', {});
  switch (record.phase) {
    case 'failingOver':
      return planFailingOver(input, record);
    case 'single':
      return planSingle(input, record);
    case 'paired':
      return planPaired(input, record);
  }
}

/** True when no answering member has a leader (or none answers): the pair cannot commit writes. */
export function quorumLost(etcd: EtcdView | undefined): boolean {
  return !etcd || !etcd.members.some((m) => !m.isLearner && serving(m));
}
