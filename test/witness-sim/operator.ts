/**
 * Simulated operator replicas: leader election on a Lease (identity, transitions → term), and the
 * twoNodeWitness reconcile loop of the leading replica: observe etcd and the placement, track when
 * quorum was first seen lost, read the witness, decide with planTwoNode and carry the step out against
 * the world, requeued with the delays src/controller/etcdcluster/two-node.ts uses.
 *
 * Faults: a replica crashes (loses quorumLostSince and everything else; restarts later and campaigns
 * again), is cut from the API server (its Lease expires and another replica takes it with a higher
 * term, while this one keeps acting with its old term and partly stale observations for a while: a
 * stale replica), or is slow (the step is carried out long after the observation it was planned from).
 * A step in flight when the replica stops leading still completes; a crash cancels it.
 *
 * The steps are carried out as two-node.ts does, against the world's placement (world.ts): the
 * survivor's recovery once per failover whoever asks, the forced-start mark removed by finishRecovery.
 */
import type { VersionedWitnessRecord } from '../../src/domain/witness.ts';
import type { PlacedMember } from '../../src/domain/runtime.ts';
import { planTwoNode, quorumLost, type TwoNodeAction, type TwoNodeInput } from '../../src/controller/witness/protocol.ts';
import type { Random } from './random.ts';
import { EPOCH_MS, type Observation, type World } from './world.ts';

/**
 * Deliberately broken protocols, to show the checker has teeth:
 *   skipFence    the fence step is skipped (the plan is asked again as if the member were fenced)
 *   ignoreCas    a refused witness write is taken as won: the replica plans from what it wrote
 *   recoverAgain the placement's once-per-failover rule is off (world.ts recoverSurvivor): a slow or
 *                stale replica that planned the recovery from an older view forces the survivor again
 *   noTermRule   the witness store does not enforce the term rule (only the version)
 *   keepMark     the protocol never removes the survivor's forced-start mark (the planner does not see
 *                it): a later restart of the survivor forces a new cluster again and drops the replacement
 */
export const mutations = ['none', 'skipFence', 'ignoreCas', 'recoverAgain', 'noTermRule', 'keepMark'] as const;
export type Mutation = (typeof mutations)[number];

export type Planner = (input: TwoNodeInput) => TwoNodeAction;

export function plannerFor(mutation: Mutation): Planner {
  switch (mutation) {
    case 'skipFence':
      return (input) => {
        let current = input;
        let action = planTwoNode(current);
        for (let i = 0; i < 3 && action.kind === 'fence'; i++) {
          const member = action.member;
          current = { ...current, placed: current.placed.map((p): PlacedMember => (p.name === member ? { ...p, state: 'failed', fenced: true } : p)) };
          action = planTwoNode(current);
        }
        return action;
      };
    case 'keepMark':
      return (input) => planTwoNode({ ...input, placed: input.placed.map(({ recovering: _recovering, ...p }) => p) });
    case 'none':
    case 'recoverAgain':
    case 'ignoreCas':
    case 'noTermRule':
      return planTwoNode;
  }
}

export interface OperatorOptions {
  cluster: string;
  replicas: number;
  failoverGraceMs: number;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  mutation: Mutation;
  /** A stale replica sometimes plans from its previous observation (a cache that stopped updating). */
  staleObservations: boolean;
  /** Test hook: called before a step is carried out. */
  onAction?: ((replica: Replica, action: TwoNodeAction) => void) | undefined;
}

export interface Replica {
  readonly identity: string;
  alive: boolean;
  incarnation: number;
  leading: boolean;
  term: number;
  /** Grows on every start of leading: a reconcile loop of an earlier leadership stops. */
  leadEpoch: number;
  lastRenew: number;
  apiCutUntil: number;
  /** Until then it keeps leading whatever the Lease says (a stale replica). */
  staleUntil: number;
  slowUntil: number;
  quorumLostSince: number | undefined;
  lastObservation: Observation | undefined;
  /** ignoreCas: the record it believes it wrote. */
  assumed: VersionedWitnessRecord | undefined;
  failures: number;
  /** Tracing: the last step noted (a repeated wait is noted once). */
  lastNoted: string;
}

