/**
 * The simulated world of a two-node-plus-witness cluster: etcd members with a small raft model, the
 * witness store, the network between them, the placement that runs members, and the clock. Discrete
 * events on one queue ordered by (time, sequence); every random choice comes from a seeded stream, so a
 * seed replays exactly.
 *
 * Raft model (what safety depends on, kept faithful): durable log, term and vote (fsynced); the commit
 * index in memory, made durable only when a Ready also carries entries or a term/vote change (etcd
 * writes a commit-only HardState without fsync, so a SIGKILL loses it);
 * replication with log matching and truncation of conflicting suffixes; the leader commits an entry of
 * its term once a majority of its config's voters hold it, acknowledges the client when the receiving
 * member applies it, and tells followers the new commit index in a later message (an empty append, a
 * heartbeat) that the network may delay or lose; check-quorum (a leader steps down after an election
 * timeout without hearing from a majority) and pre-vote with leases (a member that hears a leader
 * grants no vote); learners replicate but neither vote nor count; membership changes are log entries
 * that take effect when applied, one at a time; a member rejects messages from ids it removed and a
 * removed member that hears so exits; `--force-new-cluster` truncates the log past the durable commit
 * index, appends a conf entry making the config {self} (everyone else removed) and commits it.
 * Elections are atomic (a candidate wins if a majority of its voters are reachable both ways, running,
 * not in a leader lease and not more up to date): the protocol under test is the operator's, not raft's.
 *
 * The placement does what the local one does (src/controller/placement/local.ts): a fence mark; a
 * survivor's recovery once per failover whoever asks (recoveredEpoch); a durable forced-start mark that
 * every start obeys (etcd-wal-commit, then --force-new-cluster: the member's guard script) until the
 * protocol's finishRecovery step removes it, whichever operator replica leads by then.
 */
import { MinHeap } from '../../src/min-heap.ts';
import { witnessWriteRefusal, type VersionedWitnessRecord, type WitnessRecord, type WitnessWriteResult } from '../../src/domain/witness.ts';
import type { PlacedMember } from '../../src/domain/runtime.ts';
import type { EtcdMemberView, EtcdView } from '../../src/controller/etcdcluster/observe.ts';
import { Invariants, SimViolation } from './invariants.ts';
import { Digest, Random } from './random.ts';

/** Raft timing in ticks of TICK_MS (etcd's defaults: heartbeat 100 ms, election 1000 ms). */
export const TICK_MS = 100;
const ELECTION_TICKS = 10;
const MAX_BATCH = 64;
/** etcd's client request timeout: a waiter that outlives it is never acknowledged. */
const REQUEST_TIMEOUT_MS = 5000;
/** observeEtcd's per-call deadline: an unreachable endpoint costs this much of the observation. */
const OBSERVE_TIMEOUT_MS = 2000;
/** The wall clock the protocol sees: simulated ms are added to this. */
export const EPOCH_MS = Date.parse('2026-01-01T00:00:00Z');

export interface Config {
  readonly voters: readonly string[];
  readonly learners: readonly string[];
}

export interface ConfChange {
  readonly type: 'bootstrap' | 'addLearner' | 'promote' | 'remove' | 'force';
  readonly id: string;
  readonly config: Config;
}

export interface Entry {
  readonly index: number;
  readonly term: number;
  /** A client write's id (0: none). */
  readonly write: number;
  readonly conf?: ConfChange;
}

type Msg =
  | { type: 'app'; from: string; to: string; term: number; prevIndex: number; prevTerm: number; entries: readonly Entry[]; commit: number }
  | { type: 'appResp'; from: string; to: string; term: number; index: number; reject: boolean; rejected: number; hint: number }
  | { type: 'hb'; from: string; to: string; term: number; commit: number; ctx: number }
  | { type: 'hbResp'; from: string; to: string; term: number; ctx: number }
  | { type: 'prop'; from: string; to: string; term: number; write: number }
  | { type: 'removed'; from: string; to: string; term: number };

interface Progress {
  match: number;
  next: number;
  active: boolean;
}

interface PendingRead {
  ctx: number;
  index: number;
  start: number;
  acks: Set<string>;
}

export interface AckedWrite {
  write: number;
  index: number;
  term: number;
  at: number;
  by: string;
}

export interface SimWorldOptions {
  cluster: string;
  /**
   * Forced starts without etcd-wal-commit (the hazard): the survivor keeps only what its durable commit
   * index covers.
   */
  naiveRecovery: boolean;
  /**
   * The mutation recoverAgain: the placement's once-per-failover rule is off, so it recovers the
   * survivor whenever asked (a slow or stale replica's repeated request included).
   */
  recoverAgain: boolean;
  trace: boolean;
}

const peerUrlOf = (name: string): string => `http://${name}:2380`;
const clientUrlOf = (name: string): string => `http://${name}:2379`;

/** One member's runner (a process with a data dir) and its raft state. */
export class Runner {
  readonly name: string;
  readonly id: string;
  readonly peerUrl: string;
  readonly clientUrl: string;
  readonly world: World;
  // placement
  running = false;
  paused = false;
  fenced = false;
  fencedAt = -1;
  recoveredEpoch: number | undefined;
  /**
   * The forced-start mark (`<member>.recover`): durable on the member's host, so it outlives any
   * operator process. While it exists, every start commits the whole durable log (etcd-wal-commit) and
   * forces a new cluster; only finishRecovery removes it.
   */
  recovering = false;
  stateSince = 0;
  /** The host is down until then: the member cannot be started. */
  hostDownUntil = 0;
  incarnation = 0;
  exitReason = '';
  /** The member ever started (etcd publishes its name then). */
  started = false;
  // durable
  log: Entry[] = [];
  term = 0;
  vote = '';
  durableCommit = 0;
  removed = new Set<string>();
  bootConfig: Config;
  // volatile
  commit = 0;
  applied = 0;
  config: Config;
  role: 'follower' | 'leader' = 'follower';
  lead = '';
  electionElapsed = 0;
  timeout = ELECTION_TICKS;
  progress = new Map<string, Progress>();
  termStart = 0;
  pendingConf = 0;
  waiters = new Map<number, number>();
  reads: PendingRead[] = [];

