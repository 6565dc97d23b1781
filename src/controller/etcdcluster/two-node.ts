/**
 * One reconcile step of a twoNodeWitness EtcdCluster: read the witness record, decide with planTwoNode
 * (src/controller/witness/protocol.ts), carry the step out, and say what happened in Events. The steps
 * that are plain membership work (bootstrap, start, learners) are the standard reconciler's; this module
 * adds the witness writes, the fence and the survivor's recovery.
 */
import type { EtcdCluster, FailoverStatus, MemberPlacement, PlacedMember, VersionedWitnessRecord, Witness, WitnessStatus } from '../../domain/index.ts';
import { logger } from '../../log.ts';
import { planTwoNode, quorumLost, type OperatorIdentity, type TwoNodeAction } from '../witness/protocol.ts';
import type { EtcdView } from './observe.ts';
import type { ClusterAction } from './plan.ts';

export interface TwoNodeStepContext {
  cluster: EtcdCluster;
  witness: Witness;
  placement: MemberPlacement<EtcdCluster>;
  self: OperatorIdentity;
  etcd: EtcdView | undefined;
  placed: readonly PlacedMember[];
  now: number;
  failoverGraceMs: number;
  event: (type: 'Normal' | 'Warning', reason: string, note: string) => Promise<void>;
  /** Carries out the steps the standard reconciler knows; returns its requeue delay. */
  standardStep: (action: ClusterAction) => Promise<number | undefined>;
}

export interface TwoNodeStepResult {
  action: TwoNodeAction;
  /** The action as the status and the standard step name it. */
  statusAction: ClusterAction;
  requeueAfterMs: number;
  witness: WitnessStatus;
}

export function describeTwoNode(action: TwoNodeAction): string {
  switch (action.kind) {
    case 'writeWitness': {
      const r = action.next;
      const what = {
        init: `initialising the witness record (members ${r.members.join(', ')})`,
        claim: 'claiming the witness record for this operator replica',
        failover: `failing over to ${r.survivor ?? '?'}: fencing ${r.fencedMember ?? '?'}`,
        single: `the survivor ${r.members.join(', ')} serves alone`,
        announce: `announcing the replacement ${r.members.at(-1) ?? '?'} in the witness`,
      }[action.reason];
      return `witness epoch ${r.epoch}: ${what}`;
    }
    case 'fence':
      return `fencing ${action.member} (witness epoch ${action.epoch})`;
    case 'recoverSurvivor':
      return `recovering ${action.member} as a one-member cluster (failover of epoch ${action.failoverEpoch})`;
    case 'finishRecovery':
      return `the failover is over: ${action.member} starts plainly from now on`;
    case 'refused':
    case 'wait':
      return action.reason;
    case 'steady':
      return 'the pair serves';
    default:
      return action.kind;
  }
}

/** The standard action a two-node action is, for the shared steps and the status. */
function asClusterAction(action: TwoNodeAction): ClusterAction {
  switch (action.kind) {
    case 'bootstrap':
    case 'deleteRunner':
    case 'restartMember':
    case 'startMember':
    case 'addLearner':
    case 'promote':
    case 'steady':
      return action;
    case 'removeMember':
      return { kind: 'removeMember', member: action.member, id: action.id, reason: 'unknown' };
    default:
      return { kind: 'wait', reason: describeTwoNode(action) };
  }
}

/** Per cluster, in this operator process: when the pair was first seen without quorum. */
export class QuorumTracker {
  private readonly since = new Map<string, number>();

  observe(key: string, etcd: EtcdView | undefined, now: number): number | undefined {
    if (!quorumLost(etcd)) {
      this.since.delete(key);
      return undefined;
    }
    if (!this.since.has(key)) this.since.set(key, now);
    return this.since.get(key);
  }

  forget(key: string): void {
    this.since.delete(key);
  }
}

function witnessStatus(ctx: TwoNodeStepContext, view: VersionedWitnessRecord, lastFailover: FailoverStatus | undefined): WitnessStatus {
  const status: WitnessStatus = { witness: ctx.witness.description };
  const r = view.record;
  if (r) {
    status.epoch = r.epoch;
    status.phase = r.phase;
    status.members = r.members;
    status.fenced = r.fenced;
  }
  if (lastFailover) status.lastFailover = lastFailover;
  return status;
}

/**
 * A failover this replica took over from another (which died before writing its status) is rebuilt
 * from the record, so status and Events still show it; when it was won is then only known as the time
 * of the record this replica read.
 */
