/**
 * The report directory of a run: the history segments (written during the run), verdict.json (the
 * verdict and the figures a dashboard or a script needs) and report.html (the offline check's report).
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { renderHtmlReport } from '../checker/index.ts';
import type { RobustnessRun } from '../domain/index.ts';
import type { RunResult } from './engine.ts';

export interface RunSummary {
  run: string;
  cluster: string;
  verdict: RunResult['verdict'];
  reason?: string;
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
  linearizability?: { verdict: string; operations: number; reason?: string; staleReadViolations: number };
  watchViolations?: { property: string; watch: number; message: string }[];
  faults: { planned: number; injected: number; failed: number; skipped?: string; events: RunResult['faults']['events'] };
  hashKv?: { equal: boolean; detail: string };
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
    summary.linearizability = { verdict: lin.verdict, operations: lin.operations, staleReadViolations: lin.staleReadViolations?.length ?? 0 };
    const why = lin.violation?.reason ?? lin.inconclusive;
    if (why !== undefined) summary.linearizability.reason = why;
    summary.watchViolations = result.report.watch.violations.slice(0, maxListedViolations).map((v) => ({ property: v.property, watch: v.watch, message: v.message }));
  }
  if (htmlFile !== undefined) summary.files.html = htmlFile;
  return summary;
}

/** Writes verdict.json and report.html into `dir` (the history is already there). */
export function writeRunReport(dir: string, run: RobustnessRun, cluster: string, result: RunResult, historyDir: string): RunSummary {
  let htmlFile: string | undefined;
  if (result.report && result.history) {
    htmlFile = path.join(dir, 'report.html');
    writeFileSync(htmlFile, renderHtmlReport(result.history, result.report, { title: `${run.metadata.name} on ${cluster}` }));
  }
  const summary = summarize(run, cluster, result, historyDir, htmlFile);
  writeFileSync(path.join(dir, 'verdict.json'), `${JSON.stringify(summary, null, 2)}\n`);
  return summary;
}
