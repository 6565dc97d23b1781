/**
 * The rolling upgrade's decision, a pure function of the spec, the upgrade recorded in status, what etcd
 * and the placement report about each member, and the gate run of the step in progress. One step per
 * reconcile; the next step is derived from observation every time, so a step interrupted by an operator
 * restart is simply taken again (every step is idempotent).
 *
 *   spec.version differs from what the members run → check the path (no downgrade, no skipped minor), start
 *   gate before the first member               → a gate run; it must pass before anything is touched
 *   each member, followers first               → upgrade it (the leader: transfer leadership away first),
 *                                                wait until it serves the new version, then its gate
 *   gate at the end                            → then Succeeded
 *   a gate fails                               → Blocked until the resume annotation changes (the failed
 *                                                step runs again) or spec.version goes back (roll back)
 *   roll back                                  → every member placed at the new version goes back, the
 *                                                leader last; refused once every member runs a new minor
 *                                                (etcd then moved its cluster version: a downgrade needs
 *                                                etcd's downgrade procedure)
 */
import { createHash } from 'node:crypto';
import type { EtcdClusterSpec, GateResult, RobustnessRunStatus, UpgradeGateSpec, UpgradeStatus } from '../../domain/index.ts';
import { judgeRun } from '../gates/criteria.ts';

// ---------------------------------------------------------------------------------------------------
// Versions and paths

export interface Version {
  major: number;
  minor: number;
  patch: number;
  /** The pre-release suffix (`rc.1` of `3.6.0-rc.1`), when there is one. */
  pre?: string;
}