const OP_KIND = 3;
/** A step that threw is retried with the work queue's backoff: 5 ms · 2^failures (capped here). */
const backoff = (failures: number): number => Math.min(8000, 5 * 2 ** failures);
const settling = (error: string): boolean => /unhealthy cluster|too many learner|not enough started members|in sync|not ready/i.test(error);

export class Operators {
  readonly replicas: Replica[];
  readonly lease = { holder: '', transitions: 0, renewedAt: Number.NEGATIVE_INFINITY };
  private readonly world: World;
  private readonly rng: Random;
  private readonly options: OperatorOptions;
  private readonly plan: Planner;
  readonly stats = { reconciles: 0, actions: 0, refusedWrites: 0 };

  constructor(world: World, rng: Random, options: OperatorOptions) {
    this.world = world;
    this.rng = rng;
    this.options = options;
    this.plan = plannerFor(options.mutation);
    this.replicas = Array.from({ length: options.replicas }, (_, i) => ({
      identity: `op-${i}`,
      alive: true,
      incarnation: 1,
      leading: false,
      term: 0,
      leadEpoch: 0,
      lastRenew: Number.NEGATIVE_INFINITY,
      apiCutUntil: 0,
      staleUntil: 0,
      slowUntil: 0,
      quorumLostSince: undefined,
      lastObservation: undefined,
      assumed: undefined,
      failures: 0,
      lastNoted: '',
    }));
  }

  start(): void {
    for (const rep of this.replicas) {
      const inc = rep.incarnation;
      this.world.schedule(this.rng.int(0, 300), OP_KIND, () => this.electionLoop(rep, inc));
    }
  }

  leader(): Replica | undefined {
    return this.replicas.find((r) => r.alive && r.leading && this.lease.holder === r.identity);
  }

  // ----- faults -----

  crash(rep: Replica): void {
    if (!rep.alive) return;
    rep.alive = false;
    rep.leading = false;
    rep.incarnation++;
    this.world.note(`operator ${rep.identity} crashes${rep.term > 0 ? ` (term ${rep.term})` : ''}`);
  }

  restart(rep: Replica): void {
    if (rep.alive) return;
    rep.alive = true;
    rep.incarnation++;
    rep.leading = false;
    rep.quorumLostSince = undefined;
    rep.lastObservation = undefined;
    rep.assumed = undefined;
    rep.failures = 0;
    rep.apiCutUntil = 0;
    rep.staleUntil = 0;
    rep.slowUntil = 0;
    this.world.note(`operator ${rep.identity} restarts`);
    const inc = rep.incarnation;
    this.world.schedule(this.rng.int(0, 300), OP_KIND, () => this.electionLoop(rep, inc));
  }

  /** Cut from the API server for `durationMs`; it notices it lost the Lease `staleExtraMs` after it should have. */
  cutFromApi(rep: Replica, durationMs: number, staleExtraMs: number): void {
    const now = this.world.now;
    rep.apiCutUntil = now + durationMs;
    rep.staleUntil = now + this.options.renewDeadlineMs + staleExtraMs;
    this.world.note(`operator ${rep.identity} is cut from the API server for ${durationMs} ms (stale for up to ${this.options.renewDeadlineMs + staleExtraMs} ms)`);
  }

  slow(rep: Replica, durationMs: number): void {
    rep.slowUntil = this.world.now + durationMs;
    this.world.note(`operator ${rep.identity} is slow for ${durationMs} ms`);
  }

  heal(): void {
    for (const rep of this.replicas) {
      rep.apiCutUntil = 0;
      rep.staleUntil = 0;
      rep.slowUntil = 0;
      if (!rep.alive) this.restart(rep);
    }
  }

  // ----- leader election -----

  private electionLoop(rep: Replica, inc: number): void {
    if (!rep.alive || rep.incarnation !== inc) return;
    const { world, lease, options } = this;
    const now = world.now;
    if (now >= rep.apiCutUntil) {
      if (lease.holder === rep.identity) {
        lease.renewedAt = now;
        rep.lastRenew = now;
        if (!rep.leading) this.startLeading(rep, lease.transitions + 1);
      } else if (lease.holder === '' || now > lease.renewedAt + options.leaseDurationMs) {
        lease.transitions++;
        lease.holder = rep.identity;
        lease.renewedAt = now;
        rep.lastRenew = now;
        this.startLeading(rep, lease.transitions + 1);
      } else if (rep.leading && now >= rep.staleUntil) {
        this.stopLeading(rep, `${lease.holder} holds the Lease`);
      }
    } else if (rep.leading && now - rep.lastRenew > options.renewDeadlineMs && now >= rep.staleUntil) {
      this.stopLeading(rep, 'no renewal within the renew deadline');
    }
    world.schedule(options.retryPeriodMs + this.rng.int(0, 200), OP_KIND, () => this.electionLoop(rep, inc));
  }

