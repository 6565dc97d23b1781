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

/** One decision of the planner, narrowed to its kind. */
type Decision<K extends UpgradeDecision['kind']> = Extract<UpgradeDecision, { kind: K }>;

/**
 * What the steps below pass along: the reconcile's context, and status.upgrade as it stands so far (each
 * step replaces it; the outcome reports the last one).
 */
interface StepState {
  ctx: UpgradeContext;
  namespace: string;
  clusterName: string;
  gate: ReturnType<typeof normalizeGate>;
  upgrade: UpgradeStatus | undefined;
  /** The gate that finished in this step, for the metrics. */
  gateFinished?: GateResult;
}

/** One step of the rolling upgrade; never throws for a step that failed (that blocks the upgrade). */
export async function upgradeStep(ctx: UpgradeContext): Promise<UpgradeOutcome> {
  const { cluster, now } = ctx;
  const state: StepState = {
    ctx,
    namespace: cluster.metadata.namespace ?? 'default',
    clusterName: cluster.metadata.name,
    gate: normalizeGate(cluster.spec.upgradeGate),
    upgrade: cluster.status?.upgrade,
  };
  const members = upgradeMembers(ctx.etcd, ctx.placed);
  const decision = planUpgrade({
    clusterName: state.clusterName,
    spec: cluster.spec,
    gate: state.gate,
    upgrade: state.upgrade,
    members,
    settled: ctx.settled,
    gateRun: await readGateRun(state),
    resume: cluster.metadata.annotations?.[upgradeResumeAnnotation],
    now,
  });
  if (decision.kind !== 'none' && decision.kind !== 'wait') logger.info(`EtcdCluster ${state.namespace}/${state.clusterName}: upgrade step ${decision.kind}`, { decision });
  await applyDecision(state, decision);
  return outcomeOf(state, decision, members);
}

/** The gate run of the gate in progress, read for the planner. */
async function readGateRun(state: StepState): Promise<{ name: string; exists: boolean; status?: RobustnessRunResource['status'] } | undefined> {
  const { upgrade } = state;
  const running = upgrade?.gates.filter((g) => g.phase === 'Running').at(-1);
  if (running === undefined || !upgradeInProgress(upgrade)) return undefined;
  const resource = await state.ctx.runs.get(state.namespace, running.run);
  return { name: running.run, exists: resource !== undefined, status: resource?.status };
}

/** Carries out the planner's decision on the cluster, its gate runs and state.upgrade. */
async function applyDecision(state: StepState, decision: UpgradeDecision): Promise<void> {
  switch (decision.kind) {
    case 'none':
    case 'wait':
      return;
    case 'refuse':
      return refuseUpgrade(state, decision);
    case 'start':
      return startUpgrade(state, decision);
    case 'startGate':
      return startGate(state, decision);
    case 'gateFinished':
      return finishGate(state, decision);
    case 'transferLeader':
      return transferLeader(state, decision);
    case 'upgradeMember':
    case 'rollbackMember':
      return restartMember(state, decision);
    case 'memberUpgraded':
      return memberUpgraded(state, decision);
    case 'resume':
      return resumeUpgrade(state, decision);
    case 'startRollback':
      return startRollback(state);
    case 'block':
      return blockUpgrade(state, decision.reason);
    case 'finish':
      return finishUpgrade(state, decision);
  }
}

/** The step failed or must not go on: the upgrade waits for the user (a resume, or a new spec.version). */
async function blockUpgrade(state: StepState, reason: string): Promise<void> {
  const upgrade: UpgradeStatus = { ...state.upgrade!, phase: 'Blocked', reason };
  delete upgrade.step;
  state.upgrade = upgrade;
  await state.ctx.event('Warning', 'UpgradeBlocked', `upgrade ${upgrade.from} to ${upgrade.to} blocked: ${reason}`);
}

async function refuseUpgrade(state: StepState, decision: Decision<'refuse'>): Promise<void> {
  const upgrade = { ...decision.upgrade, finishedAt: rfc3339(state.ctx.now) };
  state.upgrade = upgrade;
  await state.ctx.event('Warning', 'UpgradeRefused', `not upgrading ${upgrade.from} to ${upgrade.to}: ${decision.reason}`);
}

async function startUpgrade(state: StepState, decision: Decision<'start'>): Promise<void> {
  const upgrade = decision.upgrade;
  state.upgrade = upgrade;
  await state.ctx.event('Normal', 'UpgradeStarted', `upgrading ${upgrade.from} to ${upgrade.to}, one member at a time: ${upgrade.order.join(', ')}${state.gate ? ', gated' : ''}`);
  await deleteOldGateRuns(state.ctx, upgrade.number);
}

