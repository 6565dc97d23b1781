/**
 * The run's traffic: recorded clients pinned to each member and spread over all of them, sharing one
 * rate limiter, each running the profile's seeded loop; and the maintenance (compaction, defragmentation)
 * the spec allows. Every request goes through the recorder: the probes produce the operations.
 */
import type { TrafficProfile } from '../domain/index.ts';
import { logger } from '../log.ts';
import { runCompactions, runDefragmentation } from '../probes/maintenance.ts';
import { RateLimiter } from '../probes/rate-limiter.ts';
import type { HistoryRecorder } from '../probes/recorder.ts';
import { RecordingClient, type Outcome } from '../probes/recording-client.ts';
import { KeyPool, newClientMemory, runClient, UniqueValues, type TrafficClient, type TrafficEnvironment } from '../probes/traffic.ts';
import { seededRandom } from '../random.ts';
import type { RunSession } from './session.ts';
import { lieAboutReads } from './self-test.ts';
import type { RunWatches } from './watches.ts';

const stoppedResult: Outcome = { kind: 'failed', error: 'run stopped' };

export class RunTraffic {
  readonly env: TrafficEnvironment;
  private readonly session: RunSession;
  private readonly recorder: HistoryRecorder;
  /** The self-test's member: reads through it lie (see self-test.ts). */
  private readonly lagging: string | undefined;
  private readonly limiter: RateLimiter;
  private readonly loops: Promise<void>[];
  private readonly maintenance: Promise<void>[] = [];

  /** Starts the clients' loops. */
  constructor(session: RunSession, recorder: HistoryRecorder, profile: TrafficProfile, watches: RunWatches, lagging: string | undefined) {
    this.session = session;
    this.recorder = recorder;
    this.lagging = lagging;
    const { spec, members, spreadHosts, prefix } = session;
    this.limiter = new RateLimiter({ target: spec.traffic.qps.target, burst: spec.traffic.qps.burst });
    session.metrics.target(spec.traffic.qps.target);
    const recordingClients: RecordingClient[] = [];
    for (const m of members) for (let i = 0; i < spec.traffic.clients.perMember; i++) recordingClients.push(this.recordingClient([m.endpoint], m.name));
    for (let i = 0; i < spec.traffic.clients.spread; i++) recordingClients.push(this.recordingClient(spreadHosts, undefined));
    this.env = {
      prefix,
      profile,
      keys: new KeyPool(prefix, profile.keys),
      values: new UniqueValues(profile.valueSize),
      leaseTtlSeconds: Math.ceil(spec.durationMs / 1000) + 600,
      watchFrom: (key, _end, startRevision) => watches.listWatch(key, startRevision),
    };
    const isStopped = (): boolean => session.stopped;
    this.loops = recordingClients.map((rc, i) => {
      const trafficClient: TrafficClient = {
        random: seededRandom(spec.seed * 1009 + i),
        memory: newClientMemory(session.initialRevision),
        execute: async (request) => {
          if (isStopped()) return stoppedResult;
          await this.limiter.acquire();
          if (isStopped()) return stoppedResult;
          return rc.execute(request);
        },
      };
      return runClient(this.env, trafficClient, isStopped);
    });
  }

  /** A recorded client to `hosts` (named `member` when pinned to one). */
  recordingClient(hosts: string[], member: string | undefined): RecordingClient {
    const { session } = this;
    return new RecordingClient(session.client(hosts), this.recorder, {
      timeoutMs: session.spec.traffic.requestTimeoutMs,
      memberNames: session.memberNames,
      ...(member === undefined ? {} : { member }),
      ...(member !== undefined && member === this.lagging ? { sendAs: lieAboutReads } : {}),
    });
  }

  /** Compaction and defragmentation while the traffic runs, when the spec (and the mode) allow them. */
  startMaintenance(): void {
    const { session } = this;
    const { spec, members, prefix } = session;
    const { compaction, defragment } = spec.traffic;
    const isStopped = (): boolean => session.stopped;
    const maintenanceAllowed = (rule: { allowShared: boolean }): boolean => spec.mode === 'exclusive' || rule.allowShared;
    if (compaction.enabled && maintenanceAllowed(compaction)) {
      this.maintenance.push(
        runCompactions({
          client: this.recordingClient(session.spreadHosts, undefined),
          compactKey: `${prefix}compact_rev_key`,
          values: this.env.values,
          intervalMs: compaction.intervalMs,
          stopped: isStopped,
          signal: session.signal,
          onCompacted: (revision) => logger.debug('compacted', { revision }),
        }),
      );
    }
    if (defragment.enabled && maintenanceAllowed(defragment)) {
      this.maintenance.push(
        runDefragmentation({
          clients: members.map((m) => this.recordingClient([m.endpoint], m.name)),
          intervalMs: defragment.intervalMs,
          stopped: isStopped,
          signal: session.signal,
        }),
      );
    }
  }

  /** Stops admitting requests (the session is stopped: in-flight ones end by their deadline). */
  stop(): void {
    this.limiter.close();
  }

  /** Waits for the clients' loops and the maintenance to end. */
  async finished(): Promise<void> {
    await Promise.all([...this.loops, ...this.maintenance]);
  }
}
