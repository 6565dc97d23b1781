/**
 * Executes one step of the rolling upgrade planner (./upgrade-plan.ts) per reconcile: creates gate runs
 * (RobustnessRuns owned by the EtcdCluster), judges them, transfers leadership, upgrades or rolls back one
 * member through the placement, and returns the new status.upgrade with the Upgrading and UpgradeBlocked
 * conditions. Kubernetes calls stay in the controller layer: this module is part of it.
 */
import type {
  Condition,
  EtcdClientTls,
  EtcdCluster,
  GateResult,
  GateRunSpec,
  MemberPlacement,
  PlacedMember,
  RobustnessRunResource,
  UpgradeStatus,
} from '../../domain/index.ts';
import { etcdClusterKind, robustnessApiVersion, robustnessRunKind } from '../../domain/index.ts';
import { parseDuration } from '../../duration.ts';
import { formatDuration } from '../../duration.ts';
import { logger } from '../../log.ts';
import { apiErrorMessage, isConflict, type CustomResources } from '../kube-api.ts';
import type { EtcdView } from './observe.ts';
import { withEtcd } from './observe.ts';
import { memberName, serving } from './plan.ts';
import { normalizeGate, planUpgrade, upgradeInProgress, type UpgradeDecision, type UpgradeMember } from './upgrade-plan.ts';

/** Changing its value resumes a blocked upgrade (the failed step runs again). */
export const upgradeResumeAnnotation = 'etcd.robustness.io/upgrade-resume';
/** On gate runs: the EtcdCluster whose upgrade they gate. */
export const gateOfLabel = 'etcd.robustness.io/upgrade-gate-of';
export const gateUpgradeLabel = 'etcd.robustness.io/upgrade';
export const gateStepAnnotation = 'etcd.robustness.io/upgrade-gate-step';

const maxGateResults = 32;
const defaultRunDurationMs = 60_000;

export interface UpgradeContext {
  cluster: EtcdCluster;
  etcd: EtcdView | undefined;
  placed: readonly PlacedMember[];
  /** The cluster plan is steady: no repair or scaling under way. */
  settled: boolean;
  runs: CustomResources<RobustnessRunResource>;
  placement: MemberPlacement<EtcdCluster>;
  /** The cluster's client TLS (the placement's clientTls): the leader transfer's etcd client uses it. */
  clientTls: EtcdClientTls | undefined;
  event: (type: 'Normal' | 'Warning', reason: string, note: string) => Promise<void>;
  now: Date;
}

export interface UpgradeOutcome {
  /** status.upgrade after the step (undefined: there never was one). */
  upgrade: UpgradeStatus | undefined;
  decision: UpgradeDecision;
  upgrading: Omit<Condition, 'lastTransitionTime' | 'observedGeneration'>;
  blocked: Omit<Condition, 'lastTransitionTime' | 'observedGeneration'>;
  membersAtTarget: number;
  /** The gate that finished in this step, for the metrics. */
  gateFinished?: GateResult;
  requeueAfterMs?: number;
}

const rfc3339 = (date: Date): string => date.toISOString().replace(/\.\d{3}Z$/, 'Z');

/** The members as the planner sees them: etcd's view joined with the placement's versions. */
export function upgradeMembers(etcd: EtcdView | undefined, placed: readonly PlacedMember[]): UpgradeMember[] {
  return (etcd?.members ?? []).map((m) => {
    const name = memberName(m, { placed }) ?? m.id;
    const member: UpgradeMember = { name, id: m.id, healthy: serving(m), leader: m.id === etcd?.leaderId, learner: m.isLearner };
    if (m.status !== undefined) member.version = m.status.version;
    const placedVersion = placed.find((p) => p.name === name)?.version;
    if (placedVersion !== undefined) member.placedVersion = placedVersion;
    return member;
  });
}

/** The spec of a gate run: the template's or the referenced run's, run once against the cluster, at least minDuration. */
export function gateRunSpec(source: GateRunSpec, cluster: string, minDuration: string): RobustnessRunResource['spec'] {
  const { clusterRef: _ignored, schedule: _schedule, ...spec } = source as GateRunSpec & { clusterRef?: unknown; schedule?: unknown };
  const minMs = parseDuration(minDuration);
  const durationMs = spec.duration === undefined ? defaultRunDurationMs : parseDuration(spec.duration);
  const result: RobustnessRunResource['spec'] = { ...spec, clusterRef: { name: cluster }, schedule: { kind: 'once' } };
  if (durationMs < minMs) {
    result.duration = formatDuration(minMs);
    // A timeout written for the shorter duration would now be shorter than the run: the default applies.
    if (spec.timeout !== undefined && parseDuration(spec.timeout) <= minMs) delete result.timeout;
  }
  return result;
}

