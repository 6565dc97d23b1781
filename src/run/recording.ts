/**
 * The run's recording: every operation and watch response the probes produce goes to the history file,
 * the history kept in memory for the offline check (up to a limit), the counters and metrics, and the
 * live checker. Data flows one way: probes -> recording -> {file, memory, metrics, live check}.
 */
import { defaultResolveWindowMs } from '../checker/index.ts';
import type { LiveStats } from '../checker/index.ts';
import type { History, HistoryMeta, Operation, WatchResponse, WatchStream } from '../domain/index.ts';
import { isErrorResponse, isWriteRequest } from '../domain/index.ts';
import { logger } from '../log.ts';
import { HistoryFileWriter } from '../probes/history-writer.ts';
import type { HistoryRecorder } from '../probes/recorder.ts';
import { LiveCheck } from './live-check.ts';
import type { RunSession } from './session.ts';
import type { OperationCounts } from './types.ts';

const sec = (ns: number): number => ns / 1e9;

export class Counters {
  readonly total: OperationCounts = { ok: 0, failed: 0, unknown: 0, byType: {} };
  intervalOk = 0;
  intervalAll = 0;

  add(type: string, outcome: 'ok' | 'failed' | 'unknown'): void {
    this.total[outcome]++;
    const t = (this.total.byType[type] ??= { ok: 0, failed: 0, unknown: 0 });
    t[outcome]++;
    this.intervalAll++;
    if (outcome === 'ok') this.intervalOk++;
  }

  get operations(): number {
    return this.total.ok + this.total.failed + this.total.unknown;
  }
}

function outcomeOf(op: Operation): 'ok' | 'failed' | 'unknown' {
  if (op.return === null) return isWriteRequest(op.request) ? 'unknown' : 'failed';
  return op.response && isErrorResponse(op.response) ? 'failed' : 'ok';
}

/** Who else hears of each completed operation (the faults' time-to-writable tracker). */
export interface OperationListener {
  operation(op: Operation): void;
}

export class RunRecording {
  readonly writer: HistoryFileWriter;
  readonly history: History;
  readonly live: LiveCheck;
  readonly counters = new Counters();
  /** The leases the run granted (revoked at the end). */
  readonly leases = new Set<string>();
  /** False once the history outgrew keepOperations: memory stays bounded and the offline check is skipped. */
  keepAll = true;
  private readonly session: RunSession;

  constructor(session: RunSession, recorder: HistoryRecorder, profileName: string, listener: OperationListener) {
    this.session = session;
    const { spec, options, metrics } = session;
    const meta: HistoryMeta = {
      kind: 'meta',
      seed: spec.seed,
      cluster: options.clusterName,
      profile: profileName,
      startTime: session.started.toISOString(),
      prefix: session.prefix,
      mode: spec.mode,
    };
    if (spec.mode === 'exclusive') meta.initialRevision = session.initialRevision;
    const writer = HistoryFileWriter.open(options.historyDir);
    this.writer = writer;
    session.onClose(() => {
      writer.close();
    });
    writer.writeMeta(meta);
    const keepLimit = options.keepOperations ?? 2_000_000;
    const history: History = { meta, operations: [], watches: [] };
    this.history = history;
    // A write held by a paused or partitioned member can take effect as late as the fault lasts: the
    // live checker must wait that long for an observation before treating the write as unobserved.
    const resolveWindowMs = Math.max(defaultResolveWindowMs, (spec.faults?.durationMs.max ?? 0) + 5000);
    const live = new LiveCheck(session, resolveWindowMs);
    this.live = live;
    session.onClose(() => live.worker.close());

    // Each operation's invocation is written when it is sent, so a crash of this process leaves the writes in
    // flight in the history (as unknown outcomes) even when a watch already delivered them. The live checker
    // and the counters take each operation once, when it completes.
    recorder.onInvocation((invocation) => {
      writer.writeInvoke(invocation);
    });
    recorder.onOperation((op) => {
      // The file's line is the live checker's payload too: each operation is encoded once.
      const line = writer.writeOperation(op);
      if (this.keepAll) {
        if (history.operations.length < keepLimit) history.operations.push(op);
        else {
          this.keepAll = false;
          history.operations.length = 0;
          logger.warn('history too long to keep in memory: the final offline check is skipped', { limit: keepLimit });
        }
      }
      const outcome = outcomeOf(op);
      this.counters.add(op.request.type, outcome);
      metrics.operation(op.request.type, outcome, op.return === null ? undefined : sec(op.return - op.call));
      if (op.response && !isErrorResponse(op.response) && op.response.revision !== undefined) session.maxRevision = Math.max(session.maxRevision, op.response.revision);
      if (op.request.type === 'leaseGrant') this.leases.add(op.request.id);
      live.worker.push(op, line);
      live.worker.advance(recorder.watermark());
      listener.operation(op);
    });
  }

  /** A watch stream opened: into the file and the kept history. */
  streamOpened(stream: WatchStream): void {
    this.writer.openWatch(stream);
    if (this.keepAll) this.history.watches.push(stream);
  }

  /** A watch response: into the file, and its line to the live checker. */
  watchResponse(id: number, response: WatchResponse, stream: WatchStream | undefined): void {
    const line = this.writer.writeWatchResponse(id, response);
    this.live.worker.pushWatchResponse(response, stream === undefined ? undefined : { id, request: stream.request }, line);
  }

  /** After the live check finished: acts on its last findings, frees its memory and closes the file; its last stats. */
  async closeLive(): Promise<LiveStats> {
    this.live.check();
    const stats = this.live.worker.stats();
    await this.live.worker.close(); // its memory is free before the offline check starts
    this.writer.close();
    return stats;
  }
}
