/**
 * The simulation's safety checks. The world calls the hooks where the checked thing happens (a commit,
 * an acknowledgement, an election, a witness write, a recovery) and afterStep after every event; a
 * violation throws SimViolation, which the runner turns into a failing seed with a trace.
 *
 *   splitBrain    two members able to commit at once (each a leader whose config's majority accepts it)
 *   witnessEpoch  a successful witness write that is not exactly the next epoch; the epoch going back
 *   fencedServes  a fenced member that leads, acknowledges a write or serves a read after its fencing
 *   lostWrite     an acknowledged write missing from a new leader's log; a read that misses a write
 *                 acknowledged before it began; two members committing different entries at one index
 *   recovery      a recovery of a member that is not the record's survivor of that failoverEpoch, or a
 *                 second recovery for one failoverEpoch; a forced start (the recovery's own, or a
 *                 restart while the forced-start mark is there) that drops a member never fenced (a
 *                 replacement: the mark outlived its failover)
 *   liveness      (run.ts) after the faults stop, the pair does not serve again in time
 */
import type { WitnessRecord } from '../../src/domain/witness.ts';
import type { AckedWrite, Entry, Runner, World } from './world.ts';

export type InvariantName = 'splitBrain' | 'witnessEpoch' | 'fencedServes' | 'lostWrite' | 'recovery' | 'liveness';

export class SimViolation extends Error {
  override name = 'SimViolation';
  readonly invariant: InvariantName;

  constructor(invariant: InvariantName, message: string) {
    super(`${invariant}: ${message}`);
    this.invariant = invariant;
  }
}

const sameEntry = (a: Entry, b: Entry): boolean => a === b || (a.term === b.term && a.write === b.write && a.conf?.type === b.conf?.type && a.conf?.id === b.conf?.id);

function describeEntry(world: World, e: Entry | undefined): string {
  if (!e) return 'nothing';
  if (e.write !== 0) return `write w${e.write} (term ${e.term})`;
  if (e.conf) return `conf ${e.conf.type} ${world.nameOf(e.conf.id)} (term ${e.term})`;
  return `no-op (term ${e.term})`;
}

export class Invariants {
  /** The committed log as any member committed it: index → entry. */
  private readonly canon: (Entry | undefined)[] = [];
  /** Acknowledged writes in acknowledgement order, with the highest index acknowledged so far. */
  readonly acked: AckedWrite[] = [];
  private readonly ackedMaxIndex: number[] = [];
  private maxEpoch = 0;
  private readonly recoveries = new Map<number, string>();

  onCommit(world: World, r: Runner, from: number, to: number): void {
    for (let i = from + 1; i <= to; i++) {
      const e = r.log[i - 1];
      if (!e) throw new SimViolation('lostWrite', `${r.name} commits index ${i} beyond its log (${r.last})`);
      const c = this.canon[i];
      if (c === undefined) this.canon[i] = e;
      else if (!sameEntry(c, e)) {
        throw new SimViolation('lostWrite', `committed logs diverge at index ${i}: ${r.name} commits ${describeEntry(world, e)} where ${describeEntry(world, c)} was committed`);
      }
    }
  }

  onAck(world: World, r: Runner, ack: AckedWrite): void {
    if (r.fenced) throw new SimViolation('fencedServes', `fenced ${r.name} acknowledges write w${ack.write}`);
    const c = this.canon[ack.index];
    if (c?.write !== ack.write) throw new SimViolation('lostWrite', `w${ack.write} acknowledged at index ${ack.index}, where ${describeEntry(world, c)} is committed`);
    this.acked.push(ack);
    this.ackedMaxIndex.push(Math.max(ack.index, this.ackedMaxIndex.at(-1) ?? 0));
  }

