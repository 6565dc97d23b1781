/**
 * The checker benchmark (`npm run bench:checker`), side by side with porcupine.
 *
 * 1. small hard: Jepsen-style register histories (one key, ~80 operations, many timeouts), half of
 *    them with one corrupted response; our checkHistory and porcupine check the same files; times are
 *    taken around the check call only (parsing excluded), each side repeats the whole corpus and the
 *    median total is reported; the verdicts are compared with each other.
 * 2. large: one 100,000-operation etcd-shaped history with revisions, checked offline (median of 3).
 * 3. live: a stream of etcd-shaped operations (10,000,000 by default) through LiveChecker, pushed in
 *    the order a recorder emits them with advance(watermark) as it would call it.
 * 4. offline: `etcd-robustness check FILE` in a child process on one etcd-shaped history file per size
 *    (--offline-ops, default 2,000,000 and 10,000,000 operations), the streaming check: wall time and
 *    peak RSS (the child's VmHWM, read from /proc/<pid>/status just before it exits), median of
 *    --offline-reps runs (default 3).
 *
 * Options: --small N (register histories, default 200), --reps N (default 5), --large-ops N (default
 * 100000, 0 skips), --live-ops N (default 10000000, 0 skips), --timeout-ms N (per small history, both
 * checkers, default 60000), --large-timeout-ms N (per large check, default 600000), --live-budget-s N (stop the live stream after this long, default 3600),
 * --unknown-write-rate X (fraction of writes with an unknown outcome in the large and live histories,
 * default 0.005).
 * --offline-ops LIST (comma-separated sizes, 0 skips), --offline-reps N.
 * 5. seed sweep (--sweep-seeds N, default 0 = skipped; --sweep-seed S, default 20261125, the property
 *    tests' seed): N draws of the property tests' history generator (test/helpers/random-histories.ts,
 *    the same draws as the first property of checker-properties.test.ts with FC_SEED=S and numRuns N),
 *    each checked offline: how many are linearizable, violations or inconclusive (by construction all
 *    should be linearizable), and the median and max time of one check. --sweep-ops N draws histories of
 *    N operations each with --sweep-unknown X (default 0.25) the chance of an unknown outcome per
 *    operation (sizedShapeArbitrary: a stress test of the search), --sweep-revisions with|without|both
 *    (default both) whether responses show revisions; --timeout-ms bounds each check (a history the exact
 *    search gives up on takes at least half of it: the beam, linearize.ts, gets the rest).
 * 6. replay: the recorded faulted histories of bench/histories/ through LiveChecker at full speed
 *    (bench/replay.ts): --replay-reps N (default 5, 0 skips), --replay-budget-s N (per history, default 300).
 * Corpora go to bench/.corpus/, results to bench/.results/checker-<date>.json.
 */
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { checkHistory, LiveChecker, parseHistory } from '../src/checker/index.ts';
import type { CheckReport, Verdict } from '../src/checker/index.ts';
import type { History, Operation } from '../src/domain/index.ts';
import { createEtcdSimulation, etcdMeta, generateEtcdHistory, generateRegisterHistory, toJsonl } from './generate.ts';
import { buildPorcupine, goVersion, porcupineVersion, runPorcupine } from './porcupine.ts';
import type { PorcupineResult } from './porcupine.ts';
import { intOption, median } from './options.ts';
import fc from 'fast-check';
import { buildHistory, shapeArbitrary, sizedShapeArbitrary } from '../test/helpers/random-histories.ts';
import { replayRows, runReplayBench } from './replay.ts';

const benchDir = path.dirname(new URL(import.meta.url).pathname);
const corpusDir = path.join(benchDir, '.corpus');
const resultsDir = path.join(benchDir, '.results');

const SMALL_SEED_BASE = 1000;
const LARGE_SEED = 7;
const LIVE_SEED = 11;