function failoverOf(view: VersionedWitnessRecord, known: FailoverStatus | undefined): FailoverStatus | undefined {
  const r = view.record;
  if (r?.phase !== 'failingOver' || r.failoverEpoch === undefined || known?.epoch === r.failoverEpoch) return known;
  return { epoch: r.failoverEpoch, survivor: r.survivor!, fenced: r.fencedMember ?? '', quorumLostAt: r.updatedAt, startedAt: r.updatedAt };
}

export async function twoNodeStep(ctx: TwoNodeStepContext, quorumLostSince: number | undefined): Promise<TwoNodeStepResult> {
  let view = await ctx.witness.read();
  let lastFailover = failoverOf(view, ctx.cluster.status?.witness?.lastFailover);
  const action = planTwoNode({
    cluster: ctx.cluster.metadata.name,
    self: ctx.self,
    now: ctx.now,
    failoverGraceMs: ctx.failoverGraceMs,
    witness: view,
    etcd: ctx.etcd,
    placed: ctx.placed,
    quorumLostSince,
  });
  const key = `${ctx.cluster.metadata.namespace ?? 'default'}/${ctx.cluster.metadata.name}`;
  if (action.kind !== 'steady' && action.kind !== 'wait') logger.info(`EtcdCluster ${key}: ${describeTwoNode(action)}`);
  let requeueAfterMs = action.kind === 'steady' ? 1000 : 200;
  switch (action.kind) {
    case 'writeWitness': {
      const result = await ctx.witness.compareAndSwap(action.expectedVersion, action.next);
      if (!result.ok) {
        // Someone else wrote first (or a newer term owns the record): decide again from what is there.
        await ctx.event('Warning', 'WitnessWriteRefused', `${describeTwoNode(action)}: refused by the witness (${result.reason})`);
        view = result.current;
        requeueAfterMs = 100;
        break;
      }
      view = { record: action.next, version: result.version };
      const r = action.next;
      if (action.reason === 'failover') {
        lastFailover = {
          epoch: r.epoch,
          survivor: r.survivor!,
          fenced: r.fencedMember!,
          quorumLostAt: new Date(quorumLostSince ?? ctx.now).toISOString(),
          startedAt: new Date(ctx.now).toISOString(),
        };
        await ctx.event('Warning', 'FailoverStarted', `${describeTwoNode(action)}; no quorum since ${lastFailover.quorumLostAt}`);
      } else if (action.reason === 'single' && lastFailover && lastFailover.writableAt === undefined && r.members[0] === lastFailover.survivor) {
        lastFailover = { ...lastFailover, writableAt: new Date(ctx.now).toISOString() };
        const ms = ctx.now - Date.parse(lastFailover.quorumLostAt);
        await ctx.event('Normal', 'FailoverCompleted', `${r.members[0]} serves alone at witness epoch ${r.epoch}, ${ms} ms after quorum was lost`);
      } else if (action.reason === 'announce') {
        await ctx.event('Normal', 'ReplacementAnnounced', describeTwoNode(action));
      } else if (action.reason === 'init' || action.reason === 'claim') {
        await ctx.event('Normal', action.reason === 'init' ? 'WitnessInitialized' : 'WitnessClaimed', `${describeTwoNode(action)} at ${ctx.witness.description}`);
      }
      requeueAfterMs = 10;
      break;
    }
    case 'fence':
      await ctx.placement.fenceMember(ctx.cluster, action.member, action.epoch);
      await ctx.event('Warning', 'MemberFenced', `${action.member} stopped and fenced at witness epoch ${action.epoch}: it never serves again`);
      requeueAfterMs = 10;
      break;
    case 'finishRecovery':
      await ctx.placement.finishRecovery(ctx.cluster, action.member);
      requeueAfterMs = 10;
      break;
    case 'recoverSurvivor':
      await ctx.placement.recoverSurvivor(ctx.cluster, action.member, action.failoverEpoch);
      await ctx.event('Warning', 'SurvivorRecovering', `${action.member} restarted alone (--force-new-cluster after its whole log was marked committed)`);
      requeueAfterMs = 200;
      break;
    case 'refused':
      await ctx.event('Warning', 'WitnessOwnedElsewhere', action.reason);
      requeueAfterMs = 2000;
      break;
    case 'wait':
      requeueAfterMs = quorumLostSince === undefined ? 500 : 200;
      break;
    default: {
      const retry = await ctx.standardStep(asClusterAction(action));
      if (retry !== undefined) requeueAfterMs = Math.min(retry, 1000);
      // Both members down (an operator restart): the second is started right after the first, well
      // within the failover grace, so a restart does not look like a failed member.
      if (action.kind === 'restartMember' || action.kind === 'startMember') requeueAfterMs = 50;
    }
  }
  return { action, statusAction: asClusterAction(action), requeueAfterMs, witness: witnessStatus(ctx, view, lastFailover) };
}