  constructor(world: World, name: string, id: string, config: Config) {
    this.world = world;
    this.name = name;
    this.id = id;
    this.peerUrl = peerUrlOf(name);
    this.clientUrl = clientUrlOf(name);
    this.bootConfig = config;
    this.config = config;
  }

  get last(): number {
    return this.log.length;
  }

  termAt(index: number): number {
    return index === 0 ? 0 : (this.log[index - 1]?.term ?? -1);
  }

  get lastTerm(): number {
    return this.termAt(this.log.length);
  }

  leads(): boolean {
    return this.running && this.role === 'leader';
  }

  isVoter(): boolean {
    return this.config.voters.includes(this.id);
  }

  /** Serves: running, not paused, knows a leader. */
  get serving(): boolean {
    return this.running && !this.paused && this.lead !== '';
  }

  private quorum(): number {
    return Math.floor(this.config.voters.length / 2) + 1;
  }

  /** An fsync of the WAL: the HardState written with it carries the commit index known now. */
  private sync(): void {
    this.durableCommit = this.commit;
  }

  // ----- lifecycle (the placement) -----

  start(): void {
    const w = this.world;
    // The guard script: with the mark, etcd-wal-commit runs before etcd (on every start, not only the first).
    const forced = this.recovering;
    if (forced && !w.options.naiveRecovery && this.durableCommit < this.last) {
      w.note(`etcd-wal-commit on ${this.name}: commit ${this.durableCommit} → ${this.last}`);
      this.durableCommit = this.last;
    }
    this.running = true;
    this.paused = false;
    this.started = true;
    this.incarnation++;
    this.stateSince = w.now;
    this.exitReason = '';
    this.commit = this.durableCommit;
    this.config = this.bootConfig;
    for (let i = 0; i < this.commit; i++) {
      const conf = this.log[i]?.conf;
      if (conf) this.config = conf.config;
    }
    this.applied = this.commit;
    // Whatever the durable commit index covers is committed from now on (etcd-wal-commit may have raised it).
    w.invariants.onCommit(w, this, 0, this.commit);
    this.role = 'follower';
    this.lead = '';
    this.electionElapsed = 0;
    this.timeout = ELECTION_TICKS + w.raftRng.int(0, ELECTION_TICKS);
    this.progress.clear();
    this.waiters.clear();
    this.reads = [];
    w.publish(this.id);
    if (this.removed.has(this.id)) {
      this.exit('it was removed from the cluster');
      return;
    }
    if (forced) this.forcedStart();
    w.note(`start ${this.name} (id ${this.id}) term ${this.term} log ${this.last} commit ${this.commit}${forced ? ' --force-new-cluster' : ''}`);
    const inc = this.incarnation;
    w.schedule(w.raftRng.int(1, TICK_MS), 1, () => this.tickLoop(inc));
  }

  private tickLoop(inc: number): void {
    if (!this.running || this.incarnation !== inc) return;
    if (!this.paused) this.tick();
    this.world.schedule(TICK_MS, 1, () => this.tickLoop(inc));
  }

  /** SIGKILL: everything not fsynced is gone. */
  kill(reason: string): void {
    if (!this.running) return;
    this.running = false;
    this.paused = false;
    this.stateSince = this.world.now;
    this.exitReason = reason;
    this.role = 'follower';
    this.lead = '';
    this.world.note(`kill ${this.name}: ${reason} (durable commit ${this.durableCommit}, commit was ${this.commit}, log ${this.last})`);
    this.commit = this.durableCommit;
  }

  private exit(reason: string): void {
    this.kill(`exited: ${reason}`);
  }

  /** `--force-new-cluster`: entries past the durable commit index are discarded; the config becomes {self}. */
  private forcedStart(): void {
    const w = this.world;
    w.stats.forcedStarts++;
    const dropped = this.log.length - this.durableCommit;
    if (dropped > 0) {
      w.note(`${this.name}: --force-new-cluster discards ${dropped} entries past its durable commit ${this.durableCommit}`);
      this.log.length = this.durableCommit;
    }
    const others = [...this.config.voters, ...this.config.learners].filter((id) => id !== this.id);
    w.invariants.onForcedStart(w, this, others);
    for (const id of others) this.removed.add(id);
    const config: Config = { voters: [this.id], learners: [] };
    this.log.push({ index: this.log.length + 1, term: this.term, write: 0, conf: { type: 'force', id: this.id, config } });
    // etcd saves the conf entries with an empty HardState: the durable commit index stays where it was.
    this.config = config;
    this.commitTo(this.log.length);
  }

  // ----- raft -----

