/**
 * The report directory of a run: the history segments (written during the run), verdict.json (the
 * verdict and the figures a dashboard or a script needs) and report.html (the offline check's report).
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type { SearchWindow } from '../checker/index.ts';
import { html, renderHtmlReport } from '../report/index.ts';
import type { RobustnessRun } from '../domain/index.ts';
import type { HashKvComparison, RunResult } from './types.ts';
import type { RunOutcome } from './outcome.ts';
import type { FaultRecovery, RecoverySummary } from './recovery.ts';

export interface RunSummary {
  run: string;
  cluster: string;
  verdict: RunResult['verdict'];
  reason?: string;
  /** What the run's result means (src/run/outcome.ts): Passed only if nothing kept the verdict from standing. */
  outcome?: RunOutcome;
  live: RunResult['live'];
  seed: number;
  profile: string;
  mode: RunResult['mode'];
  prefix: string;
  startTime: string;
  endTime: string;
  durationMs: number;
  stoppedEarly?: string;
  selfTest?: string;
  operations: RunResult['operations'];
  watch: RunResult['watch'];
  qps: { target: number; min: number; achieved: number; belowMinIntervals: number };
  /**
   * The offline check: its verdict, how the order was found (`revision`, or `search` with the window it
   * took: src/checker/revision.ts) and how long the whole check took.
   */
  linearizability?: {
    verdict: string;
    operations: number;
    reason?: string;
    staleReadViolations: number;
    method?: 'revision' | 'search';
    searchWindow?: SearchWindow;
    checkMs: number;
  };
  watchViolations?: { property: string; watch: number; message: string }[];
  faults: {
    planned: number;
    injected: number;
    failed: number;
    skipped?: string;
    events: RunResult['faults']['events'];
    /** Time from each fault to writable again: summary {faults, recovered, medianMs, maxMs} and per fault {id, fault, targets, injectedAt, atMs, writableAfterMs}. */
    recovery?: { summary: RecoverySummary; faults: FaultRecovery[] };
  };
  hashKv?: HashKvComparison;
  files: { history: string; html?: string };
}

const maxListedViolations = 50;

export function summarize(run: RobustnessRun, cluster: string, result: RunResult, historyDir: string, htmlFile: string | undefined): RunSummary {
  const summary: RunSummary = {
    run: run.metadata.name,
    cluster,
    verdict: result.verdict,
    live: result.live,
    seed: result.seed,
    profile: run.spec.traffic.profile,
    mode: result.mode,
    prefix: result.prefix,
    startTime: result.startTime,
    endTime: result.endTime,
    durationMs: result.durationMs,
    operations: result.operations,
    watch: result.watch,
    qps: { target: run.spec.traffic.qps.target, min: run.spec.traffic.qps.min, achieved: Math.round(result.achievedQps * 10) / 10, belowMinIntervals: result.belowMinQpsIntervals },
    faults: result.faults,
    files: { history: historyDir },
  };
  if (result.hashKv) summary.hashKv = result.hashKv;
  if (result.reason !== undefined) summary.reason = result.reason;
  if (result.stoppedEarly !== undefined) summary.stoppedEarly = result.stoppedEarly;
  if (result.selfTest !== undefined) summary.selfTest = result.selfTest;
  if (result.report) {
    const lin = result.report.linearizability;
    summary.linearizability = {
      verdict: lin.verdict,
      operations: lin.operations,
      staleReadViolations: lin.staleReadViolations?.length ?? 0,
      ...(lin.method === undefined ? {} : { method: lin.method }),
      ...(lin.searchWindow === undefined ? {} : { searchWindow: lin.searchWindow }),
      checkMs: Math.round(result.report.elapsedMs),
    };
    const why = lin.violation?.reason ?? lin.inconclusive;
    if (why !== undefined) summary.linearizability.reason = why;
    summary.watchViolations = result.report.watch.violations.slice(0, maxListedViolations).map((v) => ({ property: v.property, watch: v.watch, message: v.message }));
  }
  if (htmlFile !== undefined) summary.files.html = htmlFile;
  return summary;
}

const formatMs = (ms: number): string => `${ms < 10 ? ms.toFixed(1) : Math.round(ms)} ms`;

/** One line for a run's fault recoveries ("3 faults, 2 writable again: median 812 ms, max 3104 ms; 1 not before the run ended"). */
export function describeRecovery(summary: RecoverySummary): string {
  if (summary.faults === 0) return 'no verified fault to measure';
  const unrecovered = summary.faults - summary.recovered;
  const figures = summary.medianMs !== undefined && summary.maxMs !== undefined ? `: median ${formatMs(summary.medianMs)}, max ${formatMs(summary.maxMs)}` : '';
  return `${summary.faults} fault${summary.faults === 1 ? '' : 's'}, ${summary.recovered} writable again${figures}${unrecovered > 0 ? `; ${unrecovered} not before the run ended` : ''}`;
}

/** The HTML report's panel of fault recoveries (a table, one row per fault). */
export function renderRecoveryPanel(recovery: { summary: RecoverySummary; faults: readonly FaultRecovery[] }): string {
  const rows = recovery.faults.map(
    (r) =>
      html`<tr><td>${r.id}</td><td><span class="tag">${r.fault}</span></td><td>${r.targets.join(', ')}</td><td>${(r.atMs / 1000).toFixed(1)} s</td><td>${r.writableAfterMs === undefined ? html`<span class="muted">not before the run ended</span>` : formatMs(r.writableAfterMs)}</td></tr>`,
  );
  const table = rows.length > 0 && html`\n<table class="list"><thead><tr><th>fault</th><th>name</th><th>targets</th><th>at</th><th>writable after</th></tr></thead><tbody>${rows}</tbody></table>`;
  return html`<section class="panel" id="fault-recovery">
<h2>Time from fault to writable</h2>
<p class="muted">From the fault being in place to the return of the first successful write invoked after it. ${describeRecovery(recovery.summary)}.</p>${table}
</section>`.text;
}

/** Writes verdict.json and report.html into `dir` (the history is already there). */
export function writeRunReport(dir: string, run: RobustnessRun, cluster: string, result: RunResult, historyDir: string, outcome?: RunOutcome): RunSummary {
  let htmlFile: string | undefined;
  if (result.report && result.history) {
    htmlFile = path.join(dir, 'report.html');
    let page = renderHtmlReport(result.history, result.report, { title: `${run.metadata.name} on ${cluster}` });
    const recovery = result.faults.recovery;
    if (recovery && recovery.summary.faults > 0) {
      // A panel of this run's own, before the checker report's footer.
      const at = page.lastIndexOf('<footer>');
      if (at >= 0) page = `${page.slice(0, at)}${renderRecoveryPanel(recovery)}\n${page.slice(at)}`;
    }
    writeFileSync(htmlFile, page);
  }
  const summary = summarize(run, cluster, result, historyDir, htmlFile);
  if (outcome !== undefined) summary.outcome = outcome;
  writeFileSync(path.join(dir, 'verdict.json'), `${JSON.stringify(summary, null, 2)}\n`);
  return summary;
}