/** Creates the gate run of a gate step and records it as Running (or blocks when it cannot be created). */
async function startGate(state: StepState, decision: Decision<'startGate'>): Promise<void> {
  const { ctx, namespace, clusterName, gate } = state;
  const up = state.upgrade!;
  const source = await gateRunSource(state, decision.step);
  // Without a source the upgrade is blocked already (a source implies a gate).
  if (source === undefined || gate === undefined) return;
  const body = gateRunResource(ctx.cluster, decision, up.number, gateRunSpec(source, clusterName, gate.minDuration));
  try {
    await ctx.runs.create(namespace, body);
  } catch (error) {
    // Created by an earlier reconcile that did not get to write its status: judge that one.
    if (!isConflict(error)) {
      await blockUpgrade(state, `gate ${decision.step}: the gate run ${decision.run} could not be created: ${apiErrorMessage(error)}`);
      return;
    }
  }
  const result: GateResult = { step: decision.step, run: decision.run, phase: 'Running', startedAt: rfc3339(ctx.now) };
  state.upgrade = { ...up, step: `gate:${decision.step}`, gates: boundedGates([...up.gates, result]) };
  await ctx.event('Normal', 'GateStarted', `gate ${decision.step} of the upgrade to ${up.to}: RobustnessRun ${decision.run}`);
}

/** The spec a gate run copies (the gate's template, else the referenced run's); undefined once it blocked the upgrade for want of one. */
async function gateRunSource(state: StepState, step: string): Promise<GateRunSpec | undefined> {
  const { gate, namespace } = state;
  let source: GateRunSpec | undefined = gate?.runTemplate?.spec;
  if (source === undefined && gate?.runRef !== undefined) {
    const referenced = await state.ctx.runs.get(namespace, gate.runRef.name);
    if (referenced === undefined) {
      await blockUpgrade(state, `gate ${step}: the referenced RobustnessRun ${namespace}/${gate.runRef.name} does not exist`);
      return undefined;
    }
    source = referenced.spec;
  }
  if (source === undefined || gate === undefined) {
    await blockUpgrade(state, `gate ${step}: spec.upgradeGate names no run`);
    return undefined;
  }
  return source;
}

/** The gate run as created: labelled with its cluster and upgrade, owned by the EtcdCluster. */
function gateRunResource(cluster: EtcdCluster, decision: Decision<'startGate'>, upgradeNumber: number, spec: RobustnessRunResource['spec']): RobustnessRunResource {
  const clusterName = cluster.metadata.name;
  return {
    apiVersion: robustnessApiVersion,
    kind: robustnessRunKind,
    metadata: {
      name: decision.run,
      namespace: cluster.metadata.namespace ?? 'default',
      labels: { [gateOfLabel]: clusterName, [gateUpgradeLabel]: String(upgradeNumber) },
      annotations: { [gateStepAnnotation]: decision.step },
      ...(cluster.metadata.uid === undefined
        ? {}
        : { ownerReferences: [{ apiVersion: robustnessApiVersion, kind: etcdClusterKind, name: clusterName, uid: cluster.metadata.uid, controller: true, blockOwnerDeletion: true }] }),
    },
    spec,
  };
}

/** Records a gate's verdict; a failed gate blocks the upgrade. */
async function finishGate(state: StepState, decision: Decision<'gateFinished'>): Promise<void> {
  const { result } = decision;
  const up = state.upgrade!;
  const gates = [...up.gates];
  const index = gates.map((g) => g.run).lastIndexOf(result.run);
  if (index >= 0) gates[index] = result;
  const upgrade: UpgradeStatus = { ...up, gates };
  delete upgrade.step;
  state.upgrade = upgrade;
  state.gateFinished = result;
  if (result.phase === 'Passed') {
    await state.ctx.event('Normal', 'GatePassed', `gate ${result.step} passed (run ${result.run}): ${result.reason ?? ''}`);
  } else {
    await state.ctx.event('Warning', 'GateFailed', `gate ${result.step} failed (run ${result.run}): ${result.reason ?? ''}`);
    await blockUpgrade(state, `gate ${result.step} failed (run ${result.run}): ${result.reason ?? ''}`);
  }
}