  private tick(): void {
    const w = this.world;
    if (this.role === 'leader') {
      this.electionElapsed++;
      for (const [to, pr] of this.progress) w.send({ type: 'hb', from: this.id, to, term: this.term, commit: Math.min(pr.match, this.commit), ctx: 0 });
      if (this.electionElapsed >= ELECTION_TICKS) {
        this.electionElapsed = 0;
        let active = 1;
        for (const [id, pr] of this.progress) {
          if (pr.active && this.config.voters.includes(id)) active++;
          pr.active = false;
        }
        if (active < this.quorum()) {
          w.note(`${this.name}: check-quorum fails, steps down (term ${this.term})`);
          this.becomeFollower(this.term, '');
        }
      }
      return;
    }
    this.electionElapsed++;
    if (this.isVoter() && this.electionElapsed >= this.timeout) w.campaign(this);
  }

  becomeFollower(term: number, lead: string): void {
    if (term > this.term) {
      this.term = term;
      this.vote = '';
      this.sync();
    }
    this.role = 'follower';
    this.lead = lead;
    this.electionElapsed = 0;
    this.progress.clear();
    this.reads = [];
  }

  becomeLeader(): void {
    const w = this.world;
    this.role = 'leader';
    this.lead = this.id;
    this.electionElapsed = 0;
    this.progress.clear();
    for (const id of [...this.config.voters, ...this.config.learners]) {
      if (id !== this.id) this.progress.set(id, { match: 0, next: this.last + 1, active: false });
    }
    this.reads = [];
    this.termStart = this.last + 1;
    this.pendingConf = this.last + 1;
    w.note(`${this.name} becomes leader at term ${this.term} (log ${this.last}, commit ${this.commit}, voters ${w.names(this.config.voters)})`);
    w.invariants.onLeader(w, this);
    this.append({ index: this.last + 1, term: this.term, write: 0 });
  }

  commitTo(index: number): void {
    if (index <= this.commit) return;
    this.world.invariants.onCommit(this.world, this, this.commit, index);
    this.commit = index;
    this.applyCommitted();
  }

  private applyCommitted(): void {
    const w = this.world;
    while (this.applied < this.commit) {
      const e = this.log[this.applied]!;
      this.applied++;
      if (e.conf) this.applyConf(e.conf);
      if (!this.running) return;
      if (e.write !== 0 && this.waiters.has(e.write)) {
        const deadline = this.waiters.get(e.write)!;
        this.waiters.delete(e.write);
        if (w.now <= deadline) w.acknowledge(this, e);
      }
    }
  }

  private applyConf(conf: ConfChange): void {
    const before = this.config;
    this.config = conf.config;
    if (conf.type === 'remove') this.removed.add(conf.id);
    if (conf.type === 'force') for (const id of [...before.voters, ...before.learners]) if (id !== conf.id) this.removed.add(id);
    if (conf.type === 'remove' && conf.id === this.id) {
      this.exit('it applied its own removal');
      return;
    }
    if (this.role === 'leader') {
      for (const id of [...this.config.voters, ...this.config.learners]) {
        if (id !== this.id && !this.progress.has(id)) this.progress.set(id, { match: 0, next: this.last + 1, active: true });
      }
      for (const id of [...this.progress.keys()]) if (!this.config.voters.includes(id) && !this.config.learners.includes(id)) this.progress.delete(id);
      if (!this.isVoter()) this.becomeFollower(this.term, '');
    }
  }

  maybeCommit(): boolean {
    if (this.role !== 'leader') return false;
    const matches = this.config.voters.map((id) => (id === this.id ? this.last : (this.progress.get(id)?.match ?? 0))).sort((a, b) => b - a);
    const q = matches[this.quorum() - 1] ?? 0;
    if (q > this.commit && this.termAt(q) === this.term) {
      this.commitTo(q);
      // Applying may have stopped it (its own removal) or made it step down.
      if (this.leads()) this.bcastAppend();
      return true;
    }
    return false;
  }

  private sendAppend(to: string, pr: Progress): void {
    const prevIndex = Math.min(pr.next - 1, this.last);
    const entries = this.log.slice(prevIndex, Math.min(this.last, prevIndex + MAX_BATCH));
    this.world.send({ type: 'app', from: this.id, to, term: this.term, prevIndex, prevTerm: this.termAt(prevIndex), entries, commit: this.commit });
    if (entries.length > 0) pr.next = prevIndex + entries.length + 1;
  }

  bcastAppend(): void {
    for (const [to, pr] of this.progress) this.sendAppend(to, pr);
  }

  /**
   * Appends to the leader's log. The Ready that persists the entry carries the HardState as it is after
   * the step: with a single voter the entry is already committed then, so its commit index is fsynced
   * with it; with two, the commit index moves later, on the follower's answer, without an fsync.
   */
  private append(entry: Entry): void {
    this.log.push(entry);
    const committed = this.maybeCommit();
    this.sync();
    if (!committed) this.bcastAppend();
  }

  propose(write: number): void {
    this.append({ index: this.last + 1, term: this.term, write });
  }

  proposeConf(conf: ConfChange): 'committed' | 'pending' {
    const index = this.last + 1;
    this.pendingConf = index;
    this.append({ index, term: this.term, write: 0, conf });
    return this.commit >= index ? 'committed' : 'pending';
  }

  readIndex(start: number): boolean {
    const w = this.world;
    if (this.role !== 'leader' || this.commit < this.termStart) return false;
    const ctx = w.nextReadCtx();
    const read: PendingRead = { ctx, index: this.commit, start, acks: new Set([this.id]) };
    if (this.config.voters.length === 1) {
      w.serveRead(this, read.index, start);
      return true;
    }
    this.reads.push(read);
    for (const to of this.progress.keys()) w.send({ type: 'hb', from: this.id, to, term: this.term, commit: Math.min(this.progress.get(to)!.match, this.commit), ctx });
    return true;
  }