/** `3.6.16` or `v3.6.16`, with an optional pre-release suffix. Undefined when it is not a version. */
export function parseVersion(text: string): Version | undefined {
  const match = /^v?(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?$/.exec(text.trim());
  if (!match) return undefined;
  const version: Version = { major: Number(match[1]), minor: Number(match[2]), patch: Number(match[3]) };
  if (match[4] !== undefined) version.pre = match[4];
  return version;
}

/** Semantic version order: a pre-release comes before its release (`3.6.0-rc.1` < `3.6.0`). */
export function compareVersions(a: Version, b: Version): number {
  const core = a.major - b.major || a.minor - b.minor || a.patch - b.patch;
  if (core !== 0) return core;
  if (a.pre === b.pre) return 0;
  if (a.pre === undefined) return 1;
  if (b.pre === undefined) return -1;
  return a.pre.localeCompare(b.pre, 'en', { numeric: true });
}

const minorOf = (v: Version): string => `${v.major}.${v.minor}`;

export type PathCheck = { ok: true; minor: boolean } | { ok: false; reason: string };

/** Whether etcd supports going from `from` to `to` member by member (etcd's upgrade guides). */
export function checkUpgradePath(from: string, to: string): PathCheck {
  const f = parseVersion(from);
  const t = parseVersion(to);
  if (f === undefined) return { ok: false, reason: `the members run "${from}", which is not a version` };
  if (t === undefined) return { ok: false, reason: `spec.version "${to}" is not a version` };
  const order = compareVersions(t, f);
  if (order < 0) {
    return {
      ok: false,
      reason: `${to} is older than ${from}: a downgrade needs etcd's downgrade procedure (etcdctl downgrade enable), which this operator does not run; only an upgrade in progress can be rolled back`,
    };
  }
  if (t.major !== f.major) return { ok: false, reason: `${from} to ${to} changes the major version, which etcd does not support in place` };
  if (t.minor > f.minor + 1) {
    return { ok: false, reason: `${from} to ${to} skips etcd ${f.major}.${f.minor + 1}: upgrade one minor version at a time (first to the latest ${f.major}.${f.minor + 1}.x)` };
  }
  return { ok: true, minor: t.minor !== f.minor };
}

// ---------------------------------------------------------------------------------------------------
// Observation

export interface UpgradeMember {
  name: string;
  /** etcd's member id (decimal), for a leader transfer. */
  id: string;
  /** The version etcd reports the member runs; absent when it does not answer. */
  version?: string;
  /** The version the placement starts it with (PlacedMember.version). */
  placedVersion?: string;
  /** Answers its status and has a leader. */
  healthy: boolean;
  leader: boolean;
  learner: boolean;
}

export interface UpgradeInput {
  clusterName: string;
  spec: Pick<EtcdClusterSpec, 'version' | 'replicas' | 'topology'>;
  /** The gate with defaults filled (normalizeGate); absent: upgrades are gated on member health only. */
  gate: UpgradeGateSpec | undefined;
  upgrade: UpgradeStatus | undefined;
  members: readonly UpgradeMember[];
  /** No repair or scaling is under way (the cluster plan is steady): members may be touched. */
  settled: boolean;
  /** The status of the gate run of the running gate step (undefined: no such run, or not finished). */
  gateRun?: { name: string; exists: boolean; status?: RobustnessRunStatus | undefined };
  /** The resume annotation's value. */
  resume?: string | undefined;
  now: Date;
}

export type UpgradeDecision =
  | { kind: 'none' }
  /** Nothing can be done right now (the reason is shown in status; `blocked`: only the user can change that). */
  | { kind: 'wait'; reason: string; blocked?: boolean }
  | { kind: 'refuse'; upgrade: UpgradeStatus; reason: string }
  | { kind: 'start'; upgrade: UpgradeStatus }
  | { kind: 'startGate'; step: string; run: string }
  | { kind: 'gateFinished'; result: GateResult }
  | { kind: 'transferLeader'; from: string; to: string; toId: string }
  | { kind: 'upgradeMember'; member: string; version: string }
  | { kind: 'memberUpgraded'; member: string }
  | { kind: 'resume'; token: string }
  | { kind: 'startRollback' }
  | { kind: 'rollbackMember'; member: string; version: string }
  | { kind: 'block'; reason: string }
  | { kind: 'finish'; phase: 'Succeeded' | 'RolledBack' };

export const upgradeInProgress = (upgrade: UpgradeStatus | undefined): boolean =>
  upgrade !== undefined && (upgrade.phase === 'Progressing' || upgrade.phase === 'Blocked' || upgrade.phase === 'RollingBack');

/** The name of a gate run: `<cluster>-u<upgrade>-<step>` and `-r<n>` for the n-th retry. */
export function gateRunName(cluster: string, upgrade: number, step: string, attempt: number): string {
  const name = `${cluster}-u${upgrade}-${step}${attempt > 0 ? `-r${attempt}` : ''}`;
  return name.length <= 200 ? name : `${name.slice(0, 180)}-${createHash('sha256').update(name).digest('hex').slice(0, 12)}`;
}

type Step = { kind: 'gate'; step: string } | { kind: 'member'; member: string };

/** The steps of an upgrade in order. */
export function upgradeSteps(order: readonly string[], gate: UpgradeGateSpec | undefined): Step[] {
  const steps: Step[] = [];
  if (gate?.before) steps.push({ kind: 'gate', step: 'before' });
  order.forEach((member, index) => {
    steps.push({ kind: 'member', member });
    const last = index === order.length - 1;
    if (gate?.afterEachMember && (!last || !gate.atEnd)) steps.push({ kind: 'gate', step: `after-${member}` });
  });
  if (gate?.atEnd) steps.push({ kind: 'gate', step: 'end' });
  return steps;
}

const rfc3339 = (date: Date): string => date.toISOString().replace(/\.\d{3}Z$/, 'Z');

/** The latest result of a gate step (retries append a new one). */
const latestGate = (upgrade: UpgradeStatus, step: string): GateResult | undefined => upgrade.gates.filter((g) => g.step === step).at(-1);

/** The members' common version, or why there is none. */
function currentVersion(members: readonly UpgradeMember[]): { version: string } | { reason: string } {
  const voters = members.filter((m) => !m.learner);
  const silent = voters.filter((m) => m.version === undefined).map((m) => m.name);
  if (voters.length === 0) return { reason: 'no member answers' };
  if (silent.length > 0) return { reason: `waiting for ${silent.join(', ')} to answer before the upgrade starts` };
  const versions = [...new Set(voters.map((m) => m.version!))];
  if (versions.length > 1) return { reason: `the members run different versions (${versions.sort().join(', ')}) and no upgrade is recorded` };
  return { version: versions[0]! };
}

function leaderTransfer(member: UpgradeMember, members: readonly UpgradeMember[], prefer: string): UpgradeDecision | undefined {
  if (!member.leader) return undefined;
  const candidates = members.filter((m) => m.name !== member.name && !m.learner && m.healthy);
  const target = candidates.find((m) => m.version === prefer) ?? candidates[0];
  return target === undefined ? undefined : { kind: 'transferLeader', from: member.name, to: target.name, toId: target.id };
}

export function planUpgrade(input: UpgradeInput): UpgradeDecision {
  const { spec, upgrade, members, gate } = input;
  const target = spec.version;

  if (!upgradeInProgress(upgrade)) {
    const current = currentVersion(members);
    if ('reason' in current) {
      // Nothing to say while the versions are unknown, unless an upgrade was asked for.
      return upgrade?.to === target || members.length === 0 ? { kind: 'none' } : { kind: 'wait', reason: current.reason };
    }
    const from = current.version;
    if (from === target) return { kind: 'none' };
    if (upgrade?.phase === 'Refused' && upgrade.from === from && upgrade.to === target) return { kind: 'none' };
    const number = (upgrade?.number ?? 0) + 1;
    const base: UpgradeStatus = { number, from, to: target, phase: 'Progressing', order: [], startedAt: rfc3339(input.now), gates: [] };
    // The resume annotation's value now belongs to earlier upgrades: only a new value resumes this one.
    if (input.resume !== undefined && input.resume !== '') base.resumed = input.resume;
    if (spec.topology === 'twoNodeWitness') {
      return { kind: 'refuse', upgrade: { ...base, phase: 'Refused' }, reason: 'rolling upgrades of the twoNodeWitness topology are not supported yet' };
    }
    const path = checkUpgradePath(from, target);
    if (!path.ok) return { kind: 'refuse', upgrade: { ...base, phase: 'Refused', reason: path.reason }, reason: path.reason };
    if (!input.settled) return { kind: 'wait', reason: 'the upgrade starts once the cluster is steady (no repair or scaling under way)' };
    const unhealthy = members.filter((m) => !m.healthy).map((m) => m.name);
    if (unhealthy.length > 0) return { kind: 'wait', reason: `the upgrade starts once every member serves (not serving: ${unhealthy.join(', ')})` };
    const voters = members.filter((m) => !m.learner);
    const order = [...voters.filter((m) => !m.leader).map((m) => m.name).sort(), ...voters.filter((m) => m.leader).map((m) => m.name)];
    return { kind: 'start', upgrade: { ...base, order } };
  }

  // An upgrade is in progress (upgrade is defined from here on).
  const up = upgrade!;
  if (target !== up.to && target !== up.from) {
    return { kind: 'wait', blocked: true, reason: `the upgrade from ${up.from} to ${up.to} is in progress: set spec.version back to ${up.to} to go on, or to ${up.from} to roll back` };
  }
  if (target === up.from) return planRollback(input, up);
  if (up.phase === 'RollingBack') {
    return { kind: 'wait', reason: `the roll-back to ${up.from} is in progress: set spec.version to ${up.from} to finish it` };
  }

  if (up.phase === 'Blocked') {
    if (input.resume !== undefined && input.resume !== '' && input.resume !== up.resumed) return { kind: 'resume', token: input.resume };
    return { kind: 'wait', blocked: true, reason: `blocked: ${up.reason ?? 'a gate failed'}; change the etcd.robustness.io/upgrade-resume annotation to retry, or set spec.version to ${up.from} to roll back` };
  }

  const byName = new Map(members.map((m) => [m.name, m]));
  for (const step of upgradeSteps(up.order, gate)) {
    if (step.kind === 'gate') {
      const result = latestGate(up, step.step);
      if (result?.phase === 'Passed') continue;
      if (result === undefined || result.phase === 'Failed') {
        // A failed gate here means the upgrade was resumed: the gate runs again under a name no earlier
        // attempt had (the status keeps a bounded list of results, so the count alone is not enough).
        const used = new Set(up.gates.map((g) => g.run));
        let attempt = up.gates.filter((g) => g.step === step.step).length;
        while (used.has(gateRunName(input.clusterName, up.number, step.step, attempt))) attempt += 1;
        return { kind: 'startGate', step: step.step, run: gateRunName(input.clusterName, up.number, step.step, attempt) };
      }
      // Running: judge its run once it finished.
      const run = input.gateRun;
      if (run === undefined || run.name !== result.run) return { kind: 'wait', reason: `gate ${step.step}: waiting for run ${result.run}` };
      if (!run.exists) return { kind: 'gateFinished', result: { ...result, phase: 'Failed', reason: `the gate run ${result.run} was deleted before it finished`, finishedAt: rfc3339(input.now) } };
      const judged = judgeRun(run.status, gate?.criteria);
      if (judged === undefined) return { kind: 'wait', reason: `gate ${step.step}: run ${result.run} is ${run.status?.phase ?? 'Pending'}` };
      const finished: GateResult = { ...result, phase: judged.passing ? 'Passed' : 'Failed', reason: judged.reason, finishedAt: rfc3339(input.now) };
      if (judged.verdict !== undefined) finished.verdict = judged.verdict;
      if (judged.availability !== undefined) finished.availability = Number(judged.availability.toFixed(6));
      if (judged.unknownRate !== undefined) finished.unknownRate = Number(judged.unknownRate.toFixed(6));
      return { kind: 'gateFinished', result: finished };
    }
    // A member step.
    const member = byName.get(step.member);
    if (member === undefined) return { kind: 'block', reason: `member ${step.member} left the cluster during the upgrade` };
    const upgraded = member.placedVersion === up.to;
    if (upgraded && member.version === up.to && member.healthy) {
      if (up.step === `member:${member.name}`) return { kind: 'memberUpgraded', member: member.name };
      continue;
    }
    if (!input.settled) return { kind: 'wait', reason: `waiting for the cluster to be steady before touching ${member.name}` };
    if (upgraded) return { kind: 'wait', reason: `waiting for ${member.name} to serve ${up.to}` };
    const others = members.filter((m) => m.name !== member.name && !m.learner);
    const unhealthy = others.filter((m) => !m.healthy).map((m) => m.name);
    if (unhealthy.length > 0) return { kind: 'wait', reason: `waiting for ${unhealthy.join(', ')} to serve before upgrading ${member.name}` };
    const transfer = leaderTransfer(member, members, up.to);
    if (transfer) return transfer;
    return { kind: 'upgradeMember', member: member.name, version: up.to };
  }
  return { kind: 'finish', phase: 'Succeeded' };
}

function planRollback(input: UpgradeInput, up: UpgradeStatus): UpgradeDecision {
  const { members } = input;
  const voters = members.filter((m) => !m.learner);
  const from = parseVersion(up.from);
  const to = parseVersion(up.to);
  const minor = from !== undefined && to !== undefined && minorOf(from) !== minorOf(to);
  const atTarget = (m: UpgradeMember): boolean => m.placedVersion === up.to || m.version === up.to;
  if (up.phase !== 'RollingBack') {
    // Once every member ran the new minor, etcd moved its cluster version: the old binary cannot join.
    if (minor && voters.length > 0 && voters.every((m) => m.placedVersion === up.to && m.version === up.to)) {
      const reason = `every member runs ${up.to}, so etcd's cluster version moved to ${to.major}.${to.minor}: going back to ${up.from} needs etcd's downgrade procedure; set spec.version to ${up.to} to finish the upgrade`;
      return { kind: 'wait', reason, blocked: true };
    }
    return { kind: 'startRollback' };
  }
  // One member at a time: a member rolled back (or down for another reason) serves again before the next.
  const down = voters.filter((m) => !m.healthy).map((m) => m.name);
  if (down.length > 0) return { kind: 'wait', reason: `rolling back to ${up.from}: waiting for ${down.join(', ')} to serve` };
  // Roll back the leader last: the other upgraded members first, in reverse upgrade order.
  const order = [...up.order].reverse();
  const pending = order.map((name) => members.find((m) => m.name === name)).filter((m): m is UpgradeMember => m !== undefined && atTarget(m));
  const member = pending.find((m) => !m.leader) ?? pending[0];
  if (member === undefined) return { kind: 'finish', phase: 'RolledBack' };
  if (member.placedVersion !== up.to) return { kind: 'wait', reason: `waiting for ${member.name} to serve ${up.from}` };
  if (!input.settled) return { kind: 'wait', reason: `waiting for the cluster to be steady before rolling back ${member.name}` };
  const transfer = leaderTransfer(member, members, up.from);
  if (transfer) return transfer;
  return { kind: 'rollbackMember', member: member.name, version: up.from };
}

/** The gate with every default filled (the CRD fills them too; this covers objects created without them). */
export function normalizeGate(gate: Partial<UpgradeGateSpec> | undefined): UpgradeGateSpec | undefined {
  if (gate === undefined) return undefined;
  const normalized: UpgradeGateSpec = {
    minDuration: gate.minDuration ?? '30s',
    before: gate.before ?? true,
    afterEachMember: gate.afterEachMember ?? true,
    atEnd: gate.atEnd ?? true,
    criteria: { watchChecks: gate.criteria?.watchChecks ?? true, minAvailability: gate.criteria?.minAvailability ?? 0.95, maxUnknownRate: gate.criteria?.maxUnknownRate ?? 0.05 },
  };
  if (gate.runTemplate !== undefined) normalized.runTemplate = gate.runTemplate;
  if (gate.runRef !== undefined) normalized.runRef = gate.runRef;
  return normalized;
}