/** Moves leadership off the member about to restart; a refusal is retried by the next reconcile. */
async function transferLeader(state: StepState, decision: Decision<'transferLeader'>): Promise<void> {
  const { ctx } = state;
  const leaderUrl = ctx.etcd?.members.find((m) => m.id === ctx.etcd?.leaderId)?.clientUrls[0];
  if (leaderUrl === undefined) return;
  try {
    await withEtcd([leaderUrl], ctx.clientTls, (c) => c.maintenance.moveLeader({ targetID: decision.toId }, { deadline: Date.now() + 10_000 }));
    await ctx.event('Normal', 'LeaderTransferred', `moved leadership from ${decision.from} to ${decision.to} before upgrading ${decision.from}`);
  } catch (error) {
    // Retried by the next reconcile (etcd refuses while the target catches up).
    logger.warn(`EtcdCluster ${state.namespace}/${state.clusterName}: leader transfer to ${decision.to} failed: ${apiErrorMessage(error)}`);
  }
}

/** Restarts one member on the new version (or, rolling back, on the old one) through the placement. */
async function restartMember(state: StepState, decision: Decision<'upgradeMember' | 'rollbackMember'>): Promise<void> {
  const rollback = decision.kind === 'rollbackMember';
  state.upgrade = { ...state.upgrade!, step: `${rollback ? 'rollback' : 'member'}:${decision.member}` };
  try {
    await state.ctx.placement.upgradeMember(state.ctx.cluster, decision.member, decision.version);
    await state.ctx.event('Normal', rollback ? 'MemberRollingBack' : 'MemberUpgrading', `restarting ${decision.member} on etcd ${decision.version}`);
  } catch (error) {
    await blockUpgrade(state, `${rollback ? 'rolling back' : 'upgrading'} ${decision.member} to ${decision.version} failed: ${apiErrorMessage(error)}`);
  }
}

async function memberUpgraded(state: StepState, decision: Decision<'memberUpgraded'>): Promise<void> {
  const upgrade: UpgradeStatus = { ...state.upgrade! };
  delete upgrade.step;
  state.upgrade = upgrade;
  await state.ctx.event('Normal', 'MemberUpgraded', `${decision.member} serves etcd ${upgrade.to}`);
}

async function resumeUpgrade(state: StepState, decision: Decision<'resume'>): Promise<void> {
  const upgrade: UpgradeStatus = { ...state.upgrade!, phase: 'Progressing', resumed: decision.token };
  delete upgrade.reason;
  state.upgrade = upgrade;
  await state.ctx.event('Normal', 'UpgradeResumed', `resumed by ${upgradeResumeAnnotation}=${decision.token}: the failed step runs again`);
}

/**
 * A gate still running stops first (deleting its run heals the faults it injected): the roll-back
 * restarts members, and a gate of the abandoned upgrade judges nothing any more.
 */
async function startRollback(state: StepState): Promise<void> {
  const { ctx } = state;
  const gates: GateResult[] = [];
  for (const gate of state.upgrade!.gates) {
    if (gate.phase !== 'Running') {
      gates.push(gate);
      continue;
    }
    await ctx.runs.delete(state.namespace, gate.run);
    gates.push({ ...gate, phase: 'Failed', reason: 'cancelled: the upgrade is rolled back', finishedAt: rfc3339(ctx.now) });
  }
  const upgrade: UpgradeStatus = { ...state.upgrade!, phase: 'RollingBack', gates };
  delete upgrade.step;
  delete upgrade.reason;
  state.upgrade = upgrade;
  await ctx.event('Normal', 'UpgradeRollingBack', `spec.version is ${upgrade.from} again: rolling back the members upgraded to ${upgrade.to}`);
}

async function finishUpgrade(state: StepState, decision: Decision<'finish'>): Promise<void> {
  const upgrade: UpgradeStatus = { ...state.upgrade!, phase: decision.phase, finishedAt: rfc3339(state.ctx.now) };
  delete upgrade.step;
  delete upgrade.reason;
  state.upgrade = upgrade;
  await state.ctx.event(
    'Normal',
    decision.phase === 'Succeeded' ? 'UpgradeCompleted' : 'UpgradeRolledBack',
    decision.phase === 'Succeeded' ? `every member runs etcd ${upgrade.to}` : `every member runs etcd ${upgrade.from} again`,
  );
}

/** The step's outcome: the new status.upgrade, its conditions, and when to look again. */
function outcomeOf(state: StepState, decision: UpgradeDecision, members: readonly UpgradeMember[]): UpgradeOutcome {
  const { upgrade } = state;
  const target = upgrade?.to;
  const membersAtTarget = target === undefined ? 0 : members.filter((m) => m.version === target).length;
  const outcome: UpgradeOutcome = { upgrade, decision, membersAtTarget, ...conditionsOf(upgrade, decision, state.ctx.cluster.spec.version) };
  if (state.gateFinished !== undefined) outcome.gateFinished = state.gateFinished;
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