function conditionsOf(upgrade: UpgradeStatus | undefined, decision: UpgradeDecision, specVersion: string): Pick<UpgradeOutcome, 'upgrading' | 'blocked'> {
  const inProgress = upgradeInProgress(upgrade);
  const upgrading: UpgradeOutcome['upgrading'] = inProgress
    ? {
        type: 'Upgrading',
        status: 'True',
        reason: upgrade!.phase,
        message: decision.kind === 'wait' ? decision.reason : `${upgrade!.from} to ${upgrade!.to}${upgrade!.step === undefined ? '' : `: ${upgrade!.step}`}`,
      }
    : {
        type: 'Upgrading',
        status: 'False',
        reason: upgrade?.phase ?? 'NoUpgrade',
        message: upgrade === undefined ? 'no upgrade has run' : `the last upgrade (${upgrade.from} to ${upgrade.to}) ended ${upgrade.phase}`,
      };
  let blocked: UpgradeOutcome['blocked'] = { type: 'UpgradeBlocked', status: 'False', reason: 'NotBlocked', message: 'no upgrade is blocked' };
  if (upgrade?.phase === 'Blocked') {
    blocked = { type: 'UpgradeBlocked', status: 'True', reason: upgrade.reason?.startsWith('gate ') === true ? 'GateFailed' : 'UpgradeStopped', message: upgrade.reason ?? 'blocked' };
  } else if (upgrade?.phase === 'Refused' && upgrade.to === specVersion) {
    blocked = { type: 'UpgradeBlocked', status: 'True', reason: 'InvalidUpgradePath', message: upgrade.reason ?? 'refused' };
  } else if (decision.kind === 'wait' && decision.blocked === true) {
    blocked = { type: 'UpgradeBlocked', status: 'True', reason: 'WaitingForUser', message: decision.reason };
  }
  return { upgrading, blocked };
}