  step(m: Msg): void {
    const w = this.world;
    if (m.type === 'removed') {
      this.exit(`${w.nameOf(m.from)} says it was removed from the cluster`);
      return;
    }
    if (this.removed.has(m.from)) {
      w.send({ type: 'removed', from: this.id, to: m.from, term: this.term });
      return;
    }
    if (m.type === 'prop') {
      if (this.role === 'leader') this.propose(m.write);
      return;
    }
    if (m.term > this.term) {
      const lead = m.type === 'app' || m.type === 'hb' ? m.from : '';
      this.becomeFollower(m.term, lead);
    } else if (m.term < this.term) {
      if (m.type === 'app' || m.type === 'hb') w.send({ type: 'appResp', from: this.id, to: m.from, term: this.term, index: 0, reject: true, rejected: 0, hint: 0 });
      return;
    }
    switch (m.type) {
      case 'app':
        if (this.role === 'leader') return;
        this.lead = m.from;
        this.electionElapsed = 0;
        this.handleAppend(m);
        return;
      case 'hb':
        if (this.role === 'leader') return;
        this.lead = m.from;
        this.electionElapsed = 0;
        this.commitTo(Math.min(m.commit, this.last));
        if (this.running) w.send({ type: 'hbResp', from: this.id, to: m.from, term: this.term, ctx: m.ctx });
        return;
      case 'appResp':
        this.handleAppResp(m);
        return;
      case 'hbResp': {
        if (this.role !== 'leader') return;
        const pr = this.progress.get(m.from);
        if (!pr) return;
        pr.active = true;
        if (pr.match < this.last) this.sendAppend(m.from, pr);
        if (m.ctx !== 0 && this.config.voters.includes(m.from)) this.ackRead(m.ctx, m.from);
        return;
      }
    }
  }

  private handleAppend(m: Extract<Msg, { type: 'app' }>): void {
    const w = this.world;
    if (m.prevIndex < this.commit) {
      w.send({ type: 'appResp', from: this.id, to: m.from, term: this.term, index: this.commit, reject: false, rejected: 0, hint: 0 });
      return;
    }
    if (m.prevIndex > this.last || this.termAt(m.prevIndex) !== m.prevTerm) {
      w.send({ type: 'appResp', from: this.id, to: m.from, term: this.term, index: 0, reject: true, rejected: m.prevIndex, hint: Math.min(m.prevIndex, this.last) });
      return;
    }
    const lastNew = m.prevIndex + m.entries.length;
    let appended = false;
    for (const e of m.entries) {
      if (e.index <= this.last && this.termAt(e.index) === e.term) continue;
      if (e.index <= this.commit) throw new SimViolation('lostWrite', `${this.name} would overwrite its committed entry ${e.index}`);
      this.log.length = e.index - 1;
      this.log.push(e);
      appended = true;
    }
    this.commitTo(Math.min(m.commit, lastNew));
    if (!this.running) return;
    if (appended) this.sync();
    w.send({ type: 'appResp', from: this.id, to: m.from, term: this.term, index: lastNew, reject: false, rejected: 0, hint: 0 });
  }

  private handleAppResp(m: Extract<Msg, { type: 'appResp' }>): void {
    if (this.role !== 'leader') return;
    const pr = this.progress.get(m.from);
    if (!pr) return;
    pr.active = true;
    if (m.reject) {
      if (m.rejected <= pr.match) return;
      pr.next = Math.max(1, Math.min(m.rejected, m.hint + 1));
      this.sendAppend(m.from, pr);
      return;
    }
    if (m.index > pr.match) pr.match = m.index;
    if (pr.next <= pr.match) pr.next = pr.match + 1;
    if (!this.maybeCommit() && pr.match < this.last) this.sendAppend(m.from, pr);
  }

  private ackRead(ctx: number, from: string): void {
    const w = this.world;
    const i = this.reads.findIndex((r) => r.ctx === ctx);
    if (i < 0) return;
    const read = this.reads[i]!;
    read.acks.add(from);
    if (read.acks.size < this.quorum()) return;
    // ReadIndex: this and every earlier pending read is confirmed.
    const served = this.reads.splice(0, i + 1);
    for (const r of served) w.serveRead(this, r.index, r.start);
  }
}

/** The witness store: the record, compare-and-swap on a version, witnessWriteRefusal enforced, durable. */
export class WitnessStore {
  record: WitnessRecord | undefined;
  version = 0;
  up = true;
  /** Test hook (a mutated store): skip the term rule. */
  enforceTerm = true;

  read(): VersionedWitnessRecord {
    return { record: this.record, version: this.record ? String(this.version) : '' };
  }

  compareAndSwap(expectedVersion: string, next: WitnessRecord): WitnessWriteResult {
    const current = this.read();
    if (current.version !== expectedVersion) return { ok: false, current, reason: `version ${current.version || '(none)'} is not ${expectedVersion || '(none)'}` };
    const refusal = witnessWriteRefusal(this.record, this.enforceTerm ? next : { ...next, ownerTerm: Number.MAX_SAFE_INTEGER });
    if (refusal !== undefined) return { ok: false, current, reason: refusal };
    this.record = Object.freeze({ ...next, members: [...next.members], fenced: [...next.fenced] });
    this.version++;
    return { ok: true, version: String(this.version) };
  }
}

interface SimEvent {
  t: number;
  seq: number;
  kind: number;
  fn: () => void;
}

/** Events in (t, seq) order. */
function eventBefore(a: SimEvent, b: SimEvent): boolean {
  return a.t < b.t || (a.t === b.t && a.seq < b.seq);
}