  private startLeading(rep: Replica, term: number): void {
    rep.leading = true;
    rep.term = term;
    rep.leadEpoch++;
    rep.quorumLostSince = undefined;
    rep.assumed = undefined;
    rep.failures = 0;
    this.world.note(`operator ${rep.identity} leads at term ${term}`);
    const inc = rep.incarnation;
    const epoch = rep.leadEpoch;
    this.world.schedule(this.rng.int(0, 50), OP_KIND, () => this.reconcile(rep, inc, epoch));
  }

  private stopLeading(rep: Replica, why: string): void {
    rep.leading = false;
    this.world.note(`operator ${rep.identity} stops leading (term ${rep.term}): ${why}`);
  }

  // ----- the reconcile loop -----

  private reconcile(rep: Replica, inc: number, epoch: number): void {
    if (!rep.alive || rep.incarnation !== inc || !rep.leading || rep.leadEpoch !== epoch) return;
    this.stats.reconciles++;
    const { world } = this;
    // A stale replica partly works from what it saw before (an informer cache that stopped updating).
    const stale = this.options.staleObservations && world.now < rep.staleUntil && world.now < rep.apiCutUntil && rep.lastObservation !== undefined && this.rng.chance(0.5);
    const observation = stale ? rep.lastObservation! : world.observe(rep.identity);
    rep.lastObservation = observation;
    world.schedule(stale ? this.rng.int(1, 10) : observation.latencyMs, OP_KIND, () => this.decide(rep, inc, epoch, observation));
  }

  private decide(rep: Replica, inc: number, epoch: number, observation: Observation): void {
    if (!rep.alive || rep.incarnation !== inc) return;
    const { world, options } = this;
    const now = world.now;
    // QuorumTracker.observe: the first time this process saw no quorum; forgotten once quorum is seen.
    if (!quorumLost(observation.etcd)) rep.quorumLostSince = undefined;
    else rep.quorumLostSince ??= now;
    const witness = rep.assumed ?? world.witnessRead(rep.identity);
    if (!witness) {
      this.requeue(rep, inc, epoch, backoff(rep.failures++));
      return;
    }
    const input: TwoNodeInput = {
      cluster: options.cluster,
      self: { identity: rep.identity, term: rep.term },
      now: EPOCH_MS + now,
      failoverGraceMs: options.failoverGraceMs,
      witness,
      etcd: observation.etcd,
      placed: observation.placed,
      quorumLostSince: rep.quorumLostSince === undefined ? undefined : EPOCH_MS + rep.quorumLostSince,
    };
    const action = this.plan(input);
    const delay = now < rep.slowUntil ? this.rng.int(200, 4000) : this.rng.int(1, 10);
    world.schedule(delay, OP_KIND, () => this.act(rep, inc, epoch, action, observation));
  }

  private requeue(rep: Replica, inc: number, epoch: number, delayMs: number): void {
    this.world.schedule(delayMs, OP_KIND, () => this.reconcile(rep, inc, epoch));
  }

  private describe(action: TwoNodeAction): string {
    switch (action.kind) {
      case 'writeWitness':
        return `writeWitness ${action.reason} epoch ${action.next.epoch} (expects version ${action.expectedVersion || '(none)'})`;
      case 'fence':
        return `fence ${action.member} (epoch ${action.epoch})`;
      case 'recoverSurvivor':
        return `recoverSurvivor ${action.member} (failoverEpoch ${action.failoverEpoch})`;
      case 'refused':
      case 'wait':
        return `${action.kind}: ${action.reason}`;
      case 'steady':
        return 'steady';
      case 'promote':
      case 'removeMember':
        return `${action.kind} ${action.member} (id ${action.id})`;
      case 'startMember':
        return `startMember ${action.member} (initial cluster ${action.initialCluster})`;
      case 'bootstrap':
      case 'finishRecovery':
      case 'deleteRunner':
      case 'restartMember':
      case 'addLearner':
        return `${action.kind} ${action.member}`;
    }
  }

