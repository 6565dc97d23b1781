/**
 * `etcd-robustness check PATH...`: re-checks recorded histories offline, one line (or JSON object)
 * per file or segment directory. Exit codes: 0 all linearizable, 1 any violation, 2 any inconclusive
 * (and no violation), 64 usage or input errors.
 */
import { mkdirSync, readdirSync, statSync, writeFileSync, type Stats } from 'node:fs';
import path from 'node:path';
import { checkHistory, checkHistoryStream, HistoryChangedError, HistoryFormatError, type CheckReport } from '../checker/index.ts';
import { renderHtmlReport } from '../report/index.ts';
import type { History } from '../domain/index.ts';
import { parseDuration } from '../duration.ts';
import { fileKind, NotAFileError } from '../probes/history-line-reader.ts';
import { HistoryDirectoryError } from '../probes/history-segments.ts';
import { historySource } from '../probes/history-source.ts';
import { parseCommandArgs } from './parse-command-args.ts';
import { UsageError } from './usage.ts';

export const exitCodes = { ok: 0, violation: 1, inconclusive: 2, usage: 64 } as const;

export interface FileOutcome {
  file: string;
  verdict: CheckReport['verdict'] | 'error';
  operations?: number;
  elapsedMs?: number;
  reason?: string;
  watchViolations?: number;
  report?: string;
  /** Why --report wrote no report for this path. */
  reportSkipped?: string;
  error?: string;
}

export const checkUsage = `Usage: etcd-robustness check [--json] [--report DIR] [--timeout DURATION] PATH...

Checks recorded histories (JSON Lines, see docs/history-format.md) for linearizability and watch
guarantees. Each PATH is a history file, or a directory of segments (history-000001.jsonl, ...) checked
as the one history they form. Prints one line per PATH: path, verdict, operations, time taken.
Histories are read line by line, in three passes, so memory follows the operations in flight, not the
length of the history (see "Checking large histories" in docs/history-format.md).

Options:
  --json              Print the results as a JSON array instead.
  --report DIR        Write an HTML report per file into DIR (histories up to 256 MiB: the report
                      needs the whole history in memory).
  --timeout DURATION  Give up on a history after this long, reading included (inconclusive);
                      default 60s.

Exit code: 0 all linearizable, 1 any violation, 2 any inconclusive, 64 usage or input error.
`;

/** Above this much input, --report is not written: the HTML report needs the whole history in memory. */
export const reportLimitBytes = 256 * 1024 * 1024;

/** The bytes of a history file, or of a directory's segments. */
function inputBytes(file: string, stat: Stats): number {
  if (!stat.isDirectory()) return stat.size;
  return readdirSync(file)
    .filter((name) => /^history-\d+\.jsonl$/.test(name))
    .reduce((total, name) => total + statSync(path.join(file, name)).size, 0);
}

/** Why a path cannot be checked, as the message to print; undefined when it is a file or a directory. */
function refuse(file: string): { stat: Stats } | string {
  let stat: Stats;
  try {
    stat = statSync(file);
  } catch (error) {
    return `${file}: cannot read: ${(error as Error).message}`;
  }
  if (!stat.isDirectory() && !stat.isFile()) return `${file}: not a regular file or a directory (${fileKind(stat)}): check reads history files and segment directories only`;
  return { stat };
}

function inputError(file: string, error: unknown): string {
  if (error instanceof HistoryDirectoryError || error instanceof HistoryFormatError || error instanceof NotAFileError || error instanceof HistoryChangedError) return error.message;
  if (error instanceof Error && 'code' in error) return `${file}: cannot read: ${error.message}`;
  throw error;
}

/**
 * A file is one history; a directory is the segments a HistoryFileWriter wrote. Checked by the streaming
 * check (line by line, memory bounded by the live window, src/checker/stream.ts); with --report, a
 * history small enough is read whole instead, for the report.
 */
