/**
 * The run engine: probes drive a cluster under a RobustnessRun spec, every operation and watch response
 * is recorded (to the history files and to the live checker), metrics and progress follow, and at the
 * end the full history is re-checked offline for the report. Nothing here knows whether the members are
 * local processes or pods: the caller passes their endpoints (see MemberRuntime).
 *
 * Data flows one way: clients -> recorder -> {history file, live checker, metrics}; watch probes ->
 * {history file, live checker}; progress and the final verdict are read from the checker.
 *
 * executeRun is the run as a session in steps (like etcd's tests/robustness runScenario); each step is
 * a module of this folder, sharing the RunSession (session.ts) that owns the run's resources:
 *   types.ts       the public types (re-exported here); cluster.ts: admin requests outside the history
 *   recording.ts   the recorder's sink: history file, kept history, counters, the live check (live-check.ts)
 *   watches.ts     watch probes, list-watches, reopened watches, the stream-local checks
 *   self-test.ts   spec.selfTest: a lagging member whose reads lie
 *   traffic.ts     the recorded clients, the rate limiter, compaction and defragmentation
 *   faults.ts      the fault plan, the executor, time to writable, recovery and HashKV
 *   progress-ticker.ts  progress, QPS floor and metrics every interval
 *   verdict.ts     the offline check, the final verdict and the result
 *
 * The linearizability search, live and offline, runs in worker threads (checker-worker.ts): this thread
 * is the operator's, which must stay free to renew its Lease, reconcile and answer probes while the
 * search grinds (a two-node failover's unknown outcomes once held it for seconds).
 */
import { resolveProfile } from '../probes/profiles.ts';
import { HistoryRecorder } from '../probes/recorder.ts';
import { RunFaults } from './faults.ts';
import { ProgressTicker } from './progress-ticker.ts';
import { RunRecording } from './recording.ts';
import { startSelfTest } from './self-test.ts';
import { RunSession } from './session.ts';
import { RunTraffic } from './traffic.ts';
import type { RunOptions, RunResult } from './types.ts';
import { checkOffline, runResult } from './verdict.ts';
import { RunWatches } from './watches.ts';

export { ClusterUnreachableError } from './session.ts';
export type { OperationCounts, RunOptions, RunProgress, RunResult } from './types.ts';

/** Drives and checks one run; returns when the run has stopped and its history has been checked. */
export async function executeRun(options: RunOptions): Promise<RunResult> {
  const session = new RunSession(options);
  try {
    // Start: a clear prefix, the recording (file, live checker), watches, faults planned, the self-test, traffic.
    await session.connect();
    const profile = resolveProfile(session.spec.traffic);
    const recorder = new HistoryRecorder({ keep: false, ...(options.clock ? { clock: options.clock } : {}) });
    const faults = new RunFaults(session, recorder.clock);
    const recording = new RunRecording(session, recorder, profile.name, faults);
    const watches = new RunWatches(session, recording, recorder.clock);
    watches.start();
    faults.makePlan();
    const selfTest = await startSelfTest(session);
    // The achieved rate is over the traffic's own time: connecting, watches and the self-test before it,
    // and the faults' and watches' ends after it, would make a short run on a loaded machine look undriven.
    const trafficStartedAt = performance.now();
    const traffic = new RunTraffic(session, recorder, profile, watches, selfTest.lagging);
    faults.start(traffic, recording.writer);
    traffic.startMaintenance();
    watches.startReopens();
    const ticker = new ProgressTicker(session, recording, watches, faults);

    // Run for the spec's duration (or until stopped), then stop: no new requests; in-flight ones end by their deadline.
    await session.runForDuration();
    traffic.stop();
    session.phase('stopping traffic');
    await traffic.finished();
    const trafficMs = performance.now() - trafficStartedAt;
    await faults.finished();
    session.phase('traffic stopped');
    // Heal the self-test's failpoint before waiting on the cluster for anything else.
    if (selfTest.heal) await selfTest.heal();
    session.phase('waiting for watches');
    await watches.finished();
    session.metrics.active(false);

    // Settle: watches catch up, faults' members recover (HashKV), watches close, the live check finishes.
    await watches.catchUp();
    const hashKv = await faults.recover();
    session.phase('closing watches');
    await watches.close();
    const liveVerdict = await recording.live.worker.finish();
    ticker.tick(); // after finish(): the last progress shows the final live state
    const liveStats = await recording.closeLive();

    // Clean up the run's keys and leases, check the whole history offline, decide.
    ticker.stop();
    session.phase('cleaning up');
    await session.cleanUp(recording.leases);
    const report = await checkOffline(session, recording);
    return runResult({ session, recording, watches, faults, ticker, liveVerdict, liveStats, report, hashKv, trafficMs, selfTest: selfTest.description });
  } finally {
    await session.close();
  }
}