export interface NetworkConditions {
  minDelayMs: number;
  maxDelayMs: number;
  dropP: number;
  dupP: number;
}

export const normalNetwork: NetworkConditions = { minDelayMs: 1, maxDelayMs: 4, dropP: 0, dupP: 0 };

/** What an operator replica sees of etcd, and how long seeing it took. */
export interface Observation {
  etcd: EtcdView | undefined;
  placed: PlacedMember[];
  latencyMs: number;
}

export type EtcdApiResult = { ok: true; id: string } | { ok: false; error: string };

export class World {
  readonly options: SimWorldOptions;
  readonly invariants = new Invariants();
  readonly digest = new Digest();
  now = 0;
  steps = 0;
  private seq = 0;
  private readonly queue = new MinHeap<SimEvent>(eventBefore);
  readonly raftRng: Random;
  readonly netRng: Random;
  readonly loadRng: Random;
  readonly runners = new Map<string, Runner>();
  private readonly byId = new Map<string, Runner>();
  /** etcd's member attributes by id: name (once published), URLs. */
  private readonly registry = new Map<string, { name: string; published: boolean }>();
  /** Names whose runner was deleted after a fence: the guard still refuses them. */
  readonly fencedNames = new Set<string>();
  private nextIdValue = 100;
  private readonly blocked = new Set<string>();
  net: NetworkConditions = normalNetwork;
  readonly witness = new WitnessStore();
  private nextWrite = 1;
  private readCtx = 0;
  /** forcedStarts: every --force-new-cluster, the recoveries' own and restarts while the mark was there. */
  readonly stats = { writes: 0, acked: 0, reads: 0, served: 0, elections: 0, failovers: 0, recoveries: 0, forcedStarts: 0, messages: 0 };
  readonly traceLines: string[] = [];
  stopped = false;
  lastAckAt = -1;

  constructor(seed: number, options: SimWorldOptions) {
    this.options = options;
    const root = new Random(seed);
    this.raftRng = root.fork('raft');
    this.netRng = root.fork('net');
    this.loadRng = root.fork('load');
  }

  // ----- events -----

  /** Runs `fn` `delay` ms from now; `kind` feeds the event digest. */
  schedule(delay: number, kind: number, fn: () => void): void {
    this.queue.push({ t: this.now + Math.max(0, Math.floor(delay)), seq: this.seq++, kind, fn });
  }

  /** Processes one event; false when the queue is empty. */
  step(): boolean {
    const e = this.queue.pop();
    if (!e) return false;
    this.now = e.t;
    this.steps++;
    this.digest.word(e.t);
    this.digest.word(e.kind);
    e.fn();
    this.invariants.afterStep(this);
    return true;
  }

  note(text: string): void {
    if (!this.options.trace) return;
    this.traceLines.push(`${(this.now / 1000).toFixed(3).padStart(8)}s ${text}`);
  }

  names(ids: readonly string[]): string {
    return ids.map((id) => this.nameOf(id)).join(',') || '-';
  }

  nameOf(id: string): string {
    return this.registry.get(id)?.name ?? this.pendingName.get(id) ?? `#${id}`;
  }

  /** The peer URL a member of this name has (a fence may name a member that never published its name by it). */
  peerUrlOf(name: string): string {
    return peerUrlOf(name);
  }

  runnerById(id: string): Runner | undefined {
    return this.byId.get(id);
  }

  publish(id: string): void {
    const info = this.registry.get(id);
    if (info) info.published = true;
  }

  // ----- network -----

  /** Blocks (or unblocks) the directed link a → b; endpoints are member names, operator identities or 'witness'. */
  setBlocked(a: string, b: string, blocked: boolean): void {
    if (blocked) this.blocked.add(`${a}>${b}`);
    else this.blocked.delete(`${a}>${b}`);
  }

  linkUp(a: string, b: string): boolean {
    return this.blocked.size === 0 || !this.blocked.has(`${a}>${b}`);
  }

  healNetwork(): void {
    this.blocked.clear();
    this.net = normalNetwork;
  }

  healNetworkConditions(): void {
    this.net = normalNetwork;
    this.note('peer messages are back to normal');
  }

  send(m: Msg): void {
    const fromName = this.nameOf(m.from);
    const toName = this.nameOf(m.to);
    this.stats.messages++;
    if (!this.linkUp(fromName, toName)) return;
    const net = this.net;
    if (net.dropP > 0 && this.netRng.chance(net.dropP)) return;
    const copies = net.dupP > 0 && this.netRng.chance(net.dupP) ? 2 : 1;
    for (let c = 0; c < copies; c++) {
      this.schedule(this.netRng.int(net.minDelayMs, net.maxDelayMs + 1), 2, () => {
        if (!this.linkUp(fromName, toName)) return;
        const r = this.byId.get(m.to);
        if (!r || !r.running || r.paused) return;
        r.step(m);
      });
    }
  }

  // ----- raft elections (atomic) -----