const { values: args } = parseArgs({
  options: {
    small: { type: 'string' },
    reps: { type: 'string' },
    'large-ops': { type: 'string' },
    'live-ops': { type: 'string' },
    'timeout-ms': { type: 'string' },
    'live-budget-s': { type: 'string' },
    // V8 keeps freed heap pages; a bounded old space is how the operator's container runs (NODE_OPTIONS).
    'live-heap-mb': { type: 'string' },
    'large-timeout-ms': { type: 'string' },
    'unknown-write-rate': { type: 'string' },
    'offline-ops': { type: 'string' },
    'offline-reps': { type: 'string' },
    'sweep-seeds': { type: 'string' },
    'sweep-seed': { type: 'string' },
    'sweep-ops': { type: 'string' },
    'sweep-unknown': { type: 'string' },
    'sweep-revisions': { type: 'string' },
    'replay-reps': { type: 'string' },
    'replay-budget-s': { type: 'string' },
    // Internal: the live section runs in a child process of its own, so that its memory is its own.
    'live-child': { type: 'boolean' },
  },
});
const smallCount = intOption(args.small, 200, 'small');
const reps = Math.max(1, intOption(args.reps, 5, 'reps'));
const largeOps = intOption(args['large-ops'], 100_000, 'large-ops');
const liveOps = intOption(args['live-ops'], 10_000_000, 'live-ops');
const timeoutMs = intOption(args['timeout-ms'], 60_000, 'timeout-ms');
const largeTimeoutMs = intOption(args['large-timeout-ms'], 600_000, 'large-timeout-ms');
const liveBudgetS = intOption(args['live-budget-s'], 3600, 'live-budget-s');
const liveHeapMb = intOption(args['live-heap-mb'], 128, 'live-heap-mb');
const unknownWriteRate = args['unknown-write-rate'] === undefined ? 0.005 : Number(args['unknown-write-rate']);
const offlineOps = (args['offline-ops'] ?? '2000000,10000000')
  .split(',')
  .map((x) => intOption(x.trim(), 0, 'offline-ops'))
  .filter((n) => n > 0);
const offlineReps = Math.max(1, intOption(args['offline-reps'], 3, 'offline-reps'));
const sweepSeeds = intOption(args['sweep-seeds'], 0, 'sweep-seeds');
const sweepSeed = intOption(args['sweep-seed'], 20_261_125, 'sweep-seed');
const sweepOps = intOption(args['sweep-ops'], 0, 'sweep-ops');
const sweepUnknown = args['sweep-unknown'] === undefined ? 0.25 : Number(args['sweep-unknown']);
const sweepRevisions = args['sweep-revisions'] ?? 'both';
if (!(sweepUnknown >= 0 && sweepUnknown <= 1)) throw new Error(`--sweep-unknown must be in [0, 1], got ${args['sweep-unknown']}`);
if (!['with', 'without', 'both'].includes(sweepRevisions)) throw new Error(`--sweep-revisions must be with, without or both, got ${sweepRevisions}`);
const replayReps = intOption(args['replay-reps'], 5, 'replay-reps');
const replayBudgetS = Math.max(1, intOption(args['replay-budget-s'], 300, 'replay-budget-s'));
if (!(unknownWriteRate >= 0 && unknownWriteRate <= 1)) throw new Error(`--unknown-write-rate must be in [0, 1], got ${args['unknown-write-rate']}`);

// ---------------------------------------------------------------------------------------------------
// Helpers


function sum(values: readonly number[]): number {
  return values.reduce((a, b) => a + b, 0);
}

const log = (message: string): void => {
  process.stderr.write(`[bench] ${message}\n`);
};

function fmtMs(ns: number): string {
  const ms = ns / 1e6;
  return ms >= 100 ? ms.toFixed(0) : ms >= 1 ? ms.toFixed(2) : ms.toFixed(3);
}

const mb = (bytes: number): number => Math.round(bytes / 1048576);

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows.map((r) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ')).join('\n');
}

function toResult(verdict: Verdict): PorcupineResult {
  return verdict === 'linearizable' ? 'ok' : verdict === 'violation' ? 'illegal' : 'unknown';
}

/** Why a verdict is what it is, in one line (for reports of surprises). */
function why(report: CheckReport): string | undefined {
  const l = report.linearizability;
  return l.violation?.reason ?? l.inconclusive ?? l.staleReadViolations?.[0]?.reason;
}

// ---------------------------------------------------------------------------------------------------
// 1. small hard: register histories, ours vs porcupine

interface SmallFile {
  file: string;
  seed: number;
  corrupted: boolean;
  corruption?: string;
  operations: number;
  unknown: number;
  history: History;
}