/** One step of the rolling upgrade; never throws for a step that failed (that blocks the upgrade). */
export async function upgradeStep(ctx: UpgradeContext): Promise<UpgradeOutcome> {
  const { cluster, now } = ctx;
  const namespace = cluster.metadata.namespace ?? 'default';
  const clusterName = cluster.metadata.name;
  const gate = normalizeGate(cluster.spec.upgradeGate);
  const members = upgradeMembers(ctx.etcd, ctx.placed);
  let upgrade = cluster.status?.upgrade;

  // The gate run of the gate in progress, read for the planner.
  let gateRun: { name: string; exists: boolean; status?: RobustnessRunResource['status'] } | undefined;
  const running = upgrade?.gates.filter((g) => g.phase === 'Running').at(-1);
  if (running !== undefined && upgradeInProgress(upgrade)) {
    const resource = await ctx.runs.get(namespace, running.run);
    gateRun = { name: running.run, exists: resource !== undefined, status: resource?.status };
  }

  const decision = planUpgrade({
    clusterName,
    spec: cluster.spec,
    gate,
    upgrade,
    members,
    settled: ctx.settled,
    gateRun,
    resume: cluster.metadata.annotations?.[upgradeResumeAnnotation],
    now,
  });
  let gateFinished: GateResult | undefined;
  const block = async (reason: string): Promise<void> => {
    upgrade = { ...upgrade!, phase: 'Blocked', reason };
    delete upgrade.step;
    await ctx.event('Warning', 'UpgradeBlocked', `upgrade ${upgrade.from} to ${upgrade.to} blocked: ${reason}`);
  };
  if (decision.kind !== 'none' && decision.kind !== 'wait') logger.info(`EtcdCluster ${namespace}/${clusterName}: upgrade step ${decision.kind}`, { decision });

  switch (decision.kind) {
    case 'none':
    case 'wait':
      break;
    case 'refuse':
      upgrade = { ...decision.upgrade, finishedAt: rfc3339(now) };
      await ctx.event('Warning', 'UpgradeRefused', `not upgrading ${upgrade.from} to ${upgrade.to}: ${decision.reason}`);
      break;
    case 'start':
      upgrade = decision.upgrade;
      await ctx.event('Normal', 'UpgradeStarted', `upgrading ${upgrade.from} to ${upgrade.to}, one member at a time: ${upgrade.order.join(', ')}${gate ? ', gated' : ''}`);
      await deleteOldGateRuns(ctx, upgrade.number);
      break;
    case 'startGate': {
      const up = upgrade!;
      let source: GateRunSpec | undefined = gate?.runTemplate?.spec;
      if (source === undefined && gate?.runRef !== undefined) {
        const referenced = await ctx.runs.get(namespace, gate.runRef.name);
        if (referenced === undefined) {
          await block(`gate ${decision.step}: the referenced RobustnessRun ${namespace}/${gate.runRef.name} does not exist`);
          break;
        }
        source = referenced.spec;
      }
      if (source === undefined || gate === undefined) {
        await block(`gate ${decision.step}: spec.upgradeGate names no run`);
        break;
      }
      const body: RobustnessRunResource = {
        apiVersion: robustnessApiVersion,
        kind: robustnessRunKind,
        metadata: {
          name: decision.run,
          namespace,
          labels: { [gateOfLabel]: clusterName, [gateUpgradeLabel]: String(up.number) },
          annotations: { [gateStepAnnotation]: decision.step },
          ...(cluster.metadata.uid === undefined
            ? {}
            : { ownerReferences: [{ apiVersion: robustnessApiVersion, kind: etcdClusterKind, name: clusterName, uid: cluster.metadata.uid, controller: true, blockOwnerDeletion: true }] }),
        },
        spec: gateRunSpec(source, clusterName, gate.minDuration),
      };
      try {
        await ctx.runs.create(namespace, body);
      } catch (error) {
        // Created by an earlier reconcile that did not get to write its status: judge that one.
        if (!isConflict(error)) {
          await block(`gate ${decision.step}: the gate run ${decision.run} could not be created: ${apiErrorMessage(error)}`);
          break;
        }
      }
      const result: GateResult = { step: decision.step, run: decision.run, phase: 'Running', startedAt: rfc3339(now) };
      upgrade = { ...up, step: `gate:${decision.step}`, gates: boundedGates([...up.gates, result]) };
      await ctx.event('Normal', 'GateStarted', `gate ${decision.step} of the upgrade to ${up.to}: RobustnessRun ${decision.run}`);
      break;
    }
    case 'gateFinished': {
      const up = upgrade!;
      const gates = [...up.gates];
      const index = gates.map((g) => g.run).lastIndexOf(decision.result.run);
      if (index >= 0) gates[index] = decision.result;
      upgrade = { ...up, gates };
      delete upgrade.step;
      gateFinished = decision.result;
      if (decision.result.phase === 'Passed') {
        await ctx.event('Normal', 'GatePassed', `gate ${decision.result.step} passed (run ${decision.result.run}): ${decision.result.reason ?? ''}`);
      } else {
        await ctx.event('Warning', 'GateFailed', `gate ${decision.result.step} failed (run ${decision.result.run}): ${decision.result.reason ?? ''}`);
        await block(`gate ${decision.result.step} failed (run ${decision.result.run}): ${decision.result.reason ?? ''}`);
      }
      break;
    }
    case 'transferLeader': {
      const leaderUrl = ctx.etcd?.members.find((m) => m.id === ctx.etcd?.leaderId)?.clientUrls[0];
      if (leaderUrl === undefined) break;
      try {
        await withEtcd([leaderUrl], ctx.clientTls, (c) => c.maintenance.moveLeader({ targetID: decision.toId }, { deadline: Date.now() + 10_000 }));
        await ctx.event('Normal', 'LeaderTransferred', `moved leadership from ${decision.from} to ${decision.to} before upgrading ${decision.from}`);
      } catch (error) {
        // Retried by the next reconcile (etcd refuses while the target catches up).
        logger.warn(`EtcdCluster ${namespace}/${clusterName}: leader transfer to ${decision.to} failed: ${apiErrorMessage(error)}`);
      }
      break;
    }
    case 'upgradeMember':
    case 'rollbackMember': {
      const rollback = decision.kind === 'rollbackMember';
      upgrade = { ...upgrade!, step: `${rollback ? 'rollback' : 'member'}:${decision.member}` };
      try {
        await ctx.placement.upgradeMember(cluster, decision.member, decision.version);
        await ctx.event('Normal', rollback ? 'MemberRollingBack' : 'MemberUpgrading', `restarting ${decision.member} on etcd ${decision.version}`);
      } catch (error) {
        await block(`${rollback ? 'rolling back' : 'upgrading'} ${decision.member} to ${decision.version} failed: ${apiErrorMessage(error)}`);
      }
      break;
    }
    case 'memberUpgraded':
      upgrade = { ...upgrade! };
      delete upgrade.step;
      await ctx.event('Normal', 'MemberUpgraded', `${decision.member} serves etcd ${upgrade.to}`);
      break;
    case 'resume':
      upgrade = { ...upgrade!, phase: 'Progressing', resumed: decision.token };
      delete upgrade.reason;
      await ctx.event('Normal', 'UpgradeResumed', `resumed by ${upgradeResumeAnnotation}=${decision.token}: the failed step runs again`);
      break;
    case 'startRollback': {
      // A gate still running stops first (deleting its run heals the faults it injected): the roll-back
      // restarts members, and a gate of the abandoned upgrade judges nothing any more.
      const gates: GateResult[] = [];
      for (const gate of upgrade!.gates) {
        if (gate.phase !== 'Running') {
          gates.push(gate);
          continue;
        }
        await ctx.runs.delete(namespace, gate.run);
        gates.push({ ...gate, phase: 'Failed', reason: 'cancelled: the upgrade is rolled back', finishedAt: rfc3339(now) });
      }
      upgrade = { ...upgrade!, phase: 'RollingBack', gates };
      delete upgrade.step;
      delete upgrade.reason;
      await ctx.event('Normal', 'UpgradeRollingBack', `spec.version is ${upgrade.from} again: rolling back the members upgraded to ${upgrade.to}`);
      break;
    }
    case 'block':
      await block(decision.reason);
      break;
    case 'finish':
      upgrade = { ...upgrade!, phase: decision.phase, finishedAt: rfc3339(now) };
      delete upgrade.step;
      delete upgrade.reason;
      await ctx.event(
        'Normal',
        decision.phase === 'Succeeded' ? 'UpgradeCompleted' : 'UpgradeRolledBack',
        decision.phase === 'Succeeded' ? `every member runs etcd ${upgrade.to}` : `every member runs etcd ${upgrade.from} again`,
      );
      break;
  }

  const target = upgrade?.to;
  const membersAtTarget = target === undefined ? 0 : members.filter((m) => m.version === target).length;
  const outcome: UpgradeOutcome = { upgrade, decision, membersAtTarget, ...conditionsOf(upgrade, decision, cluster.spec.version) };
  if (gateFinished !== undefined) outcome.gateFinished = gateFinished;
  if (upgradeInProgress(upgrade) || decision.kind === 'start') outcome.requeueAfterMs = decision.kind === 'wait' ? 2000 : 500;
  return outcome;
}