function checkOne(file: string, timeoutMs: number, reportDir: string | undefined): FileOutcome {
  const found = refuse(file);
  if (typeof found === 'string') return { file, verdict: 'error', error: found };
  let history: History | undefined;
  let report: CheckReport;
  let operations: number;
  const whole = reportDir !== undefined && inputBytes(file, found.stat) <= reportLimitBytes;
  try {
    if (whole) {
      history = historySource(file).load();
      report = checkHistory(history, { timeoutMs });
      operations = history.operations.length;
    } else {
      report = checkHistoryStream(historySource(file), { timeoutMs });
      operations = report.linearizability.operations;
    }
  } catch (error) {
    return { file, verdict: 'error', error: inputError(file, error) };
  }
  const outcome: FileOutcome = {
    file,
    verdict: report.verdict,
    operations,
    elapsedMs: Math.round(report.elapsedMs * 10) / 10,
    watchViolations: report.watch.violations.length,
  };
  const lin = report.linearizability;
  const reason =
    lin.violation?.reason ??
    lin.inconclusive ??
    lin.staleReadViolations?.[0]?.reason ??
    (report.watch.violations[0] ? `watch ${report.watch.violations[0].property}: ${report.watch.violations[0].message}` : undefined);
  if (reason !== undefined) outcome.reason = reason;
  if (reportDir !== undefined && history === undefined) {
    outcome.reportSkipped = `larger than ${reportLimitBytes / 1024 / 1024} MiB: no HTML report (it needs the whole history in memory)`;
  } else if (reportDir !== undefined && history !== undefined) {
    mkdirSync(reportDir, { recursive: true });
    // resolve: a directory given as "." or "dir/" still names its report after itself.
    const name = path.basename(path.resolve(file));
    const out = path.join(reportDir, `${name.replace(/\.[^.]*$/, '')}.html`);
    writeFileSync(out, renderHtmlReport(history, report, { title: name }));
    outcome.report = out;
  }
  return outcome;
}

export function exitCodeFor(outcomes: FileOutcome[]): number {
  if (outcomes.some((o) => o.verdict === 'error')) return exitCodes.usage;
  if (outcomes.some((o) => o.verdict === 'violation')) return exitCodes.violation;
  if (outcomes.some((o) => o.verdict === 'inconclusive')) return exitCodes.inconclusive;
  return exitCodes.ok;
}

function formatLine(o: FileOutcome): string {
  if (o.verdict === 'error') return o.error!;
  const base = `${o.file}\t${o.verdict}\t${o.operations} operations\t${o.elapsedMs} ms`;
  return o.reason ? `${base}\t${o.reason}` : base;
}

export function runCheck(argv: string[], out: (line: string) => void, err: (line: string) => void): number {
  const { values, positionals } = parseCommandArgs('check', argv, {
    json: { type: 'boolean', default: false },
    report: { type: 'string' },
    timeout: { type: 'string', default: '60s' },
    help: { type: 'boolean', short: 'h', default: false },
  });
  if (values.help) {
    out(checkUsage);
    return exitCodes.ok;
  }
  if (positionals.length === 0) throw new UsageError('check: no history file or directory given (see etcd-robustness check --help)');
  let timeoutMs: number;
  try {
    timeoutMs = parseDuration(values.timeout);
    if (timeoutMs <= 0) throw new Error(`must be positive, got "${values.timeout}"`);
  } catch (error) {
    throw new UsageError(`check: --timeout: ${(error as Error).message}`);
  }
  const outcomes = positionals.map((file) => {
    const outcome = checkOne(file, timeoutMs, values.report);
    if (!values.json) (outcome.verdict === 'error' ? err : out)(formatLine(outcome));
    if (!values.json && outcome.reportSkipped !== undefined) err(`${file}: ${outcome.reportSkipped}`);
    return outcome;
  });
  if (values.json) out(JSON.stringify(outcomes, null, 2));
  return exitCodeFor(outcomes);
}