  campaign(c: Runner): void {
    c.lead = '';
    c.electionElapsed = 0;
    c.timeout = ELECTION_TICKS + this.raftRng.int(0, ELECTION_TICKS);
    const grants: Runner[] = [];
    let higher = 0;
    for (const id of c.config.voters) {
      if (id === c.id) continue;
      const v = this.byId.get(id);
      if (!v || !v.running || v.paused || !this.linkUp(c.name, v.name) || !this.linkUp(v.name, c.name)) continue;
      if (v.removed.has(c.id)) {
        // The (pre-)vote request is refused as coming from a removed member: etcd shuts the member down.
        c.kill(`exited: ${v.name} says it was removed from the cluster`);
        return;
      }
      if (v.term > c.term) higher = Math.max(higher, v.term);
      const inLease = v.lead !== '' && v.electionElapsed < ELECTION_TICKS;
      const upToDate = c.lastTerm > v.lastTerm || (c.lastTerm === v.lastTerm && c.last >= v.last);
      if (!inLease && upToDate && v.term < c.term + 1) grants.push(v);
    }
    if (higher > c.term) {
      c.becomeFollower(higher, '');
      return;
    }
    if (grants.length + 1 < Math.floor(c.config.voters.length / 2) + 1) return;
    this.stats.elections++;
    c.becomeFollower(c.term + 1, '');
    c.vote = c.id;
    for (const v of grants) {
      v.becomeFollower(c.term, '');
      v.vote = c.id;
    }
    c.becomeLeader();
  }

  // ----- clients -----

  clientWrite(): void {
    const candidates = [...this.runners.values()].filter((r) => r.running && !r.paused && r.isVoter());
    if (candidates.length === 0) return;
    const r = this.loadRng.pick(candidates);
    const write = this.nextWrite++;
    this.stats.writes++;
    if (r.role === 'leader') {
      r.waiters.set(write, this.now + REQUEST_TIMEOUT_MS);
      r.propose(write);
    } else if (r.lead !== '') {
      r.waiters.set(write, this.now + REQUEST_TIMEOUT_MS);
      this.send({ type: 'prop', from: r.id, to: r.lead, term: r.term, write });
    }
  }

  clientRead(): void {
    const leaders = [...this.runners.values()].filter((r) => r.running && !r.paused && r.role === 'leader');
    if (leaders.length === 0) return;
    this.stats.reads++;
    this.loadRng.pick(leaders).readIndex(this.now);
  }

  nextReadCtx(): number {
    return ++this.readCtx;
  }

  acknowledge(r: Runner, e: Entry): void {
    this.stats.acked++;
    this.lastAckAt = this.now;
    if (this.options.trace) this.note(`ack write w${e.write} at index ${e.index} (term ${e.term}) by ${r.name}`);
    this.invariants.onAck(this, r, { write: e.write, index: e.index, term: e.term, at: this.now, by: r.name });
  }

  serveRead(r: Runner, index: number, start: number): void {
    this.stats.served++;
    this.invariants.onRead(r, index, start);
  }

  // ----- the placement (what the operator's MemberPlacement does here) -----

  private newId(): string {
    this.nextIdValue += 1 + this.raftRng.int(0, 7);
    return String(this.nextIdValue);
  }

  private addRunner(name: string, id: string, config: Config): Runner {
    const r = new Runner(this, name, id, config);
    this.runners.set(name, r);
    this.byId.set(id, r);
    this.registry.set(id, { name, published: false });
    return r;
  }

  /** The members the placement runs, as listMembers reports them. */
  placed(): PlacedMember[] {
    const out: PlacedMember[] = [];
    for (const r of [...this.runners.values()].sort((a, b) => a.name.localeCompare(b.name))) {
      const p: PlacedMember = {
        name: r.name,
        clientUrl: r.clientUrl,
        peerUrl: r.peerUrl,
        state: r.fenced || !r.running ? 'failed' : 'running',
        since: new Date(EPOCH_MS + r.stateSince).toISOString(),
      };
      if (r.fenced) p.fenced = true;
      else {
        if (r.recoveredEpoch !== undefined) p.recoveredEpoch = r.recoveredEpoch;
        if (r.recovering) p.recovering = true;
      }
      out.push(p);
    }
    return out;
  }

  /** Starts a member that has never run: the founder (new cluster) or a joiner (existing). */
  startNew(name: string, state: 'new' | 'existing'): string | undefined {
    if (this.fencedNames.has(name)) return `member ${name} was fenced and never starts again`;
    const existing = this.runners.get(name);
    if (existing) return this.startExisting(name);
    if (state === 'new') {
      const id = this.newId();
      const config: Config = { voters: [id], learners: [] };
      const r = this.addRunner(name, id, config);
      r.log.push({ index: 1, term: 1, write: 0, conf: { type: 'bootstrap', id, config } });
      r.term = 1;
      r.commit = 1;
      r.durableCommit = 1;
      r.start();
      return undefined;
    }
    // Joining: etcd fetches the cluster from its peers and takes the id added for its peer URL.
    const peerUrl = peerUrlOf(name);
    for (const peer of this.runners.values()) {
      if (!peer.running || peer.paused || !this.linkUp(name, peer.name) || !this.linkUp(peer.name, name)) continue;
      const id = [...peer.config.voters, ...peer.config.learners].find((i) => this.registry.get(i)?.name === name || this.pendingPeer.get(i) === peerUrl);
      if (id === undefined || this.byId.has(id)) continue;
      const r = this.addRunner(name, id, peer.config);
      r.removed = new Set(peer.removed);
      r.start();
      return undefined;
    }
    const r = this.addRunner(name, `unjoined-${name}`, { voters: [], learners: [] });
    r.started = false;
    r.exitReason = 'could not join: no peer knows its peer URL';
    r.stateSince = this.now;
    this.note(`start ${name} fails: no reachable member has it in its member list`);
    return undefined;
  }

  /** A runner that exists: started again with its data (a fenced one refuses). */
  startExisting(name: string): string | undefined {
    const r = this.runners.get(name);
    if (!r) return `no runner ${name}`;
    if (r.fenced) return `member ${name} was fenced at ${r.fencedAt} and never starts again`;
    if (r.running) return undefined;
    if (this.now < r.hostDownUntil) return `the host of ${name} is down`;
    if (r.id.startsWith('unjoined-')) {
      // Its start failed before it had an identity: the placement starts it again as a joiner.
      this.runners.delete(name);
      this.byId.delete(r.id);
      this.registry.delete(r.id);
      return this.startNew(name, 'existing');
    }
    r.start();
    return undefined;
  }