  onLeader(world: World, r: Runner): void {
    if (r.fenced) throw new SimViolation('fencedServes', `fenced ${r.name} becomes leader at term ${r.term}`);
    for (const a of this.acked) {
      const e = r.log[a.index - 1];
      if (e?.write !== a.write) {
        throw new SimViolation(
          'lostWrite',
          `acknowledged write w${a.write} (index ${a.index}, acknowledged by ${a.by} at ${(a.at / 1000).toFixed(3)}s) is not in the log of the new leader ${r.name}: it has ${describeEntry(world, e)} there (log ${r.last})`,
        );
      }
    }
  }

  /** A linearizable read at `index` that began at `start` must see every write acknowledged before it. */
  onRead(r: Runner, index: number, start: number): void {
    if (r.fenced) throw new SimViolation('fencedServes', `fenced ${r.name} serves a read`);
    let lo = 0;
    let hi = this.acked.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.acked[mid]!.at < start) lo = mid + 1;
      else hi = mid;
    }
    const needed = lo === 0 ? 0 : this.ackedMaxIndex[lo - 1]!;
    if (needed > index) throw new SimViolation('lostWrite', `${r.name} serves a read at index ${index} that misses a write acknowledged at index ${needed} before the read began`);
  }

  onRecover(world: World, r: Runner, failoverEpoch: number): void {
    const record = world.witness.record;
    if (record?.phase !== 'failingOver' || record.survivor !== r.name || record.failoverEpoch !== failoverEpoch) {
      const what = record ? `epoch ${record.epoch} ${record.phase}${record.survivor !== undefined ? ` survivor ${record.survivor} failoverEpoch ${record.failoverEpoch ?? '?'}` : ''}` : 'no record';
      throw new SimViolation('recovery', `${r.name} is recovered for failoverEpoch ${failoverEpoch}, but the witness says ${what}`);
    }
    const before = this.recoveries.get(failoverEpoch);
    if (before !== undefined) throw new SimViolation('recovery', `${r.name} is recovered a second time for failoverEpoch ${failoverEpoch}`);
    this.recoveries.set(failoverEpoch, r.name);
  }

  /** `others`: the ids a --force-new-cluster of `r` removes from its config (only fenced members may be among them). */
  onForcedStart(world: World, r: Runner, others: readonly string[]): void {
    const dropped = others.map((id) => world.nameOf(id)).filter((name) => !world.fencedNames.has(name) && !world.fencedNames.has(world.peerUrlOf(name)));
    if (dropped.length > 0) throw new SimViolation('recovery', `a forced start of ${r.name} drops ${dropped.join(', ')}, never fenced`);
  }

  onWitnessWrite(before: WitnessRecord | undefined, next: WitnessRecord): void {
    const expected = (before?.epoch ?? 0) + 1;
    if (next.epoch !== expected) throw new SimViolation('witnessEpoch', `the witness accepted epoch ${next.epoch} over epoch ${before?.epoch ?? 0}`);
    this.maxEpoch = next.epoch;
  }

  afterStep(world: World): void {
    const epoch = world.witness.record?.epoch ?? 0;
    if (epoch < this.maxEpoch) throw new SimViolation('witnessEpoch', `the witness epoch went back from ${this.maxEpoch} to ${epoch}`);
    let able: Runner | undefined;
    for (const r of world.runners.values()) {
      if (r.role !== 'leader' || !r.running || r.paused || !this.ableToCommit(world, r)) continue;
      if (able) {
        throw new SimViolation(
          'splitBrain',
          `${able.name} (term ${able.term}, voters ${world.names(able.config.voters)}) and ${r.name} (term ${r.term}, voters ${world.names(r.config.voters)}) can both commit`,
        );
      }
      able = r;
    }
  }

  /** A leader a majority of whose config's voters accept its messages now. */
  private ableToCommit(world: World, r: Runner): boolean {
    let n = 0;
    for (const id of r.config.voters) {
      if (id === r.id) {
        n++;
        continue;
      }
      const v = world.runnerById(id);
      if (!v || !v.running || v.paused || v.term > r.term || v.removed.has(r.id)) continue;
      if (!world.linkUp(r.name, v.name) || !world.linkUp(v.name, r.name)) continue;
      n++;
    }
    return n >= Math.floor(r.config.voters.length / 2) + 1;
  }
}