  private act(rep: Replica, inc: number, epoch: number, action: TwoNodeAction, observation: Observation): void {
    const gone = (): boolean => !rep.alive || rep.incarnation !== inc;
    if (gone()) return;
    const { world } = this;
    this.options.onAction?.(rep, action);
    if (gone()) return;
    if (action.kind !== 'wait' && action.kind !== 'steady') this.stats.actions++;
    if (world.options.trace) {
      const text = this.describe(action);
      if ((action.kind !== 'wait' && action.kind !== 'steady') || rep.lastNoted !== text) {
        world.note(`operator ${rep.identity}/t${rep.term}${rep.leading ? '' : ' (no longer leading)'}: ${text}`);
      }
      rep.lastNoted = text;
    }
    const outcome = { threw: false };
    const failed = (error: string): number => {
      if (world.options.trace) world.note(`operator ${rep.identity}: ${action.kind} fails: ${error}`);
      outcome.threw = true;
      return backoff(rep.failures++);
    };
    const leaderName = (): string | undefined => {
      const etcd = observation.etcd;
      const leader = etcd?.members.find((m) => m.id === etcd.leaderId);
      return leader?.name === '' ? undefined : leader?.name;
    };
    let next: number;
    switch (action.kind) {
      case 'writeWitness': {
        const result = world.witnessWrite(rep.identity, action.expectedVersion, action.next);
        if (!result) {
          next = failed('the witness did not answer');
          break;
        }
        if (this.options.mutation === 'ignoreCas') rep.assumed = { record: action.next, version: result.ok ? result.version : result.current.version };
        if (!result.ok) {
          this.stats.refusedWrites++;
          next = 100;
        } else {
          next = 10;
        }
        break;
      }
      case 'bootstrap': {
        const error = world.startNew(action.member, 'new');
        next = error === undefined ? 500 : failed(error);
        break;
      }
      case 'startMember':
      case 'restartMember': {
        const error = world.runners.has(action.member) ? world.startExisting(action.member) : world.startNew(action.member, 'existing');
        // two-node.ts: the second member of a pair that is all down is started right after the first.
        next = error === undefined ? 50 : failed(error);
        break;
      }
      case 'fence':
        world.fence(action.member, action.epoch);
        next = 10;
        break;
      case 'recoverSurvivor': {
        const error = world.recoverSurvivor(action.member, action.failoverEpoch);
        next = error === undefined ? 200 : failed(error);
        break;
      }
      case 'finishRecovery':
        world.finishRecovery(action.member);
        next = 10;
        break;
      case 'deleteRunner':
        world.deleteRunner(action.member);
        next = 100;
        break;
      case 'addLearner': {
        const result = world.memberAddLearner(rep.identity, leaderName(), action.member);
        if (!result.ok) {
          next = settling(result.error) ? 2000 : failed(result.error);
          break;
        }
        // The member add and the start are two calls: a crash in between leaves a learner nobody runs.
        const member = action.member;
        rep.failures = 0;
        world.schedule(this.rng.int(1, 20), OP_KIND, () => {
          if (gone()) return;
          const error = world.startNew(member, 'existing');
          if (error !== undefined) world.note(`operator ${rep.identity}: starting ${member} fails: ${error}`);
          this.requeue(rep, inc, epoch, 1000);
        });
        return;
      }
      case 'promote': {
        const result = world.memberPromote(rep.identity, leaderName(), action.id);
        next = result.ok ? 100 : settling(result.error) ? 1000 : failed(result.error);
        break;
      }
      case 'removeMember': {
        const result = world.memberRemove(rep.identity, leaderName(), action.id);
        next = result.ok ? 100 : settling(result.error) ? 2000 : failed(result.error);
        break;
      }
      case 'refused':
        next = 2000;
        break;
      case 'wait':
        next = rep.quorumLostSince === undefined ? 500 : 200;
        break;
      case 'steady':
        next = 1000;
        break;
    }
    if (!outcome.threw) rep.failures = 0;
    this.requeue(rep, inc, epoch, next);
  }
}
