/**
 * A small model of an etcd cluster under a rolling upgrade, for driving the pure planner
 * (src/controller/etcdcluster/upgrade-plan.ts) in property tests. Each decision is applied the way the
 * executor (upgradeStep in upgrade.ts) applies it: gate runs are created once per name and finish a few
 * steps later Passed or Failed, members restart on their new version a few steps after upgradeMember,
 * leadership moves on transferLeader (and, at random, by election). Randomness comes from a seeded PRNG,
 * so a run is reproducible from its configuration.
 */
import type { GateResult, RobustnessRunStatus, UpgradeGateSpec, UpgradeStatus } from '../../src/domain/index.ts';
import { Mulberry32 } from '../../src/random.ts';
import type { UpgradeDecision, UpgradeInput, UpgradeMember } from '../../src/controller/etcdcluster/upgrade-plan.ts';

export class Rng {
  private readonly generator: Mulberry32;
  constructor(seed: number) {
    this.generator = new Mulberry32(seed);
  }
  next(): number {
    return this.generator.next();
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
}

export interface ModelMember {
  name: string;
  id: string;
  /** What etcd reports (undefined while restarting). */
  version: string | undefined;
  placedVersion: string;
  /** Steps until a restart completes (0: serving). */
  restartLeft: number;
}

export type GateOutcome = 'pass' | 'violation' | 'lowAvailability' | 'deleted';

export interface ModelRun {
  name: string;
  step: string;
  left: number;
  outcome: GateOutcome;
}

export interface ModelConfig {
  size: number;
  leader: number;
  from: string;
  to: string;
  gate: UpgradeGateSpec | undefined;
  seed: number;
  /** At most this many gate runs fail. */
  maxFailures: number;
  failureRate: number;
  /** A decision is lost (the operator restarted before writing status). */
  crashRate: number;
  /** Leadership moves by itself. */
  electionRate: number;
  /** The cluster plan is not steady for a step. */
  unsettledRate: number;
  /** A resume annotation already set before the upgrade (a previous upgrade's). */
  initialResume?: string;
}

export class ClusterModel {
  readonly rng: Rng;
  members: ModelMember[];
  leader: string;
  upgrade: UpgradeStatus | undefined;
  readonly runs = new Map<string, ModelRun>();
  /** Run names created per gate step, in order. */
  readonly created = new Map<string, string[]>();
  /** Failed gate runs per gate step. */
  readonly failures = new Map<string, number>();
  failuresTotal = 0;
  resume: string | undefined;
  version: string;
  settled = true;
  steps = 0;
  private clock = Date.parse('2026-11-25T12:00:00Z');

  readonly config: ModelConfig;

  constructor(config: ModelConfig) {
    this.config = config;
    this.rng = new Rng(config.seed);
    this.members = Array.from({ length: config.size }, (_, i) => ({ name: `c-${i}`, id: String(1000 + i), version: config.from, placedVersion: config.from, restartLeft: 0 }));
    this.leader = `c-${config.leader}`;
    this.version = config.to;
    this.resume = config.initialResume;
  }

  member(name: string): ModelMember {
    const found = this.members.find((m) => m.name === name);
    if (found === undefined) throw new Error(`no member ${name}`);
    return found;
  }

  serving(m: ModelMember): boolean {
    return m.restartLeft === 0 && m.version !== undefined;
  }

  input(): UpgradeInput {
    const leaderServes = this.serving(this.member(this.leader));
    const members: UpgradeMember[] = this.members.map((m) => {
      // Has a leader: the leader serves (a restarting member answers nothing).
      const view: UpgradeMember = { name: m.name, id: m.id, healthy: this.serving(m) && leaderServes, leader: m.name === this.leader && this.serving(m), learner: false, placedVersion: m.placedVersion };
      if (m.version !== undefined) view.version = m.version;
      return view;
    });
    const input: UpgradeInput = {
      clusterName: 'c',
      spec: { version: this.version, replicas: this.config.size as 1 | 3 | 5, topology: 'standard' },
      gate: this.config.gate,
      upgrade: this.upgrade === undefined ? undefined : structuredClone(this.upgrade),
      members,
      settled: this.settled,
      resume: this.resume,
      now: new Date(this.clock),
    };
    const running = this.upgrade?.gates.filter((g) => g.phase === 'Running').at(-1);
    if (running !== undefined && ['Progressing', 'Blocked', 'RollingBack'].includes(this.upgrade!.phase)) {
      const run = this.runs.get(running.run);
      input.gateRun = { name: running.run, exists: run !== undefined && !(run.left === 0 && run.outcome === 'deleted'), status: run === undefined ? undefined : this.runStatus(run) };
    }
    return input;
  }

  runStatus(run: ModelRun): RobustnessRunStatus {
    if (run.left > 0) return { phase: 'Running' };
    switch (run.outcome) {
      case 'pass':
        return { phase: 'Passed', verdict: 'linearizable', operations: { ok: 999, failed: 1, unknown: 0 } };
      case 'violation':
        return { phase: 'Failed', verdict: 'violation', violations: [{ check: 'linearizability', summary: 'stale read' }], operations: { ok: 1000, failed: 0, unknown: 0 } };
      case 'lowAvailability':
      case 'deleted':
        return { phase: 'Passed', verdict: 'linearizable', operations: { ok: 10, failed: 90, unknown: 0 } };
    }
  }

