/**
 * What callers of the linearizability search (linearize.ts) pass and catch: the engine's options, the
 * error that ends a search as inconclusive, and a violation's shape. Separate so the offline check and
 * the live checker can build options and recognize the error without the engine's internals.
 */
import type { ModelOptions, ModelState } from './model-state.ts';
import type { ViolationEvidence } from './result.ts';

export interface EngineOptions extends ModelOptions {
  initialRevision: number;
  /** Keep the path of each configuration (offline evidence and linearization); off for live streams. */
  trackPaths: boolean;
  /** Unknown-outcome operations are retired this long (history time units, ns) after their call. */
  unknownHorizon: number;
  /** More configurations than this in the frontier makes the verdict inconclusive. */
  maxFrontier: number;
  /** Wall-clock deadline (Date.now() ms) after which the search gives up as inconclusive. */
  deadline: number;
  /** Start from this state instead of the empty store (a search window after the revision path, revision.ts). */
  initialState?: ModelState;
  /** Search as the beam from the start (see the header; tests compare it with the exact search). */
  beam?: boolean;
}

export class InconclusiveError extends Error {
  override name = 'InconclusiveError';
}

export interface EngineViolation {
  evidence: ViolationEvidence;
}
