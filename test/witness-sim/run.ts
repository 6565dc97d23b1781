/**
 * One simulated run per seed: a pair formed from nothing by the operator, client writes and reads
 * throughout, a random schedule of faults for `faultPhaseMs`, then a quiet period (every fault healed)
 * in which the pair must serve again within `livenessBoundMs`. The invariants are checked after every
 * event; a failing seed is replayed with tracing on to show the last events before the failure.
 *
 * The fault model never loses a member's data (only the operator's deleteRunner wipes a data dir), so
 * liveness is required of every seed: after the faults stop, the witness is `paired` with two members
 * that are both voters of a serving leader, and a write is acknowledged.
 */
import type { TwoNodeAction } from '../../src/controller/witness/protocol.ts';
import { Operators, type Mutation, type Replica } from './operator.ts';
import { SimViolation, type InvariantName } from './invariants.ts';
import { Random } from './random.ts';
import { World, type Runner } from './world.ts';

export const faultKinds = [
  'memberCrash',
  'memberHostDown',
  'memberPause',
  'pairPartition',
  'operatorMemberPartition',
  'operatorWitnessPartition',
  'networkDelay',
  'networkDuplicate',
  'operatorCrash',
  'witnessCrash',
  'staleReplica',
  'slowOperator',
] as const;
export type FaultKind = (typeof faultKinds)[number];

export interface SimOptions {
  /** Operator replicas (1–3); default: drawn from the seed. */
  operators?: number;
  /** The fault kinds drawn from; default: all. */
  faults?: readonly FaultKind[];
  /** How long faults are injected (ms of simulated time); default 20 000. */
  faultPhaseMs?: number;
  /** How long after the faults stop the pair must serve again; default 40 000. */
  livenessBoundMs?: number;
  /** spec.twoNode.failoverGrace; default: drawn from the seed (500 ms to 5 s). */
  failoverGraceMs?: number;
  /** The survivor is forced to start alone without etcd-wal-commit (the hazard). */
  naiveRecovery?: boolean;
  mutation?: Mutation;
  /** A stale replica sometimes plans from its previous observation (an informer cache); default true. */
  staleObservations?: boolean;
  /** Test hook: called before an operator replica carries a step out (it may inject a fault). */
  onAction?: (ctx: { world: World; operators: Operators; replica: Replica; action: TwoNodeAction }) => void;
  trace?: boolean;
  /** Trace lines kept with a failure; default 80. */
  traceTail?: number;
}

export interface SimResult {
  seed: number;
  ok: boolean;
  violation?: { invariant: InvariantName; message: string };
  /** The last traced events before the failure (or the whole trace when tracing was asked for). */
  trace: string[];
  steps: number;
  simMs: number;
  /** A digest of every processed event (time and kind): equal for equal runs. */
  digest: string;
  replicas: number;
  faults: string[];
  stats: World['stats'] & { witnessEpoch: number; reconciles: number; actions: number; refusedWrites: number };
  /** When the pair served again after the faults stopped (simulated ms), for a run that got there. */
  servedAgainAtMs?: number;
}

interface PlannedFault {
  at: number;
  kind: FaultKind;
  durationMs: number;
}

const WRITE_KIND = 4;
const FAULT_KIND = 5;
const CHECK_KIND = 6;

export function simulate(seed: number, options: SimOptions = {}): SimResult {
  const result = run(seed, options);
  if (result.ok || options.trace === true) return result;
  // Deterministic: the same seed with tracing on fails the same way and shows how.
  const traced = run(seed, { ...options, trace: true });
  const tail = options.traceTail ?? 80;
  const same = traced.violation?.message === result.violation?.message;
  // Acknowledgements are most of a trace: only the last few are kept with the other events.
  const lines = traced.trace;
  const kept = lines.filter((line, i) => !line.includes(' ack write ') || i >= lines.length - 5);
  return { ...result, trace: [...(same ? [] : ['(the traced replay differs: nondeterminism)']), ...kept.slice(-tail)] };
}

