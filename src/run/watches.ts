/**
 * The run's watches: one probe per member (or one over all members), the clients' short list-then-watch
 * streams, and the reopened watches at past or future revisions (spec.watch.reopen). Their responses go
 * to the recording (file, live checker); the stream-local guarantees are checked here as they arrive.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Etcd3 } from 'etcd3';
import { LiveWatchChecker } from '../checker/index.ts';
import type { WatchResponse, WatchStream } from '../domain/index.ts';
import { logger } from '../log.ts';
import { onTimeout, pollUntil } from '../poll.ts';
import { seededRandom } from '../random.ts';
import type { Clock } from '../probes/recorder.ts';

import { WatchProbe } from '../probes/watch-probe.ts';
import { runWatchReopens } from '../probes/watch-reopen.ts';
import type { RunRecording } from './recording.ts';
import type { RunSession } from './session.ts';

export class RunWatches {
  /** liveViolations: stream-local watch violations seen while the run went (the first of each kind is logged). */
  readonly counts = { streams: 0, events: 0, resumes: 0, liveViolations: 0 };
  private readonly session: RunSession;
  private readonly recording: RunRecording;
  private readonly clock: Clock;
  private nextStream = 1;
  private readonly streams = new Map<number, WatchStream>();
  private readonly liveWatch = new LiveWatchChecker();
  private readonly reportedProperties = new Set<string>();
  private readonly probes: WatchProbe[] = [];
  private readonly listWatches = new Set<Promise<void>>();
  private reopens: Promise<number> = Promise.resolve(0);

  constructor(session: RunSession, recording: RunRecording, clock: Clock) {
    this.session = session;
    this.recording = recording;
    this.clock = clock;
  }

  /** The run's own watches, from the first revision of the history. */
  start(): void {
    const { spec, members, spreadHosts, prefix, initialRevision } = this.session;
    if (!spec.watch.enabled) return;
    const targets = spec.watch.perMember ? members.map((m) => ({ hosts: [m.endpoint], member: m.name })) : [{ hosts: spreadHosts, member: undefined }];
    for (const t of targets) this.probes.push(this.open(this.session.client(t.hosts), prefix, initialRevision + 1, t.member));
  }

  /** An informer's list-then-watch (a traffic client asked for it), kept short so streams do not pile up. */
  listWatch(key: string, startRevision: number): void {
    const { session, listWatches } = this;
    if (session.stopped || listWatches.size >= 4 || !session.spec.watch.enabled) return;
    const pending = (async () => {
      const probe = this.open(session.client(session.spreadHosts), key, startRevision, undefined);
      await sleep(1000, undefined, { signal: session.signal }).catch(() => undefined);
      await probe.close();
    })().catch((error: unknown) => {
      logger.warn('list-watch failed', { error: (error as Error).message });
    });
    listWatches.add(pending);
    void pending.finally(() => listWatches.delete(pending));
  }

  /** Extra short-lived watches at past or future revisions (spec.watch.reopen), from the run's seed. */
  startReopens(): void {
    const { session } = this;
    const { spec, members, prefix } = session;
    const reopen = spec.watch.enabled ? spec.watch.reopen : undefined;
    if (reopen === undefined) return;
    // One client per target, shared by its reopened watches (each watch is its own gRPC Watch call).
    const targets: { etcd: Etcd3; member: string | undefined }[] = spec.watch.perMember
      ? members.map((m) => ({ etcd: session.client([m.endpoint]), member: m.name }))
      : [{ etcd: session.client(session.spreadHosts), member: undefined }];
    this.reopens = runWatchReopens({
      spec: reopen,
      random: seededRandom(spec.seed * 7919 + 17),
      newestRevision: () => session.maxRevision,
      targets,
      open: (t, startRevision) => this.open(t.etcd, prefix, startRevision, t.member),
      signal: session.signal,
      maxOpen: 64,
    }).catch((error: unknown) => {
      logger.warn('reopened watches failed', { error: (error as Error).message });
      return 0;
    });
  }

  /** Waits for the short-lived watches (list-watches, reopened ones) once the traffic stopped. */
  async finished(): Promise<void> {
    await Promise.all(this.listWatches);
    await this.reopens;
  }

  /**
   * Lets the watches catch up with the last write before closing them (a progress notification or an
   * event at or past it), so the reliable/bookmarkable checks see the whole run.
   */
  async catchUp(): Promise<void> {
    const { session } = this;
    // Not caught up in time: the checks then report what the watches missed.
    await pollUntil(() => (this.probes.every((w) => w.lastRevision >= session.maxRevision) ? true : undefined), {
      timeoutMs: Math.max(5000, 5 * session.spec.watch.progressIntervalMs),
      intervalMs: 50,
      timeout: 'the watches to reach the last write',
    }).catch(onTimeout(false));
  }

  async close(): Promise<void> {
    for (const w of this.probes) {
      await w.close();
      this.counts.resumes += w.resumes;
    }
  }

  private open(etcd: Etcd3, watchPrefix: string, startRevision: number, member: string | undefined): WatchProbe {
    const { spec } = this.session;
    return WatchProbe.start(etcd, {
      prefix: watchPrefix,
      startRevision,
      ...(member === undefined ? {} : { member }),
      clock: this.clock,
      progressNotify: spec.watch.progressNotify,
      progressIntervalMs: spec.watch.progressNotify ? spec.watch.progressIntervalMs : 0,
      nextStreamId: () => this.nextStream++,
      onStreamOpened: (stream) => this.streamOpened(stream),
      onResponse: (id, response) => this.response(id, response),
    });
  }

  private streamOpened(stream: WatchStream): void {
    this.liveWatch.open(stream.id, stream.request);
    this.counts.streams++;
    this.streams.set(stream.id, stream);
    this.recording.streamOpened(stream);
  }

  private response(id: number, response: WatchResponse): void {
    const { session, counts } = this;
    const stream = this.streams.get(id);
    this.recording.watchResponse(id, response, stream);
    if (session.spec.checks.watch) {
      for (const violation of this.liveWatch.push(id, response)) {
        session.metrics.violation(`watch_${violation.property}`);
        session.noteViolation();
        counts.liveViolations++;
        if (!this.reportedProperties.has(violation.property)) {
          this.reportedProperties.add(violation.property);
          logger.error(`watch guarantee violated: ${violation.property}`, { run: session.run.metadata.name, watch: violation.watch, message: violation.message });
          session.options.onViolation?.(`watch_${violation.property}`, violation.message);
          if (session.spec.abortOnViolation) session.stopRun(`watch ${violation.property} violated (abortOnViolation)`);
        }
      }
    }
    counts.events += response.events.length;
    session.metrics.watchEvents(response.events.length);
    if (!this.recording.keepAll) {
      // Bounded memory when the history is not kept whole (emptied in place: splice would copy what it removes).
      const kept = this.streams.get(id)?.responses;
      if (kept !== undefined) kept.length = 0;
    }
  }
}