  /** Randomness before a planner call: elections and unsteady moments. */
  perturb(): void {
    this.settled = !this.rng.chance(this.config.unsettledRate);
    if (this.rng.chance(this.config.electionRate) && this.serving(this.member(this.leader))) {
      const candidates = this.members.filter((m) => this.serving(m));
      this.leader = candidates[this.rng.int(candidates.length)]!.name;
    }
  }

  createRun(name: string, step: string): void {
    if (this.runs.has(name)) return;
    let outcome: GateOutcome = 'pass';
    if (this.failuresTotal < this.config.maxFailures && this.rng.chance(this.config.failureRate)) {
      outcome = (['violation', 'lowAvailability', 'deleted'] as const)[this.rng.int(3)]!;
      this.failuresTotal += 1;
      this.failures.set(step, (this.failures.get(step) ?? 0) + 1);
    }
    this.runs.set(name, { name, step, left: this.rng.int(4), outcome });
    this.created.set(step, [...(this.created.get(step) ?? []), name]);
  }

  restart(name: string, version: string): void {
    const m = this.member(name);
    m.placedVersion = version;
    m.version = undefined;
    m.restartLeft = 1 + this.rng.int(3);
  }

  private rfc3339 = (): string => new Date(this.clock).toISOString().replace(/\.\d{3}Z$/, 'Z');

  /**
   * Applies a decision as the executor does. `crash`: 'lost' drops it (status not written, nothing done),
   * 'sideEffect' does what touches the cluster (creates the run, restarts the member) but not the status.
   */
  apply(decision: UpgradeDecision, crash: 'none' | 'lost' | 'sideEffect' = 'none'): void {
    if (crash === 'lost') return;
    const up = this.upgrade;
    switch (decision.kind) {
      case 'none':
      case 'wait':
        return;
      case 'refuse':
        if (crash === 'none') this.upgrade = { ...decision.upgrade, finishedAt: this.rfc3339() };
        return;
      case 'start':
        if (crash === 'none') this.upgrade = structuredClone(decision.upgrade);
        return;
      case 'startGate': {
        this.createRun(decision.run, decision.step);
        if (crash !== 'none') return;
        const result: GateResult = { step: decision.step, run: decision.run, phase: 'Running', startedAt: this.rfc3339() };
        this.upgrade = { ...up!, step: `gate:${decision.step}`, gates: [...up!.gates, result] };
        return;
      }
      case 'gateFinished': {
        if (crash !== 'none') return;
        const gates = [...up!.gates];
        const index = gates.map((g) => g.run).lastIndexOf(decision.result.run);
        if (index >= 0) gates[index] = decision.result;
        const next: UpgradeStatus = { ...up!, gates };
        delete next.step;
        if (decision.result.phase === 'Failed') {
          next.phase = 'Blocked';
          next.reason = `gate ${decision.result.step} failed (run ${decision.result.run}): ${decision.result.reason ?? ''}`;
        }
        this.upgrade = next;
        return;
      }
      case 'transferLeader':
        this.leader = decision.to;
        return;
      case 'upgradeMember':
      case 'rollbackMember':
        this.restart(decision.member, decision.version);
        if (crash === 'none') this.upgrade = { ...up!, step: `${decision.kind === 'rollbackMember' ? 'rollback' : 'member'}:${decision.member}` };
        return;
      case 'memberUpgraded': {
        if (crash !== 'none') return;
        const next = { ...up! };
        delete next.step;
        this.upgrade = next;
        return;
      }
      case 'resume': {
        if (crash !== 'none') return;
        const next: UpgradeStatus = { ...up!, phase: 'Progressing', resumed: decision.token };
        delete next.reason;
        this.upgrade = next;
        return;
      }
      case 'startRollback': {
        if (crash !== 'none') return;
        const next: UpgradeStatus = { ...up!, phase: 'RollingBack' };
        delete next.step;
        delete next.reason;
        this.upgrade = next;
        return;
      }
      case 'block': {
        if (crash !== 'none') return;
        const next: UpgradeStatus = { ...up!, phase: 'Blocked', reason: decision.reason };
        delete next.step;
        this.upgrade = next;
        return;
      }
      case 'finish': {
        if (crash !== 'none') return;
        const next: UpgradeStatus = { ...up!, phase: decision.phase, finishedAt: this.rfc3339() };
        delete next.step;
        delete next.reason;
        this.upgrade = next;
        return;
      }
    }
  }

  /** Time passes: restarts and gate runs progress. */
  tick(): void {
    this.steps += 1;
    this.clock += 1000;
    for (const m of this.members) {
      if (m.restartLeft > 0) {
        m.restartLeft -= 1;
        if (m.restartLeft === 0) m.version = m.placedVersion;
      }
    }
    for (const run of this.runs.values()) if (run.left > 0) run.left -= 1;
  }

  /** A crash mode drawn at config.crashRate. */
  crash(): 'none' | 'lost' | 'sideEffect' {
    if (!this.rng.chance(this.config.crashRate)) return 'none';
    return this.rng.chance(0.5) ? 'lost' : 'sideEffect';
  }
}
