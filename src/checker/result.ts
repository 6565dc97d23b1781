import type { KeyValue, Operation, Verdict, WatchEvent } from '../domain/index.ts';

export type { Verdict } from '../domain/index.ts';

/** A model state as shown in evidence and reports (keys sorted). */
export interface StateSummary {
  /** null in shared mode before any response showed the revision. */
  revision: number | null;
  compactRevision: number;
  kvs: KeyValue[];
  leases: string[];
}

export interface ViolationEvidence {
  /** Indices (into the history's operations) of the longest linearizable prefix found, in order. */
  prefix: number[];
  /** Operations that could not be placed next: the one whose return could not be explained, first. */
  unplaceable: number[];
  /** The candidate states after that prefix (bounded). */
  states: StateSummary[];
  /** Why the first unplaceable operation does not fit, against the first candidate state. */
  reason: string;
}

/** Where the revision-ordered path could not verify the order and the search decided instead. */
export interface SearchWindow {
  /** What the revision path could not place. */
  reason: string;
  /** The revision the search started from (its state pinned by the revision order); null: the whole history. */
  fromRevision: number | null;
  /** Operations the search took (placed after that revision, unplaced, or of unknown outcome). */
  operations: number;
  /**
   * Where the window closed: the search placed every operation up to this revision, one state was left
   * there, and the revision order resumed from it. Absent: the search ran to the end of the history.
   */
  toRevision?: number;
}

export interface LinearizabilityResult {
  verdict: Verdict;
  /**
   * How the order was found: `revision` (the order the revisions dictate, verified: revision.ts) or
   * `search` (linearize.ts: histories without revisions, or the window the revision path could not decide).
   */
  method?: 'revision' | 'search';
  searchWindow?: SearchWindow;
  /**
   * Every search window in history order, when the revision order resumed after one (closed windows carry
   * `toRevision`); `searchWindow` is then the largest of them.
   */
  searchWindows?: SearchWindow[];
  /** Operations in the history (all of them, including those not linearized such as stale reads). */
  operations: number;
  /** A linearization (indices into operations) when linearizable; unknown-outcome operations that
   *  were never applied are absent, as are definite errors and stale reads. */
  linearization?: number[];
  violation?: ViolationEvidence;
  /** Unknown-outcome writes resolved before the search by reads and watches that observed them. */
  patched?: { observed: number; neverApplied: number };
  /** Set when independent keys were checked separately (then no single linearization is given). */
  partitions?: number;
  /** Why the verdict is inconclusive. */
  inconclusive?: string;
  /** Stale (serializable or past-revision) reads that match no state they could have read. */
  staleReadViolations?: { operation: number; reason: string }[];
}

export type WatchProperty =
  | 'filtered'
  | 'ordered'
  | 'unique'
  | 'atomic'
  | 'bookmarkable'
  | 'reliable'
  | 'resumable'
  | 'isCreate'
  | 'prevKV';

export interface WatchViolation {
  property: WatchProperty;
  /** The watch stream id. */
  watch: number;
  message: string;
  events: WatchEvent[];
}

export interface CheckReport {
  verdict: Verdict;
  linearizability: LinearizabilityResult;
  watch: { checked: number; violations: WatchViolation[] };
  elapsedMs: number;
}

export type { Operation };