  fence(name: string, epoch: number): void {
    this.fencedNames.add(name);
    const r = this.runners.get(name);
    this.note(`FENCE ${name} at witness epoch ${epoch}${r ? '' : ' (no runner)'}`);
    if (!r) return;
    if (!r.fenced) {
      r.fenced = true;
      r.fencedAt = this.now;
    }
    r.kill(`fenced at epoch ${epoch}`);
  }

  /**
   * Once per failover, whoever asks (nothing happens for a failoverEpoch the member was recovered for
   * already, or an older one; not with the recoverAgain mutation): kills it (as the local placement
   * does: a graceful stop, which would flush the commit index, can wait for seconds without quorum),
   * sets the forced-start mark and recoveredEpoch, and starts it (the guard commits its whole log, not
   * with naiveRecovery, and forces a new cluster).
   */
  recoverSurvivor(name: string, failoverEpoch: number): string | undefined {
    const r = this.runners.get(name);
    if (!r || r.id.startsWith('unjoined-')) return `cannot recover ${name}: it was never started here`;
    if (r.fenced) return `cannot recover ${name}: it was fenced`;
    if (!this.options.recoverAgain && r.recoveredEpoch !== undefined && r.recoveredEpoch >= failoverEpoch) {
      this.note(`${name} was recovered for failoverEpoch ${r.recoveredEpoch} already: nothing to do`);
      return undefined;
    }
    if (this.now < r.hostDownUntil) return `the host of ${name} is down`;
    this.invariants.onRecover(this, r, failoverEpoch);
    this.stats.recoveries++;
    r.kill(`recovering as the survivor of failover ${failoverEpoch}`);
    r.recoveredEpoch = failoverEpoch;
    r.recovering = true;
    r.start();
    return undefined;
  }

  /** The failover is over: the forced-start mark goes (idempotent); the member's next starts are plain. */
  finishRecovery(name: string): void {
    const r = this.runners.get(name);
    if (!r?.recovering) return;
    r.recovering = false;
    this.note(`${name}: the forced-start mark is removed (its next starts are plain ones)`);
  }

  deleteRunner(name: string): void {
    const r = this.runners.get(name);
    if (!r) return;
    r.kill('deleted');
    this.runners.delete(name);
    if (this.byId.get(r.id) === r) this.byId.delete(r.id);
    this.note(`delete runner ${name} and its data`);
  }

  // ----- etcd's API as an operator replica sees it -----

  /** A peer URL etcd was told in a member add (the member has not started: no name yet). */
  private readonly pendingPeer = new Map<string, string>();

  private reachable(op: string, r: Runner): boolean {
    return r.running && !r.paused && this.linkUp(op, r.name) && this.linkUp(r.name, op);
  }

