/**
 * The streaming check's replay (stream.ts pass 3): settled prefixes replayed as the search hands them
 * over, stale reads checked against the recent states kept. Separate from the passes themselves: it
 * holds state across a pass and is the only part of the streaming check that keeps model states.
 */
import type { Operation } from '../domain/index.ts';
import { Replayer } from './check.ts';
import type { ModelOptions, ModelState } from './model-state.ts';
import { addStaleReadFinding, appliedByChoice, staleReadProblem, type StaleReadProblems } from './stale-reads.ts';

/** A stale read waiting for the first linearized operation called after it returned. */
interface PendingRead {
  index: number;
  op: Operation;
}

/** Replays settled prefixes as the engine hands them over; checks stale reads against recent states. */
export class StreamReplay {
  readonly replayer: Replayer;
  private readonly opts: ModelOptions;
  /** Recent distinct states, oldest first (the initial state first until it is dropped). */
  private states: ModelState[];
  private dropped = false;
  private readonly maxStates: number;
  private readonly keepStates: boolean;
  /** Sorted by return time. */
  private pending: PendingRead[] = [];
  private pendingHead = 0;
  private maxCall = -Infinity;
  /** Stale reads that match no state: certain ones, and the first whose mismatch may be the linearization's choice for unresolved writes. */
  readonly stale: StaleReadProblems = { problems: [], uncertain: undefined };
  tooOld: string | undefined;
  /** states[0..certainStates) follow from acknowledged (or resolved) operations only. */
  private certainStates = Infinity;
  /** The earliest call of an unknown-outcome write left unresolved (firstUnresolvedCall). */
  private readonly unresolvedFrom: number;

  constructor(opts: ModelOptions & { initialRevision: number }, keepCommitted: boolean, keepStates: boolean, maxStates: number, unresolvedFrom: number) {
    this.opts = opts;
    this.unresolvedFrom = unresolvedFrom;
    this.replayer = new Replayer(opts, keepCommitted);
    this.keepStates = keepStates;
    this.maxStates = maxStates;
    this.states = keepStates ? [this.replayer.state] : [];
  }

  staleRead(index: number, op: Operation): void {
    const read = { index, op };
    let i = this.pending.length;
    while (i > this.pendingHead && this.pending[i - 1]!.op.return! > op.return!) i--;
    this.pending.splice(i, 0, read);
  }

  apply(op: Operation, index: number): void {
    if (op.call > this.maxCall) {
      this.maxCall = op.call;
      // Reads that returned before this call: their visible states end here.
      while (this.pendingHead < this.pending.length && this.pending[this.pendingHead]!.op.return! < op.call) this.check(this.pending[this.pendingHead++]!);
      if (this.pendingHead > 1024 && this.pendingHead * 2 > this.pending.length) {
        this.pending = this.pending.slice(this.pendingHead);
        this.pendingHead = 0;
      }
    }
    // A read the linearization placed changes nothing in exclusive mode (step gives back the same state,
    // and no event): stepping it again would only repeat its check, most of a replay's cost.
    if (this.opts.mode === 'exclusive' && op.request.type === 'range' && op.response !== undefined) return;
    const before = this.replayer.state;
    const state = this.replayer.apply(op, index);
    if (!this.keepStates || state === before) return;
    this.states.push(state);
    if (this.certainStates === Infinity && appliedByChoice(op)) this.certainStates = this.states.length - 1;
    if (this.states.length > 2 * this.maxStates) {
      const drop = this.states.length - this.maxStates;
      this.states = this.states.slice(drop);
      if (this.certainStates !== Infinity) this.certainStates = Math.max(0, this.certainStates - drop);
      this.dropped = true;
    }
  }

  /** After the whole linearization: the reads still waiting could read any state. */
  finish(): void {
    while (this.pendingHead < this.pending.length) this.check(this.pending[this.pendingHead++]!);
    this.stale.problems.sort((a, b) => a.operation - b.operation);
  }

  private check(read: PendingRead): void {
    const certainty = { certainStates: this.certainStates, unresolvedBefore: this.unresolvedFrom < read.op.return! };
    const finding = staleReadProblem(read.op, this.states, this.states.length, this.opts, certainty);
    if (finding.reason !== undefined && finding.exhausted && this.dropped) {
      this.tooOld ??= `stale read (operation ${read.index}) may have read a state older than the ${this.maxStates} kept for stale reads`;
      return;
    }
    addStaleReadFinding(this.stale, read.index, finding);
  }
}