function smallHard(): Record<string, unknown> {
  const dir = path.join(corpusDir, 'register');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const files: SmallFile[] = [];
  for (let i = 0; i < smallCount; i++) {
    const seed = SMALL_SEED_BASE + i;
    const g = generateRegisterHistory({ seed, corrupt: i % 2 === 1 });
    const file = path.join(dir, `register-${seed}-${g.corrupted ? 'corrupt' : 'clean'}.jsonl`);
    writeFileSync(file, toJsonl(g.history));
    // What both checkers read is the file: parse it back (not timed).
    const history = parseHistory(readFileSync(file, 'utf8'), file);
    const entry: SmallFile = {
      file,
      seed,
      corrupted: g.corrupted,
      operations: history.operations.length,
      unknown: history.operations.filter((op) => op.return === null).length,
      history,
    };
    if (g.corruption !== undefined) entry.corruption = g.corruption;
    files.push(entry);
  }
  writeFileSync(
    path.join(dir, 'manifest.json'),
    `${JSON.stringify(
      files.map(({ history: _h, ...rest }) => rest),
      null,
      1,
    )}\n`,
  );
  log(`small: ${files.length} register histories in ${path.relative(process.cwd(), dir)}/`);

  // Ours: the whole corpus `reps` times, time around checkHistory only.
  const oursNs: number[][] = files.map(() => []);
  const oursVerdicts: Verdict[][] = files.map(() => []);
  const oursReports: (CheckReport | undefined)[] = files.map(() => undefined);
  for (let rep = 0; rep < reps; rep++) {
    files.forEach((f, i) => {
      const t0 = process.hrtime.bigint();
      const report = checkHistory(f.history, { timeoutMs });
      const t1 = process.hrtime.bigint();
      oursNs[i]!.push(Number(t1 - t0));
      oursVerdicts[i]!.push(report.linearizability.verdict);
      oursReports[i] ??= report;
    });
    log(`small: ours rep ${rep + 1}/${reps}: ${fmtMs(sum(oursNs.map((n) => n[rep]!)))} ms`);
  }

  // Porcupine: the same files, `reps` times in one process, time around CheckOperations only.
  const porcNs: number[][] = files.map(() => []);
  const porcResults: PorcupineResult[][] = files.map(() => []);
  const index = new Map(files.map((f, i) => [f.file, i]));
  const t0 = Date.now();
  for (const line of runPorcupine(
    files.map((f) => f.file),
    { reps, timeout: `${timeoutMs}ms` },
  )) {
    const i = index.get(line.file);
    if (i === undefined) throw new Error(`porcupine reported an unknown file ${line.file}`);
    porcNs[i]!.push(line.ns);
    porcResults[i]!.push(line.result);
  }
  log(`small: porcupine ${reps} reps in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

  const totalsOf = (ns: number[][]): number[] => Array.from({ length: reps }, (_, rep) => sum(ns.map((n) => n[rep] ?? 0)));
  const oursTotals = totalsOf(oursNs);
  const porcTotals = totalsOf(porcNs);
  const oursPer = oursNs.map(median);
  const porcPer = porcNs.map(median);

  const counts = { bothOk: 0, bothIllegal: 0, disagree: 0, unknown: 0, flaky: 0 };
  const disagreements: Record<string, unknown>[] = [];
  const unknowns: Record<string, unknown>[] = [];
  const truth = { cleanOk: 0, cleanIllegal: 0, corruptedIllegal: 0, corruptedOk: 0 };
  files.forEach((f, i) => {
    const ours = toResult(oursVerdicts[i]![0]!);
    const porc = porcResults[i]![0]!;
    if (new Set(oursVerdicts[i]).size > 1 || new Set(porcResults[i]).size > 1) counts.flaky++;
    const detail = {
      file: path.relative(process.cwd(), f.file),
      ours,
      porcupine: porc,
      corrupted: f.corrupted,
      corruption: f.corruption,
      oursReason: why(oursReports[i]!),
    };
    if (ours === 'unknown' || porc === 'unknown') {
      counts.unknown++;
      unknowns.push(detail);
    } else if (ours !== porc) {
      counts.disagree++;
      disagreements.push(detail);
    } else if (ours === 'ok') counts.bothOk++;
    else counts.bothIllegal++;
    if (ours === porc && ours !== 'unknown') {
      if (f.corrupted) truth[ours === 'ok' ? 'corruptedOk' : 'corruptedIllegal']++;
      else truth[ours === 'ok' ? 'cleanOk' : 'cleanIllegal']++;
    }
  });
  const slowest = (per: number[]): { file: string; ms: number }[] =>
    per
      .map((ns, i) => ({ file: path.basename(files[i]!.file), ms: ns / 1e6 }))
      .sort((a, b) => b.ms - a.ms)
      .slice(0, 5);

  return {
    histories: files.length,
    reps,
    operationsPerHistory: median(files.map((f) => f.operations)),
    unknownOutcomeFraction: sum(files.map((f) => f.unknown)) / sum(files.map((f) => f.operations)),
    ours: {
      medianPerHistoryMs: median(oursPer) / 1e6,
      maxPerHistoryMs: Math.max(...oursPer) / 1e6,
      medianTotalMs: median(oursTotals) / 1e6,
      totalsMs: oursTotals.map((n) => n / 1e6),
      slowest: slowest(oursPer),
    },
    porcupine: {
      medianPerHistoryMs: median(porcPer) / 1e6,
      maxPerHistoryMs: Math.max(...porcPer) / 1e6,
      medianTotalMs: median(porcTotals) / 1e6,
      totalsMs: porcTotals.map((n) => n / 1e6),
      slowest: slowest(porcPer),
    },
    ratioPorcupineOverOurs: median(porcTotals) / median(oursTotals),
    ratioOfMedianPerHistory: median(porcPer) / median(oursPer),
    agreement: counts,
    disagreements,
    unknowns,
    groundTruth: truth,
  };
}

// ---------------------------------------------------------------------------------------------------
// 2. large: one etcd-shaped history with revisions, offline

function large(): Record<string, unknown> {
  const file = path.join(corpusDir, `etcd-${largeOps}-seed${LARGE_SEED}-unknown${unknownWriteRate}.jsonl`);
  mkdirSync(corpusDir, { recursive: true });
  writeFileSync(file, toJsonl(generateEtcdHistory({ seed: LARGE_SEED, operations: largeOps, unknownWriteRate })));
  const text = readFileSync(file, 'utf8');
  const p0 = process.hrtime.bigint();
  const history = parseHistory(text, file);
  const parseNs = Number(process.hrtime.bigint() - p0);
  log(`large: ${history.operations.length} operations in ${path.relative(process.cwd(), file)}`);
  const runs: number[] = [];
  let report: CheckReport | undefined;
  for (let run = 0; run < 3; run++) {
    const t0 = process.hrtime.bigint();
    report = checkHistory(history, { timeoutMs: largeTimeoutMs });
    runs.push(Number(process.hrtime.bigint() - t0));
    log(`large: run ${run + 1}/3: ${(runs[run]! / 1e9).toFixed(2)} s, ${report.linearizability.verdict}`);
  }
  return {
    file: path.relative(process.cwd(), file),
    operations: history.operations.length,
    unknownOutcome: history.operations.filter((op) => op.return === null).length,
    parseSeconds: parseNs / 1e9,
    medianSeconds: median(runs) / 1e9,
    runsSeconds: runs.map((n) => n / 1e9),
    verdict: report!.linearizability.verdict,
    reason: why(report!),
  };
}

// ---------------------------------------------------------------------------------------------------
// 3. live: a long stream through LiveChecker

interface LiveSample {
  operations: number;
  rssMb: number;
  heapUsedMb: number;
  pending: number;
  verdict: Verdict;
  checkerSeconds: number;
}

function live(): Record<string, unknown> {
  // A finite simulation, drained to the end: the history is complete, so the final advance(Infinity)
  // (every operation has been pushed) is true. Cutting an endless stream would drop operations still
  // in flight whose effects later responses already show.
  const sim = createEtcdSimulation({ seed: LIVE_SEED, operations: liveOps, unknownWriteRate });
  const checker = new LiveChecker({ mode: 'exclusive', initialRevision: 1 });
  const sampleEvery = Math.max(1, Math.min(1_000_000, Math.floor(liveOps / 10)));
  const batchSize = 8192;
  const batch: Operation[] = new Array<Operation>(batchSize);
  const marks = new Float64Array(batchSize);
  const samples: LiveSample[] = [];
  let checkerNs = 0n;
  let pushed = 0;
  let watermark = -Infinity;
  let firstNonLinearizableAt: number | undefined;
  const wall0 = process.hrtime.bigint();
  const budgetNs = BigInt(liveBudgetS) * 1_000_000_000n;
  let stoppedEarly = false;
  let exhausted = false;
  while (!exhausted) {
    if (process.hrtime.bigint() - wall0 > budgetNs) {
      stoppedEarly = true;
      log(`live: stopping after ${pushed.toLocaleString('en')} operations, over the --live-budget-s of ${liveBudgetS} s`);
      break;
    }
    // Generate a batch (not timed), then feed it (timed).
    let n = 0;
    while (n < batchSize) {
      const e = sim.next();
      if (e === undefined) {
        exhausted = true;
        break;
      }
      batch[n] = e.op;
      marks[n] = e.watermark;
      n++;
    }
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) {
      checker.push(batch[i]!);
      const w = marks[i]!;
      if (w > watermark) {
        watermark = w;
        checker.advance(w);
      }
    }
    checkerNs += process.hrtime.bigint() - t0;
    const before = pushed;
    pushed += n;
    if (firstNonLinearizableAt === undefined && checker.verdict !== 'linearizable') firstNonLinearizableAt = pushed;
    if (Math.floor(pushed / sampleEvery) > Math.floor(before / sampleEvery) || exhausted || samples.length === 0) {
      const m = process.memoryUsage();
      const sample: LiveSample = {
        operations: pushed,
        rssMb: mb(m.rss),
        heapUsedMb: mb(m.heapUsed),
        pending: checker.stats().pendingOperations,
        verdict: checker.verdict,
        checkerSeconds: Number(checkerNs) / 1e9,
      };
      samples.push(sample);
      // The parent keeps the samples even if this process dies (out of memory, say).
      process.stdout.write(`${JSON.stringify({ sample })}\n`);
      log(`live: ${pushed.toLocaleString('en')} ops, rss ${mb(m.rss)} MB, heap ${mb(m.heapUsed)} MB, ${checker.verdict}`);
    }
  }
  if (!stoppedEarly) {
    // The stream has ended: every operation has been pushed.
    const t0 = process.hrtime.bigint();
    checker.advance(Infinity);
    checkerNs += process.hrtime.bigint() - t0;
  }
  const wallNs = Number(process.hrtime.bigint() - wall0);
  const stats = checker.stats();
  // Beyond the minimal API the bench relies on: the checker's explanation, when it has one.
  const extra = checker as unknown as { violation?: { reason?: string }; inconclusiveReason?: string };
  const rss = samples.map((s) => s.rssMb);
  const half = Math.ceil(rss.length / 2);
  const firstHalfMax = Math.max(...rss.slice(0, half));
  const secondHalfMax = Math.max(...rss.slice(half));
  return {
    operations: pushed,
    requestedOperations: liveOps,
    stoppedEarly,
    checkerSeconds: Number(checkerNs) / 1e9,
    opsPerSecond: pushed / (Number(checkerNs) / 1e9),
    endToEndOpsPerSecond: pushed / (wallNs / 1e9),
    lagP99Ms: stats.lagP99Ms,
    stats,
    verdict: checker.verdict,
    reason: extra.violation?.reason ?? extra.inconclusiveReason,
    firstNonLinearizableAt,
    maxRssMb: Math.max(...rss),
    // Flat: the second half of the run never needs more than 10% (+16 MB) over the first half's peak.
    rssFlat: rss.length < 2 || secondHalfMax <= firstHalfMax * 1.1 + 16,
    samples,
  };
}

// ---------------------------------------------------------------------------------------------------

/**
 * Runs the live section in a fresh process (its RSS is then the live checker's alone). The child
 * writes a line per memory sample and the result last; if it dies, the samples it wrote are reported.
 */
function liveInChild(): Record<string, unknown> {
  const script = new URL(import.meta.url).pathname;
  const child = spawnSync(
    process.execPath,
    [
      ...process.execArgv,
      `--max-old-space-size=${liveHeapMb}`,
      // The young generation's semi-spaces dominate RSS at this allocation rate; small ones cost little.
      '--max-semi-space-size=4',
      script,
      '--live-child',
      '--live-ops',
      String(liveOps),
      '--live-budget-s',
      String(liveBudgetS),
      '--unknown-write-rate',
      String(unknownWriteRate),
    ],
    { encoding: 'utf8', maxBuffer: 1 << 28, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const samples: LiveSample[] = [];
  for (const line of child.stdout.split('\n')) {
    if (line.trim() === '') continue;
    const parsed = JSON.parse(line) as { sample?: LiveSample; result?: Record<string, unknown> };
    if (parsed.result) return parsed.result;
    if (parsed.sample) samples.push(parsed.sample);
  }
  const last = samples[samples.length - 1];
  const failure = child.error?.message ?? (child.signal ? `killed by ${child.signal}` : `exit status ${child.status}`);
  log(`live: the live process died (${failure}) after ${last?.operations.toLocaleString('en') ?? 0} operations`);
  return {
    crashed: failure,
    operations: last?.operations ?? 0,
    requestedOperations: liveOps,
    stoppedEarly: true,
    checkerSeconds: last?.checkerSeconds,
    opsPerSecond: last ? last.operations / last.checkerSeconds : undefined,
    verdict: last?.verdict,
    maxRssMb: Math.max(...samples.map((x) => x.rssMb)),
    rssFlat: false,
    samples,
  };
}

// ---------------------------------------------------------------------------------------------------
// 4. offline: the check command on one large file, in a child process

/** Writes an etcd-shaped history of `operations` operations as JSON Lines, a batch at a time (never whole in memory). */
function writeEtcdFile(file: string, operations: number): void {
  if (existsSync(file)) return;
  const sim = createEtcdSimulation({ seed: LARGE_SEED, operations, unknownWriteRate });
  const partial = `${file}.partial`;
  const fd = openSync(partial, 'w');
  try {
    writeSync(fd, `${JSON.stringify(etcdMeta({ seed: LARGE_SEED, operations, unknownWriteRate }))}\n`);
    let lines: string[] = [];
    for (let e = sim.next(); e; e = sim.next()) {
      lines.push(JSON.stringify(e.op));
      if (lines.length === 65_536) {
        writeSync(fd, `${lines.join('\n')}\n`);
        lines = [];
      }
    }
    if (lines.length > 0) writeSync(fd, `${lines.join('\n')}\n`);
  } finally {
    closeSync(fd);
  }
  renameSync(partial, file);
}

interface OfflineRun {
  seconds: number;
  peakRssMb: number;
  exitCode: number | null;
  stdout: string;
}

/** Peak resident memory (VmHWM, kB) of a live process, from /proc. */
function vmHwmKb(pid: number): number | undefined {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** One `check` in a child process; its peak RSS is sampled every 100 ms (VmHWM only grows, so the last sample is the peak so far). */
async function offlineRun(file: string): Promise<OfflineRun> {
  const cli = new URL('../src/cli.ts', import.meta.url).pathname;
  const t0 = process.hrtime.bigint();
  const child = spawn(process.execPath, [cli, 'check', '--timeout', `${Math.round(largeTimeoutMs / 1000)}s`, file], { stdio: ['ignore', 'pipe', 'inherit'] });
  let stdout = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  let peakKb = 0;
  const timer = setInterval(() => (peakKb = Math.max(peakKb, vmHwmKb(child.pid!) ?? 0)), 100);
  const exitCode = await new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  clearInterval(timer);
  return { seconds: Number(process.hrtime.bigint() - t0) / 1e9, peakRssMb: Math.round(peakKb / 1024), exitCode, stdout: stdout.trim() };
}

async function offline(): Promise<Record<string, unknown>[]> {
  mkdirSync(corpusDir, { recursive: true });
  const rows: Record<string, unknown>[] = [];
  for (const operations of offlineOps) {
    const file = path.join(corpusDir, `etcd-${operations}-seed${LARGE_SEED}-unknown${unknownWriteRate}.jsonl`);
    log(`offline: writing ${path.relative(process.cwd(), file)}`);
    writeEtcdFile(file, operations);
    const runs: OfflineRun[] = [];
    for (let run = 0; run < offlineReps; run++) {
      const r = await offlineRun(file);
      runs.push(r);
      log(`offline: ${operations.toLocaleString('en')} ops, run ${run + 1}/${offlineReps}: ${r.seconds.toFixed(1)} s, peak RSS ${r.peakRssMb} MB, exit ${r.exitCode}: ${r.stdout}`);
    }
    rows.push({
      file: path.relative(process.cwd(), file),
      operations,
      bytes: statSync(file).size,
      command: `node src/cli.ts check --timeout ${Math.round(largeTimeoutMs / 1000)}s ${path.relative(process.cwd(), file)}`,
      medianSeconds: median(runs.map((r) => r.seconds)),
      medianPeakRssMb: median(runs.map((r) => r.peakRssMb)),
      maxPeakRssMb: Math.max(...runs.map((r) => r.peakRssMb)),
      runs,
    });
  }
  return rows;
}

// ---------------------------------------------------------------------------------------------------
// 5. seed sweep: the property tests' generator, many draws

interface SweepCase {
  draw: number;
  verdict: Verdict;
  why: string | undefined;
  operations: number;
  unknown: number;
}

/** Checks sweepSeeds draws of the property generator (fc.check draws them as the property test does). */
function seedSweep(): Record<string, unknown> {
  const counts: Record<Verdict, number> = { linearizable: 0, violation: 0, inconclusive: 0 };
  const timesMs: number[] = [];
  const surprises: SweepCase[] = [];
  let draw = 0;
  const sized = sweepOps > 0 ? { ops: sweepOps, unknownRate: sweepUnknown, ...(sweepRevisions === 'both' ? {} : { withRevisions: sweepRevisions === 'with' }) } : undefined;
  log(`sweep: ${sweepSeeds} draws of the property generator${sized ? ` (${sweepOps} operations, unknown rate ${sweepUnknown}, revisions ${sweepRevisions})` : ''}, seed ${sweepSeed}`);
  const unknownShares: number[] = [];
  fc.check(
    fc.property(sized ? sizedShapeArbitrary(sized) : shapeArbitrary, (shape) => {
      const { history } = buildHistory(shape);
      const t0 = performance.now();
      const report = checkHistory(history, { timeoutMs });
      timesMs.push(performance.now() - t0);
      counts[report.verdict]++;
      const unknown = history.operations.filter((op) => op.return === null).length;
      unknownShares.push(unknown / history.operations.length);
      if (report.verdict !== 'linearizable') {
        surprises.push({ draw, verdict: report.verdict, why: why(report), operations: history.operations.length, unknown });
      }
      draw++;
      return true;
    }),
    { numRuns: sweepSeeds, seed: sweepSeed },
  );
  return {
    draws: draw,
    seed: sweepSeed,
    ops: sweepOps > 0 ? sweepOps : undefined,
    unknownRate: sweepOps > 0 ? sweepUnknown : undefined,
    revisions: sweepOps > 0 ? sweepRevisions : undefined,
    medianUnknownShare: median(unknownShares),
    counts,
    medianCheckMs: median(timesMs),
    maxCheckMs: Math.max(...timesMs),
    surprises,
  };
}

async function main(): Promise<void> {
  if (args['live-child']) {
    process.stdout.write(`${JSON.stringify({ result: live() })}\n`);
    return;
  }
  const started = new Date();
  if (smallCount > 0) {
    log(`building porcupine ${porcupineVersion()} with ${goVersion()}`);
    buildPorcupine();
  }
  const results: Record<string, unknown> = {
    date: started.toISOString(),
    node: process.version,
    go: smallCount > 0 ? goVersion() : undefined,
    porcupine: smallCount > 0 ? porcupineVersion() : undefined,
    cpu: os.cpus()[0]?.model,
    cpus: os.cpus().length,
    options: { small: smallCount, reps, largeOps, liveOps, timeoutMs, largeTimeoutMs, liveBudgetS, unknownWriteRate, offlineOps, offlineReps },
  };
  mkdirSync(resultsDir, { recursive: true });
  const out = path.join(resultsDir, `checker-${started.toISOString().replace(/[:.]/g, '-')}.json`);
  // Saved after every section, so a later failure keeps what was measured.
  const save = (): void => writeFileSync(out, `${JSON.stringify(results, null, 2)}\n`);
  const small = smallCount > 0 ? smallHard() : undefined;
  results['small'] = small;
  save();
  const big = largeOps > 0 ? large() : undefined;
  results['large'] = big;
  save();
  const stream = liveOps > 0 ? liveInChild() : undefined;
  results['live'] = stream;
  save();
  const files = offlineOps.length > 0 ? await offline() : [];
  results['offline'] = files;
  save();
  const sweep = sweepSeeds > 0 ? seedSweep() : undefined;
  results['sweep'] = sweep;
  const replay = replayReps > 0 ? runReplayBench(replayReps, replayBudgetS, log) : undefined;
  results['replay'] = replay;
  save();

  const rows: string[][] = [['', 'ours', 'porcupine', 'porcupine/ours']];
  if (small) {
    const s = small as {
      histories: number;
      ours: { medianPerHistoryMs: number; maxPerHistoryMs: number; medianTotalMs: number };
      porcupine: { medianPerHistoryMs: number; maxPerHistoryMs: number; medianTotalMs: number };
      ratioPorcupineOverOurs: number;
      ratioOfMedianPerHistory: number;
      agreement: { bothOk: number; bothIllegal: number; disagree: number; unknown: number; flaky: number };
      disagreements: { file: string; ours: string; porcupine: string }[];
      unknowns: { file: string; ours: string; porcupine: string }[];
    };
    const ms = (x: number): string => `${x >= 100 ? x.toFixed(0) : x >= 1 ? x.toFixed(2) : x.toFixed(3)} ms`;
    rows.push(
      [`small: median per history (${s.histories})`, ms(s.ours.medianPerHistoryMs), ms(s.porcupine.medianPerHistoryMs), `${s.ratioOfMedianPerHistory.toFixed(2)}x`],
      ['small: max per history', ms(s.ours.maxPerHistoryMs), ms(s.porcupine.maxPerHistoryMs), ''],
      [`small: median total of ${reps}`, ms(s.ours.medianTotalMs), ms(s.porcupine.medianTotalMs), `${s.ratioPorcupineOverOurs.toFixed(2)}x`],
      [
        'small: verdicts',
        `${s.agreement.bothOk} both ok, ${s.agreement.bothIllegal} both illegal`,
        `${s.agreement.disagree} disagree, ${s.agreement.unknown} unknown`,
        s.agreement.flaky > 0 ? `${s.agreement.flaky} flaky` : '',
      ],
    );
    for (const d of s.disagreements) rows.push([`  DISAGREE ${d.file}`, d.ours, d.porcupine, '']);
    for (const d of s.unknowns) rows.push([`  unknown ${d.file}`, d.ours, d.porcupine, '']);
  }
  if (big) {
    const b = big as { operations: number; medianSeconds: number; verdict: string };
    rows.push([`large: ${b.operations.toLocaleString('en')} ops, median of 3`, `${b.medianSeconds.toFixed(2)} s`, '', b.verdict]);
  }
  if (stream) {
    const l = stream as {
      operations: number;
      stoppedEarly: boolean;
      opsPerSecond?: number;
      endToEndOpsPerSecond?: number;
      lagP99Ms?: number;
      maxRssMb: number;
      rssFlat: boolean;
      verdict: string;
      crashed?: string;
    };
    const rate = (x: number | undefined): string => (x === undefined ? '-' : `${Math.round(x).toLocaleString('en')} ops/s`);
    const label = `live: ${l.operations.toLocaleString('en')} ops${l.crashed ? ` (DIED: ${l.crashed})` : l.stoppedEarly ? ' (budget hit)' : ''}`;
    rows.push(
      [label, rate(l.opsPerSecond), '', l.verdict],
      ['live: with generation', rate(l.endToEndOpsPerSecond), '', ''],
      ['live: lag p99', l.lagP99Ms === undefined ? '-' : `${l.lagP99Ms.toFixed(3)} ms`, '', ''],
      ['live: max RSS', `${l.maxRssMb} MB`, '', l.rssFlat ? 'flat' : 'GROWS'],
    );
  }
  for (const f of files as { operations: number; medianSeconds: number; medianPeakRssMb: number; maxPeakRssMb: number; runs: OfflineRun[] }[]) {
    rows.push([
      `offline check of ${f.operations.toLocaleString('en')} ops from one file, median of ${f.runs.length}`,
      `${f.medianSeconds.toFixed(1)} s`,
      `peak RSS ${f.medianPeakRssMb} MB (max ${f.maxPeakRssMb})`,
      f.runs[0]?.stdout.split('\t')[1] ?? '',
    ]);
  }
  if (sweep) rows.push(...sweepRows(sweep));
  if (replay) rows.push(...replayRows(replay));
  process.stdout.write(`${table(rows)}\n\nresults: ${path.relative(process.cwd(), out)}\n`);
}

/** The sweep's lines of the summary table. */
function sweepRows(sweep: Record<string, unknown>): string[][] {
  const w = sweep as { draws: number; seed: number; counts: Record<Verdict, number>; medianCheckMs: number; maxCheckMs: number; medianUnknownShare: number; surprises: SweepCase[] };
  const rows = [
    [`sweep: ${w.draws} draws, seed ${w.seed}`, `${w.counts.linearizable} linearizable`, `${w.counts.violation} violation, ${w.counts.inconclusive} inconclusive`, ''],
    ['sweep: check time, median / max', `${w.medianCheckMs.toFixed(3)} ms`, `${w.maxCheckMs.toFixed(0)} ms`, ''],
    ['sweep: unknown outcomes, median share', `${(w.medianUnknownShare * 100).toFixed(1)} %`, '', ''],
  ];
  for (const c of w.surprises) rows.push([`  ${c.verdict} draw ${c.draw} (${c.operations} ops, ${c.unknown} unknown)`, c.why ?? '', '', '']);
  return rows;
}

await main();