  observe(op: string): Observation {
    const placed = this.placed();
    const endpoints = [...this.runners.values()].filter((r) => r.started || r.running).sort((a, b) => a.name.localeCompare(b.name));
    let latency = this.netRng.int(2, 12);
    let source: Runner | undefined;
    for (const r of endpoints) {
      if (this.reachable(op, r)) {
        source = r;
        break;
      }
      latency += OBSERVE_TIMEOUT_MS;
    }
    if (!source) return { etcd: undefined, placed, latencyMs: latency };
    const leaders = new Map<string, number>();
    let anyTimeout = false;
    const members: EtcdMemberView[] = [];
    const ids = [...source.config.voters, ...source.config.learners];
    for (const id of ids) {
      const info = this.registry.get(id);
      const name = info?.name ?? this.pendingName.get(id) ?? '';
      const peer = this.pendingPeer.get(id) ?? peerUrlOf(name);
      const view: EtcdMemberView = {
        id,
        name: info?.published === true ? info.name : '',
        peerUrls: [peer],
        clientUrls: info?.published === true ? [clientUrlOf(info.name)] : [],
        isLearner: source.config.learners.includes(id),
      };
      // The status call goes to the client URL: whatever runs there answers.
      const at = info?.published === true ? this.runners.get(info.name) : undefined;
      if (at && this.reachable(op, at)) {
        const hasLeader = at.lead !== '';
        if (hasLeader) leaders.set(at.lead, (leaders.get(at.lead) ?? 0) + 1);
        view.status = { revision: at.applied, version: '3.6.6', raftIndex: at.commit, hasLeader, dbSize: 1 };
      } else if (info?.published === true) {
        anyTimeout = true;
      }
      members.push(view);
    }
    if (anyTimeout) latency += OBSERVE_TIMEOUT_MS;
    const leaderId = [...leaders.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))[0]?.[0];
    return { etcd: { clusterId: '7', leaderId, members }, placed, latencyMs: latency };
  }

  private readonly pendingName = new Map<string, string>();

  /** The leader an API call reaches: through the view's leader URL if given, else the first endpoint that answers. */
  private apiLeader(op: string, leaderName: string | undefined): Runner | string {
    const first = leaderName !== undefined ? this.runners.get(leaderName) : [...this.runners.values()].sort((a, b) => a.name.localeCompare(b.name)).find((r) => this.reachable(op, r));
    if (!first || !this.reachable(op, first)) return 'context deadline exceeded';
    if (first.role === 'leader') return first;
    const leader = first.lead === '' ? undefined : this.byId.get(first.lead);
    if (!leader || leader.role !== 'leader' || !this.reachable(first.name, leader)) return 'etcdserver: no leader';
    return leader;
  }

  memberAddLearner(op: string, leaderName: string | undefined, name: string): EtcdApiResult {
    const leader = this.apiLeader(op, leaderName);
    if (typeof leader === 'string') return { ok: false, error: leader };
    if (leader.pendingConf > leader.applied) return { ok: false, error: 'etcdserver: unhealthy cluster (a configuration change is pending)' };
    if (leader.config.learners.length >= 1) return { ok: false, error: 'etcdserver: too many learner members in cluster' };
    const peerUrl = peerUrlOf(name);
    const all = [...leader.config.voters, ...leader.config.learners];
    if (all.some((id) => (this.pendingPeer.get(id) ?? peerUrlOf(this.registry.get(id)?.name ?? '')) === peerUrl)) return { ok: false, error: 'etcdserver: Peer URLs already exists' };
    const id = this.newId();
    this.pendingPeer.set(id, peerUrl);
    this.pendingName.set(id, name);
    const config: Config = { voters: leader.config.voters, learners: [...leader.config.learners, id] };
    const result = leader.proposeConf({ type: 'addLearner', id, config });
    this.note(`member add ${name} as learner id ${id} via ${leader.name}: ${result}`);
    return result === 'committed' ? { ok: true, id } : { ok: false, error: 'context deadline exceeded (the member add is not applied yet)' };
  }

  memberPromote(op: string, leaderName: string | undefined, id: string): EtcdApiResult {
    const leader = this.apiLeader(op, leaderName);
    if (typeof leader === 'string') return { ok: false, error: leader };
    if (!leader.config.learners.includes(id)) return { ok: false, error: 'etcdserver: can only promote a learner member' };
    if (leader.pendingConf > leader.applied) return { ok: false, error: 'etcdserver: unhealthy cluster (a configuration change is pending)' };
    // etcd's isLearnerReady: the learner's match is at least 90% of the leader's.
    const match = leader.progress.get(id)?.match ?? 0;
    if (match < leader.last * 0.9) return { ok: false, error: 'etcdserver: can only promote a learner member which is in sync with leader' };
    const config: Config = { voters: [...leader.config.voters, id], learners: leader.config.learners.filter((l) => l !== id) };
    const result = leader.proposeConf({ type: 'promote', id, config });
    this.note(`member promote ${this.nameOf(id)} via ${leader.name} (learner match ${match}, leader last ${leader.last}, commit ${leader.commit}): ${result}`);
    return result === 'committed' ? { ok: true, id } : { ok: false, error: 'context deadline exceeded (the promotion is not applied yet)' };
  }

  memberRemove(op: string, leaderName: string | undefined, id: string): EtcdApiResult {
    const leader = this.apiLeader(op, leaderName);
    if (typeof leader === 'string') return { ok: false, error: leader };
    if (![...leader.config.voters, ...leader.config.learners].includes(id)) return { ok: false, error: 'etcdserver: member not found' };
    if (leader.pendingConf > leader.applied) return { ok: false, error: 'etcdserver: unhealthy cluster (a configuration change is pending)' };
    const config: Config = { voters: leader.config.voters.filter((v) => v !== id), learners: leader.config.learners.filter((l) => l !== id) };
    const result = leader.proposeConf({ type: 'remove', id, config });
    this.note(`member remove ${this.nameOf(id)} via ${leader.name}: ${result}`);
    return result === 'committed' ? { ok: true, id } : { ok: false, error: 'context deadline exceeded (the removal is not applied yet)' };
  }

  // ----- the witness as an operator replica reaches it -----

  witnessRead(op: string): VersionedWitnessRecord | undefined {
    if (!this.witness.up || !this.linkUp(op, 'witness') || !this.linkUp('witness', op)) return undefined;
    return this.witness.read();
  }

  /** undefined: no answer (the write may still have been applied when only the answer was lost). */
  witnessWrite(op: string, expectedVersion: string, next: WitnessRecord): WitnessWriteResult | undefined {
    if (!this.witness.up || !this.linkUp(op, 'witness')) return undefined;
    const before = this.witness.record;
    const result = this.witness.compareAndSwap(expectedVersion, next);
    if (result.ok) {
      this.note(`WITNESS epoch ${next.epoch} by ${next.owner}/t${next.ownerTerm}: ${next.phase} members [${next.members.join(',')}]${next.survivor !== undefined ? ` survivor ${next.survivor} failoverEpoch ${next.failoverEpoch ?? '?'}` : ''} fenced [${next.fenced.join(',')}]`);
      this.invariants.onWitnessWrite(before, next);
      if (next.phase === 'failingOver' && before?.phase !== 'failingOver') this.stats.failovers++;
    } else {
      this.note(`witness refuses ${op}/t${next.ownerTerm} epoch ${next.epoch}: ${result.reason}`);
    }
    if (!this.linkUp('witness', op)) return undefined;
    return result;
  }

  // ----- liveness -----

  /** The pair serves: the record is paired with two members, both voters of a leader that serves them. */
  pairServes(): boolean {
    const record = this.witness.record;
    if (record?.phase !== 'paired' || record.members.length !== 2) return false;
    const rs = record.members.map((n) => this.runners.get(n));
    if (!rs.every((r) => r !== undefined && r.running && !r.paused && r.serving)) return false;
    const leader = rs.find((r) => r?.role === 'leader');
    if (!leader) return false;
    return rs.every((r) => r !== undefined && leader.config.voters.includes(r.id)) && leader.config.voters.length === 2;
  }
}