/**
 * The gate runs of upgrades before the previous one: each upgrade keeps its own and the previous one's
 * (the evidence of the last comparison), so gate runs (and their series and reports) do not pile up.
 */
async function deleteOldGateRuns(ctx: UpgradeContext, current: number): Promise<void> {
  const namespace = ctx.cluster.metadata.namespace ?? 'default';
  const runs = await ctx.runs.list(namespace);
  for (const run of runs) {
    const labels = run.metadata.labels ?? {};
    if (labels[gateOfLabel] !== ctx.cluster.metadata.name) continue;
    const number = Number(labels[gateUpgradeLabel]);
    if (Number.isInteger(number) && number < current - 1) await ctx.runs.delete(namespace, run.metadata.name);
  }
}

/** At most maxGateResults, dropping the oldest failed attempts first: a step's latest result always stays. */
export function boundedGates(gates: readonly GateResult[]): GateResult[] {
  const kept = [...gates];
  while (kept.length > maxGateResults) {
    const latest = new Set(kept.map((g, i) => (kept.findLastIndex((h) => h.step === g.step) === i ? i : -1)));
    const drop = kept.findIndex((g, i) => g.phase === 'Failed' && !latest.has(i));
    kept.splice(drop >= 0 ? drop : 0, 1);
  }
  return kept;
}

/** status.upgrade as a merge patch: optional fields that are absent are cleared. */
export function upgradePatch(upgrade: UpgradeStatus): Record<string, unknown> {
  return { step: null, reason: null, finishedAt: null, resumed: null, ...upgrade };
}
