/**
 * The run's faults: a seeded plan carried out by the fault executor while the traffic runs, each event
 * recorded (history file, metrics, the caller's onFault), each fault's time to writable tracked from the
 * operations that complete (recovery.ts), and after the run: every fault healed, the members recovered,
 * their HashKV compared.
 */
import type { FaultEvent, Operation } from '../domain/index.ts';
import { compactionRevision } from '../faults/driver.ts';
import { FaultExecutor } from '../faults/executor.ts';
import { planFaults } from '../faults/scheduler.ts';
import { logger } from '../log.ts';
import type { HistoryFileWriter } from '../probes/history-writer.ts';
import type { Clock } from '../probes/recorder.ts';
import { RecoveryTracker, summarizeRecoveries, type FaultRecovery } from './recovery.ts';
import type { RunSession } from './session.ts';
import type { RunTraffic } from './traffic.ts';
import { hashKvDiffers, type HashKvComparison, type RunResult } from './types.ts';

export class RunFaults {
  readonly events: FaultEvent[] = [];
  /** Names of the faults in place, by event id. */
  readonly active = new Map<number, string>();
  executor: FaultExecutor | undefined;
  private readonly session: RunSession;
  private readonly clock: Clock;
  private readonly counts = { planned: 0, injected: 0, failed: 0 };
  private skipped: string | undefined;
  private plan: ReturnType<typeof planFaults> = [];
  private running: Promise<void> | undefined;
  /** Fault to writable: faults are registered as the executor puts them in place, operations as they complete. */
  private readonly recoveries: RecoveryTracker;

  constructor(session: RunSession, clock: Clock) {
    this.session = session;
    this.clock = clock;
    this.recoveries = new RecoveryTracker(clock());
  }

  /** Plans the spec's faults (none without a member runtime to inject them through: the result says so). */
  makePlan(): void {
    const { spec, options } = this.session;
    if (!spec.faults || spec.faults.choices.length === 0) return;
    if (!options.runtime) this.skipped = 'no member runtime to inject faults through';
    else {
      this.plan = planFaults(spec.faults, { seed: spec.seed, runDurationMs: spec.durationMs, startDelayMs: 1000 });
      this.counts.planned = this.plan.length;
    }
  }

  /** A completed operation: the faults it shows writable again. */
  operation(op: Operation): void {
    for (const recovery of this.recoveries.operation(op)) this.reportRecovery(recovery);
  }

  /** Starts carrying out the plan; whatever happens, the session's close heals every fault. */
  start(traffic: RunTraffic, writer: HistoryFileWriter): void {
    const { session } = this;
    const { options, members, prefix, metrics, spec } = session;
    const { runtime } = options;
    if (runtime && this.plan.length > 0) {
      const triggerClient = traffic.recordingClient(session.spreadHosts, undefined);
      const pinned = new Map(members.map((m) => [m.name, traffic.recordingClient([m.endpoint], m.name)]));
      this.executor = new FaultExecutor({
        runtime,
        agentToken: options.agentToken,
        clock: this.clock,
        recoveryTimeoutMs: spec.faults?.recoveryTimeoutMs ?? 30_000,
        // Requests a fault needs go through recorded clients: the checker must see every write.
        triggers: {
          write: async (avoid) => {
            const through = avoid ? members.find((m) => !avoid.includes(m.name)) : undefined;
            const client = (through && pinned.get(through.name)) ?? triggerClient;
            await client.execute({ type: 'put', key: `${prefix}fault-trigger`, value: traffic.env.values.next() });
          },
          defragment: async (member) => {
            await (pinned.get(member) ?? triggerClient).execute({ type: 'defragment' });
          },
          compact: async (at) => {
            await triggerClient.execute({ type: 'compact', revision: compactionRevision(at, session.maxRevision) });
          },
        },
        onApplied: ({ id, fault, targets, time }) => this.recoveries.fault({ id, fault, targets, injectedAt: time }),
        onEvent: (event) => this.onEvent(event, writer),
      });
    }
    session.onClose(async () => {
      await this.executor?.healAll();
      if (this.executor) metrics.faultsPastTtl(this.executor.faultsPastTtl()); // the ticker has stopped: the last word
      this.executor?.close();
    });
    this.running = this.executor?.runPlan(this.plan, session.startedAt, session.signal).catch((error: unknown) => {
      logger.error('fault executor failed', { error: (error as Error).message });
    });
  }

  /** Waits for the executor to go through its plan (it stops with the session). */
  async finished(): Promise<void> {
    await this.running;
  }

  /**
   * Faults are healed: the members must come back and (unless spec.checks.hashKV is false) agree on their
   * data. Returns the HashKV comparison (absent when there were no faults or it is not checked).
   */
  async recover(): Promise<HashKvComparison | undefined> {
    const { executor, session } = this;
    if (!executor) return undefined;
    let hashKv: HashKvComparison | undefined;
    await executor.waitRecovery(session.spec.faults?.recoveryTimeoutMs ?? 30_000);
    if (session.spec.checks.hashKV) {
      hashKv = await executor.hashKvCheck();
      if (hashKvDiffers(hashKv)) {
        session.metrics.violation('hash_kv');
        logger.error('members disagree on their data (HashKV)', { detail: hashKv.detail });
      } else if (!hashKv.compared) {
        logger.warn('the members\' HashKV could not be compared: not every member answered', { detail: hashKv.detail });
      }
    }
    executor.close();
    return hashKv;
  }

  /** The result's faults. */
  result(): RunResult['faults'] {
    const faultRecoveryList = this.recoveries.results();
    return {
      ...this.counts,
      events: this.events,
      ...(this.skipped === undefined ? {} : { skipped: this.skipped }),
      recovery: { summary: summarizeRecoveries(faultRecoveryList), faults: faultRecoveryList },
    };
  }

  private onEvent(event: FaultEvent, writer: HistoryFileWriter): void {
    const { metrics, options } = this.session;
    if (event.phase === 'verified') {
      const recovery = this.recoveries.confirm(event.id);
      if (recovery) this.reportRecovery(recovery);
    } else if (event.phase === 'failed') this.recoveries.abandon(event.id);
    this.events.push(event);
    options.onFault?.(event);
    writer.writeFault(event);
    if (event.phase === 'inject') {
      this.counts.injected++;
      this.active.set(event.id, event.fault);
      const planned = this.plan.find((p) => p.fault === event.fault);
      metrics.faultInjected(event.fault, planned?.target ?? 'unknown');
    } else if (event.phase === 'heal' || event.phase === 'failed') {
      this.active.delete(event.id);
      if (event.phase === 'failed') {
        this.counts.failed++;
        metrics.faultFailed(event.fault);
      }
    }
    metrics.faultsActive(this.active.size);
  }

  private reportRecovery(recovery: FaultRecovery): void {
    if (recovery.writableAfterMs === undefined) return;
    this.session.metrics.faultWritable(recovery.fault, recovery.writableAfterMs / 1000);
    this.session.options.onFaultRecovery?.(recovery);
  }
}
