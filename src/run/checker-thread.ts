/**
 * The worker thread behind checker-worker.ts: either the live checker, fed batches of the engine's calls
 * in their order (reporting its state back), or one offline check of a whole history. Started only by
 * checker-worker.ts, which passes the job as workerData.
 */
import { isMainThread, parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { checkHistory, checkHistoryStream, HistoryChangedError, HistoryFormatError, LiveChecker, type CheckReport, type LiveCheckerOptions, type LiveStats, type Verdict } from '../checker/index.ts';
import { NotAFileError } from '../probes/history-line-reader.ts';
import { HistoryDirectoryError } from '../probes/history-segments.ts';
import { historySource } from '../probes/history-source.ts';
import { decodeLiveBatch, epochMs, type CheckerThreadData, type CheckSource, type FromCheckerThread, type LiveCall, type ToLiveThread } from './checker-worker.ts';
import type { CheckOptions } from '../checker/index.ts';
import { percentilesOf } from '../percentiles.ts';

/**
 * Other state than a new verdict goes back at most this often. Each report computes the lag percentiles
 * (two sorts of up to 16k values, a few ms of this thread each time), and the engine reads
 * them once a progress tick (1 s by default), so four a second are plenty.
 */
const statsIntervalMs = 250;
const queueWindow = 16_384;

function post(port: MessagePort, message: FromCheckerThread): void {
  port.postMessage(message);
}

function runLive(port: MessagePort, options: LiveCheckerOptions): void {
  const live = new LiveChecker(options);
  // Time from the engine's push to this thread's: the checker's own lag starts only at its push.
  const queued = new Float64Array(queueWindow);
  let queuedCount = 0;
  let reported: Verdict = live.verdict;
  let failed = false;
  let lastPost = 0;
  let timer: NodeJS.Timeout | undefined;

  /**
   * The checker's lag percentiles plus those of the time operations waited to reach it: an upper
   * estimate of the time from an operation's recording to its verdict.
   */
  const stats = (): LiveStats => {
    const own = live.stats();
    const n = Math.min(queuedCount, queueWindow);
    if (n === 0 || own.processed === 0) return own;
    // Selected, not sorted (src/percentiles.ts): this runs up to four times a second on up to 16k values.
    const { p50, p99, max } = percentilesOf(queued, n);
    return { ...own, lagP50Ms: own.lagP50Ms + p50, lagP99Ms: own.lagP99Ms + p99, lagMaxMs: own.lagMaxMs + max };
  };
  const report = (final: boolean): void => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    lastPost = performance.now();
    reported = live.verdict;
    post(port, { type: 'state', final, state: { verdict: live.verdict, violation: live.violation, inconclusiveReason: live.inconclusiveReason, stats: stats() } });
  };
  const reportSoon = (): void => {
    timer ??= setTimeout(() => report(false), Math.max(0, statsIntervalMs - (performance.now() - lastPost)));
  };
  const apply = (item: LiveCall): void => {
    switch (item.kind) {
      case 'op':
        queued[queuedCount++ % queueWindow] = Math.max(0, epochMs() - item.at);
        live.push(item.op);
        break;
      case 'advance':
        live.advance(item.watermark);
        break;
      case 'watch':
        live.pushWatchResponse(item.response, item.stream);
        break;
    }
  };

  port.on('message', (message: ToLiveThread) => {
    if (failed) return;
    try {
      if (message.type === 'batch') {
        for (const item of decodeLiveBatch(message)) {
          apply(item);
          // A new verdict (the first violation above all) goes back at once, not at the end of the batch.
          if (live.verdict !== reported) report(false);
        }
        reportSoon();
      } else {
        live.finish();
        report(true);
      }
    } catch (error) {
      failed = true;
      if (timer) clearTimeout(timer);
      post(port, { type: 'failed', message: error instanceof Error ? error.message : String(error) });
    }
  });
}

/** A directory is checked as it streams from disk (memory bounded by the live window, not the run's length). */
function runCheck(port: MessagePort, source: CheckSource, options: CheckOptions): void {
  let report: CheckReport;
  try {
    if ('dir' in source) {
      // The report gets the whole linearization (4-8 bytes an operation) for its timeline's step numbers.
      const { verdict, linearizability, watch, elapsedMs } = checkHistoryStream(historySource(source.dir), { ...options, keepLinearization: true });
      report = { verdict, linearizability, watch, elapsedMs };
    } else report = checkHistory(source.history, options);
  } catch (error) {
    const { name, message } = error instanceof Error ? error : new Error(String(error));
    const read = error instanceof HistoryFormatError || error instanceof HistoryDirectoryError || error instanceof NotAFileError || error instanceof HistoryChangedError || (error instanceof Error && 'code' in error);
    post(port, { type: 'checkFailed', phase: read ? 'read' : 'check', name, message });
    return;
  }
  post(port, { type: 'report', report });
}

if (isMainThread || !parentPort) throw new Error('checker-thread runs as a worker thread (started by checker-worker.ts)');
// The boundary: workerData comes from checker-worker.ts, typed there as CheckerThreadData.
const data = workerData as CheckerThreadData;
if (data.job === 'live') runLive(parentPort, data.options);
else runCheck(parentPort, data.source, data.options);