function run(seed: number, options: SimOptions): SimResult {
  const rng = new Random(seed);
  const faultRng = rng.fork('faults');
  const opsRng = rng.fork('operators');
  const loadRng = rng.fork('workload');
  const mutation = options.mutation ?? 'none';
  const world = new World(seed, {
    cluster: 'c',
    naiveRecovery: options.naiveRecovery ?? false,
    recoverAgain: mutation === 'recoverAgain',
    trace: options.trace ?? false,
  });
  if (mutation === 'noTermRule') world.witness.enforceTerm = false;
  const replicas = options.operators ?? faultRng.int(1, 4);
  const ops = new Operators(world, opsRng, {
    cluster: 'c',
    replicas,
    // The CRD allows 500 ms and up: short graces fail over during elections and catch-ups.
    failoverGraceMs: options.failoverGraceMs ?? faultRng.pick([500, 1000, 2000, 3000, 3000, 5000]),
    leaseDurationMs: 4000,
    renewDeadlineMs: 3000,
    retryPeriodMs: 1000,
    mutation,
    staleObservations: options.staleObservations ?? true,
    onAction: options.onAction ? (replica, action) => options.onAction?.({ world, operators: ops, replica, action }) : undefined,
  });
  const faultPhaseMs = options.faultPhaseMs ?? 20_000;
  const livenessBoundMs = options.livenessBoundMs ?? 40_000;
  const kinds = options.faults ?? faultKinds;

  ops.start();
  const writeLoop = (): void => {
    world.clientWrite();
    world.schedule(loadRng.int(40, 120), WRITE_KIND, writeLoop);
  };
  const readLoop = (): void => {
    world.clientRead();
    world.schedule(loadRng.int(150, 450), WRITE_KIND, readLoop);
  };
  world.schedule(loadRng.int(0, 100), WRITE_KIND, writeLoop);
  world.schedule(loadRng.int(0, 300), WRITE_KIND, readLoop);

  // ----- faults -----
  const planned: PlannedFault[] = [];
  if (kinds.length > 0) {
    // Faults of the pair itself are drawn more often (they are what a failover is for), and most come
    // once the pair has formed (about 3 s in).
    const weighted = kinds.flatMap((k) => (k === 'memberHostDown' || k === 'pairPartition' || k === 'memberPause' ? [k, k, k] : k === 'memberCrash' ? [k, k] : [k]));
    const count = faultRng.int(2, 13);
    for (let i = 0; i < count; i++) planned.push({ at: faultRng.chance(0.2) ? faultRng.int(500, 4000) : faultRng.int(4000, faultPhaseMs), kind: faultRng.pick(weighted), durationMs: faultRng.chance(0.3) ? faultRng.int(6000, 20_000) : faultRng.int(300, 6000) });
    planned.sort((a, b) => a.at - b.at);
  }
  const described: string[] = [];
  const crashed = new Set<Runner>();
  const live = (): Runner[] => [...world.runners.values()].filter((r) => !r.fenced);
  const heal = (at: number, fn: () => void): void => world.schedule(Math.min(at, faultPhaseMs) - world.now, FAULT_KIND, fn);

  const inject = (f: PlannedFault): void => {
    const until = world.now + f.durationMs;
    const note = (what: string): void => {
      described.push(`${(world.now / 1000).toFixed(2)}s ${what} for ${f.durationMs} ms`);
      world.note(`FAULT ${what} for ${f.durationMs} ms`);
    };
    switch (f.kind) {
      case 'memberCrash': {
        const targets = live().filter((r) => r.running);
        if (targets.length === 0) return;
        const r = faultRng.pick(targets);
        note(`crash ${r.name}`);
        r.kill('crashed (fault)');
        crashed.add(r);
        heal(until, () => restartCrashed(r));
        return;
      }
      case 'memberHostDown': {
        const targets = live().filter((r) => r.running);
        if (targets.length === 0) return;
        const r = faultRng.pick(targets);
        note(`host of ${r.name} down (its member cannot start until the host is back)`);
        r.kill('its host went down (fault)');
        r.hostDownUntil = Math.min(until, faultPhaseMs);
        crashed.add(r);
        heal(until, () => restartCrashed(r));
        return;
      }
      case 'memberPause': {
        const targets = live().filter((r) => r.running && !r.paused);
        if (targets.length === 0) return;
        const r = faultRng.pick(targets);
        note(`pause ${r.name}`);
        r.paused = true;
        heal(until, () => {
          if (r.paused) world.note(`resume ${r.name}`);
          r.paused = false;
        });
        return;
      }
      case 'pairPartition': {
        const targets = live();
        if (targets.length < 2) return;
        const a = faultRng.pick(targets);
        const b = faultRng.pick(targets.filter((r) => r !== a));
        const direction = faultRng.pick(['both', 'one', 'other'] as const);
        const links: [string, string][] = direction === 'both' ? [[a.name, b.name], [b.name, a.name]] : direction === 'one' ? [[a.name, b.name]] : [[b.name, a.name]];
        block(links, note, `partition ${links.map(([x, y]) => `${x}→${y}`).join(' ')}`, until);
        return;
      }
      case 'operatorMemberPartition': {
        const targets = live();
        if (targets.length === 0) return;
        const r = faultRng.pick(targets);
        const opNames = faultRng.chance(0.4) ? ops.replicas.map((o) => o.identity) : [faultRng.pick(ops.replicas).identity];
        const both = faultRng.chance(0.6);
        const links = opNames.flatMap((o): [string, string][] => (both ? [[o, r.name], [r.name, o]] : faultRng.chance(0.5) ? [[o, r.name]] : [[r.name, o]]));
        block(links, note, `partition ${links.map(([x, y]) => `${x}→${y}`).join(' ')}`, until);
        return;
      }
      case 'operatorWitnessPartition': {
        const opNames = faultRng.chance(0.4) ? ops.replicas.map((o) => o.identity) : [faultRng.pick(ops.replicas).identity];
        const both = faultRng.chance(0.6);
        const links = opNames.flatMap((o): [string, string][] => (both ? [[o, 'witness'], ['witness', o]] : faultRng.chance(0.5) ? [[o, 'witness']] : [['witness', o]]));
        block(links, note, `partition ${links.map(([x, y]) => `${x}→${y}`).join(' ')}`, until);
        return;
      }
      case 'networkDelay': {
        const maxDelayMs = faultRng.int(50, 1500);
        const dropP = faultRng.chance(0.5) ? 0.05 : 0;
        note(`peer messages delayed up to ${maxDelayMs} ms, ${dropP * 100}% lost`);
        const conditions = { minDelayMs: 1, maxDelayMs, dropP, dupP: 0 };
        world.net = conditions;
        heal(until, () => {
          if (world.net === conditions) world.healNetworkConditions();
        });
        return;
      }
      case 'networkDuplicate': {
        const maxDelayMs = faultRng.int(5, 300);
        note(`peer messages duplicated (30%), delayed up to ${maxDelayMs} ms, 2% lost`);
        const conditions = { minDelayMs: 1, maxDelayMs, dropP: 0.02, dupP: 0.3 };
        world.net = conditions;
        heal(until, () => {
          if (world.net === conditions) world.healNetworkConditions();
        });
        return;
      }
      case 'operatorCrash': {
        const alive = ops.replicas.filter((o) => o.alive);
        if (alive.length === 0) return;
        const leader = ops.leader();
        const rep = leader && faultRng.chance(0.6) ? leader : faultRng.pick(alive);
        note(`crash operator ${rep.identity}`);
        ops.crash(rep);
        heal(until, () => ops.restart(rep));
        return;
      }
      case 'witnessCrash':
        note('crash the witness');
        world.witness.up = false;
        heal(until, () => {
          world.witness.up = true;
          world.note('the witness is back');
        });
        return;
      case 'staleReplica': {
        const leader = ops.leader();
        if (!leader || ops.replicas.length < 2) return;
        note(`cut operator ${leader.identity} from the API server (a stale replica)`);
        ops.cutFromApi(leader, f.durationMs, faultRng.int(0, 6000));
        return;
      }
      case 'slowOperator': {
        const alive = ops.replicas.filter((o) => o.alive);
        if (alive.length === 0) return;
        const leader = ops.leader();
        const rep = leader && faultRng.chance(0.7) ? leader : faultRng.pick(alive);
        note(`slow operator ${rep.identity} (steps carried out 0.2–4 s after they were planned)`);
        ops.slow(rep, f.durationMs);
        return;
      }
    }
  };

  function block(links: [string, string][], note: (what: string) => void, what: string, until: number): void {
    note(what);
    for (const [a, b] of links) world.setBlocked(a, b, true);
    heal(until, () => {
      for (const [a, b] of links) world.setBlocked(a, b, false);
      world.note(`heal ${what}`);
    });
  }

  function restartCrashed(r: Runner): void {
    if (!crashed.has(r)) return;
    crashed.delete(r);
    r.hostDownUntil = 0;
    if (world.runners.get(r.name) !== r || r.fenced || r.running) return;
    world.note(`${r.name} comes back after its crash`);
    r.start();
  }

  for (const f of planned) world.schedule(f.at, FAULT_KIND, () => inject(f));

  // ----- the quiet period and the liveness check -----
  let servedAgainAtMs: number | undefined;
  let violation: SimViolation | undefined;
  world.schedule(faultPhaseMs, FAULT_KIND, () => {
    world.note('QUIET: every fault is healed');
    world.healNetwork();
    world.witness.up = true;
    for (const r of world.runners.values()) r.paused = false;
    for (const r of [...crashed]) restartCrashed(r);
    ops.heal();
    const check = (): void => {
      if (world.pairServes() && world.lastAckAt >= faultPhaseMs) {
        servedAgainAtMs = world.now;
        world.note(`LIVE: the pair serves again ${world.now - faultPhaseMs} ms after the faults stopped`);
        world.stopped = true;
        return;
      }
      if (world.now - faultPhaseMs >= livenessBoundMs) {
        throw new SimViolation('liveness', `the pair does not serve again within ${livenessBoundMs} ms after the faults stopped: ${describeState(world, ops)}`);
      }
      world.schedule(250, CHECK_KIND, check);
    };
    check();
  });

  try {
    while (!world.stopped && world.step()) {
      // every event is one step; the invariants ran after it
    }
  } catch (error) {
    if (!(error instanceof SimViolation)) throw new Error(`witness sim seed ${seed}: ${(error as Error).message}`, { cause: error });
    violation = error;
    world.note(`VIOLATION ${error.message}`);
  }

  const result: SimResult = {
    seed,
    ok: violation === undefined,
    trace: world.traceLines,
    steps: world.steps,
    simMs: world.now,
    digest: world.digest.value,
    replicas,
    faults: described,
    stats: { ...world.stats, witnessEpoch: world.witness.record?.epoch ?? 0, ...ops.stats },
  };
  if (violation) result.violation = { invariant: violation.invariant, message: violation.message };
  if (servedAgainAtMs !== undefined) result.servedAgainAtMs = servedAgainAtMs;
  return result;
}

