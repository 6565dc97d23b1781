/**
 * `etcd-robustness check PATH...`: re-checks recorded histories offline, one line (or JSON object)
 * per file or segment directory. Exit codes: 0 all linearizable, 1 any violation, 2 any inconclusive
 * (and no violation), 64 usage or input errors.
 */
import { mkdirSync, readFileSync, statSync, writeFileSync, type Stats } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { checkHistory, HistoryFormatError, parseHistory, renderHtmlReport, type CheckReport } from '../checker/index.ts';
import type { History } from '../domain/index.ts';
import { parseDuration } from '../duration.ts';
import { HistoryDirectoryError, readHistoryDirectory } from '../probes/history-file.ts';

export const exitCodes = { ok: 0, violation: 1, inconclusive: 2, usage: 64 } as const;

export interface FileOutcome {
  file: string;
  verdict: CheckReport['verdict'] | 'error';
  operations?: number;
  elapsedMs?: number;
  reason?: string;
  watchViolations?: number;
  report?: string;
  error?: string;
}

export class CheckUsageError extends Error {
  override name = 'CheckUsageError';
}

export const checkUsage = `Usage: etcd-robustness check [--json] [--report DIR] [--timeout DURATION] PATH...

Checks recorded histories (JSON Lines, see docs/history-format.md) for linearizability and watch
guarantees. Each PATH is a history file, or a directory of segments (history-000001.jsonl, ...) checked
as the one history they form. Prints one line per PATH: path, verdict, operations, time taken.

Options:
  --json              Print the results as a JSON array instead.
  --report DIR        Write an HTML report per file into DIR.
  --timeout DURATION  Give up on a history after this long (inconclusive); default 60s.

Exit code: 0 all linearizable, 1 any violation, 2 any inconclusive, 64 usage or input error.
`;

function fileKind(stat: Stats): string {
  if (stat.isFIFO()) return 'a FIFO';
  if (stat.isCharacterDevice()) return 'a character device';
  if (stat.isBlockDevice()) return 'a block device';
  if (stat.isSocket()) return 'a socket';
  return 'not a file';
}

/** A file is one history; a directory is the segments a HistoryFileWriter wrote. Returns an error message on bad input. */
function loadHistory(file: string): History | string {
  let text: string;
  try {
    const stat = statSync(file);
    if (stat.isDirectory()) return readHistoryDirectory(file);
    if (!stat.isFile()) return `${file}: not a regular file or a directory (${fileKind(stat)}): check reads history files and segment directories only`;
    text = readFileSync(file, 'utf8');
  } catch (error) {
    if (error instanceof HistoryDirectoryError || error instanceof HistoryFormatError) return error.message;
    return `${file}: cannot read: ${(error as Error).message}`;
  }
  try {
    return parseHistory(text, file);
  } catch (error) {
    if (error instanceof HistoryFormatError) return error.message;
    throw error;
  }
}

function checkOne(file: string, timeoutMs: number, reportDir: string | undefined): FileOutcome {
  const history = loadHistory(file);
  if (typeof history === 'string') return { file, verdict: 'error', error: history };
  const report = checkHistory(history, { timeoutMs });
  const outcome: FileOutcome = {
    file,
    verdict: report.verdict,
    operations: history.operations.length,
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
  if (reportDir !== undefined) {
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
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        json: { type: 'boolean', default: false },
        report: { type: 'string' },
        timeout: { type: 'string', default: '60s' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (error) {
    throw new CheckUsageError(`check: ${(error as Error).message}`);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    out(checkUsage);
    return exitCodes.ok;
  }
  if (positionals.length === 0) throw new CheckUsageError('check: no history file or directory given (see etcd-robustness check --help)');
  let timeoutMs: number;
  try {
    timeoutMs = parseDuration(values.timeout);
    if (timeoutMs <= 0) throw new Error(`must be positive, got "${values.timeout}"`);
  } catch (error) {
    throw new CheckUsageError(`check: --timeout: ${(error as Error).message}`);
  }
  const outcomes = positionals.map((file) => {
    const outcome = checkOne(file, timeoutMs, values.report);
    if (!values.json) (outcome.verdict === 'error' ? err : out)(formatLine(outcome));
    return outcome;
  });
  if (values.json) out(JSON.stringify(outcomes, null, 2));
  return exitCodeFor(outcomes);
}
