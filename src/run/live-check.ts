/**
 * The live check: the checker worker (checker-worker.ts) the recording feeds, and what the run does
 * with its findings as they come (the first violation is logged, counted, reported, and may stop the run).
 *
 * The search runs in a worker thread: this thread also renews the operator's Lease and reconciles. Its
 * verdict comes back as a message, and check() runs then.
 */
import { logger } from '../log.ts';
import { LiveCheckerWorker } from './checker-worker.ts';
import type { RunSession } from './session.ts';

export class LiveCheck {
  readonly worker: LiveCheckerWorker;
  /** The worst p99 lag any progress interval saw, and the most operations held for the watch at once. */
  worstLagP99Ms = 0;
  peakWaitingForWatch = 0;
  /** Whether the live checks reported the linearizability violation (the offline check then does not count it again). */
  violationReported = false;
  private checkerFailureReported = false;
  private readonly session: RunSession;

  constructor(session: RunSession, resolveWindowMs: number) {
    this.session = session;
    const { spec, prefix, initialRevision } = session;
    this.worker = new LiveCheckerWorker({ mode: spec.mode, prefix, initialRevision, resolveWindowMs, watchEventsCarryLeases: true, onUpdate: () => this.check() });
  }

  /** Acts on what the worker found since the last call (each finding once). */
  check(): void {
    const { session, worker: live } = this;
    const name = session.run.metadata.name;
    if (!this.violationReported && live.verdict === 'violation') {
      this.violationReported = true;
      session.noteViolation();
      session.metrics.violation('linearizability');
      logger.error('linearizability violation', { run: name, reason: live.violation?.reason });
      session.options.onViolation?.('linearizability', live.violation?.reason ?? 'not linearizable');
      if (session.spec.abortOnViolation) session.stopRun('violation found (abortOnViolation)');
    }
    if (!this.checkerFailureReported && live.failed !== undefined) {
      this.checkerFailureReported = true;
      logger.error('the live checker stopped: the offline check at the end still decides', { run: name, reason: live.failed });
    }
  }
}