function describeState(world: World, ops: Operators): string {
  const r = world.witness.record;
  const record = r ? `witness epoch ${r.epoch} ${r.phase} [${r.members.join(',')}]${r.survivor !== undefined ? ` survivor ${r.survivor}` : ''} fenced [${r.fenced.join(',')}] owner ${r.owner}/t${r.ownerTerm}` : 'no witness record';
  const runners = [...world.runners.values()]
    .map((m) => `${m.name}(id ${m.id}, ${m.fenced ? 'fenced' : m.running ? (m.role === 'leader' ? 'leader' : m.lead === '' ? 'no leader' : 'follower') : `down: ${m.exitReason}`}, voters ${world.names(m.config.voters)}, learners ${world.names(m.config.learners)}, log ${m.last}, commit ${m.commit})`)
    .join('; ');
  const leader = ops.leader();
  return `${record}; runners ${runners || 'none'}; operator leader ${leader ? `${leader.identity}/t${leader.term}` : 'none'}`;
}

export interface ExploreResult {
  runs: number;
  failures: SimResult[];
  steps: number;
  simMs: number;
  wallMs: number;
}

/** Runs every seed; failures are kept (with their traces), successes only counted. */
export function explore(seeds: Iterable<number>, options: SimOptions = {}, onResult?: (result: SimResult) => void): ExploreResult {
  const started = performance.now();
  const out: ExploreResult = { runs: 0, failures: [], steps: 0, simMs: 0, wallMs: 0 };
  for (const seed of seeds) {
    const result = simulate(seed, options);
    out.runs++;
    out.steps += result.steps;
    out.simMs += result.simMs;
    if (!result.ok) out.failures.push(result);
    onResult?.(result);
  }
  out.wallMs = performance.now() - started;
  return out;
}

/** Seeds from `from` (inclusive), `count` of them. */
export function* seedRange(from: number, count: number): Generator<number> {
  for (let i = 0; i < count; i++) yield from + i;
}
