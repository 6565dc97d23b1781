/**
 * The replay case of the checker bench: histories recorded by real runs with faults (bench/histories/,
 * gzipped JSONL, see its README) replayed through LiveChecker as fast as it takes them.
 *
 * The order is the one the run gave the live checker (src/run/recording.ts), read back from the file's line
 * order, which is the order the recorder wrote them:
 * - an operation line is pushed where it stands: operations complete in return order, and one abandoned
 *   with an unknown outcome (return null) is written when its client gave up, so its line already sits
 *   at that moment (no call + timeout estimate is needed);
 * - after each operation, advance(watermark) with the watermark the recorder computes: the earliest call
 *   among the invocations still open (an invoke line not yet completed), or "now" when none is, where now
 *   is the latest time the history has shown so far (a return or a watch response's time);
 * - each watch response is pushed where its line stands (responses arrive interleaved by time), with
 *   its stream (id and request);
 * - invocations never completed (the run ended with them in flight) are pushed last, as unknown, then
 *   finish().
 * The events are built before the clock starts: the timed loop only calls push, pushWatchResponse,
 * advance and finish, so its time is theirs. Each repetition uses a fresh LiveChecker. Each history
 * replays in a child process of its own (`node bench/replay.ts --history NAME --reps N`), killed after a
 * budget: on a history the checker cannot get through, the report says how far it got instead of hanging.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { HistoryParser, LiveChecker } from '../src/checker/index.ts';
import type { LiveCheckerOptions, LiveStats, Verdict } from '../src/checker/index.ts';
import type { History, Operation, WatchRequest, WatchResponse } from '../src/domain/index.ts';
import { intOption, median } from './options.ts';

export const historiesDir = path.join(path.dirname(new URL(import.meta.url).pathname), 'histories');

/**
 * The resolve window the recording runs used: the engine's max(5 s, longest fault + 5 s), and every
 * manifest in histories/manifests/ keeps the default fault duration (at most 3 s).
 */
export const recordedResolveWindowMs = 8000;

/** A watch stream as the live checker may be told it (the second argument of pushWatchResponse). */
export interface WatchStreamRef {
  id: number;
  request: WatchRequest;
}

/**
 * pushWatchResponse with the stream: a method of one parameter is assignable to this type, so the call
 * compiles against the current LiveChecker and passes the stream to one that takes it.
 */
type WatchPush = (response: WatchResponse, stream: WatchStreamRef) => void;

export type ReplayEvent =
  | { kind: 'op'; op: Operation }
  | { kind: 'advance'; watermark: number }
  | { kind: 'watch'; response: WatchResponse; stream: WatchStreamRef };

export interface PreparedReplay {
  name: string;
  history: History;
  events: ReplayEvent[];
  operations: number;
  watchResponses: number;
}

/** The recorded histories: every *.jsonl.gz in `dir` (default bench/histories), by name. */
export function recordedHistoryFiles(dir = historiesDir): { name: string; file: string }[] {
  return readdirSync(dir)
    .filter((n) => n.endsWith('.jsonl.gz'))
    .map((n) => ({ name: n.slice(0, -'.jsonl.gz'.length), file: path.join(dir, n) }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** A history file's text; gunzipped when its name ends in .gz. */
export function readRecordedHistory(file: string): string {
  const data = readFileSync(file);
  return (file.endsWith('.gz') ? gunzipSync(data) : data).toString('utf8');
}

/** The fields of a line the replay order needs beyond what the parser returns. */
interface LinePeek {
  kind?: string;
  client?: number;
  call?: number;
  id?: number;
  response?: unknown;
}

/** A watch response line's place in the events, filled in once the parser has the stream. */
interface WatchSlot {
  event: number;
  id: number;
  nth: number;
}

/** Parses the history and lays out the live checker's calls in the order the run made them (see above). */
export function prepareReplay(name: string, text: string): PreparedReplay {
  const parser = new HistoryParser(name);
  const lines = text.split('\n');
  const events: ReplayEvent[] = [];
  const open = new Map<number, number>();
  const pushed = new Set<Operation>();
  const slots: WatchSlot[] = [];
  const responsesSeen = new Map<number, number>();
  let now = -Infinity;
  let watermark = -Infinity;
  lines.forEach((line, i) => {
    const op = parser.line(line, { last: i === lines.length - 1 });
    if (op !== undefined) {
      pushed.add(op);
      events.push({ kind: 'op', op });
      if (open.get(op.client) === op.call) open.delete(op.client);
      if (op.return !== null) now = Math.max(now, op.return);
      let next = now;
      for (const call of open.values()) next = Math.min(next, call);
      // Only forward: a line written a little out of clock order must not move the watermark back.
      if (next > watermark) {
        watermark = next;
        events.push({ kind: 'advance', watermark });
      }
      return;
    }
    if (line.trim() === '') return;
    const peek = JSON.parse(line) as LinePeek;
    if (peek.kind === 'invoke' && peek.client !== undefined && peek.call !== undefined) open.set(peek.client, peek.call);
    if (peek.kind === 'watch' && peek.response !== undefined && peek.id !== undefined) {
      const nth = responsesSeen.get(peek.id) ?? 0;
      responsesSeen.set(peek.id, nth + 1);
      slots.push({ event: events.length, id: peek.id, nth });
      // A placeholder, replaced below by the parsed response and its stream.
      events.push({ kind: 'advance', watermark: -Infinity });
    }
  });
  const history = parser.finish();
  const streams = new Map(history.watches.map((w) => [w.id, w]));
  for (const slot of slots) {
    const stream = streams.get(slot.id)!;
    now = Math.max(now, stream.responses[slot.nth]!.time);
    events[slot.event] = { kind: 'watch', response: stream.responses[slot.nth]!, stream: { id: stream.id, request: stream.request } };
  }
  // Invocations the run ended with in flight: finish() made them unknown-outcome operations.
  for (const op of history.operations) if (!pushed.has(op)) events.push({ kind: 'op', op });
  return { name, history, events, operations: history.operations.length, watchResponses: slots.length };
}

export interface ReplayRun {
  /** Time inside push, pushWatchResponse, advance and finish. */
  seconds: number;
  verdict: Verdict;
  inconclusiveReason: string | undefined;
  stats: LiveStats;
}

/** The live checker's options as the run set them (src/run/live-check.ts), from the history's meta. */
export function liveOptionsFor(history: History, resolveWindowMs = recordedResolveWindowMs): LiveCheckerOptions {
  const meta = history.meta;
  const options: LiveCheckerOptions = { resolveWindowMs };
  if (meta?.mode !== undefined) options.mode = meta.mode;
  if (meta?.prefix !== undefined) options.prefix = meta.prefix;
  if (meta?.initialRevision !== undefined) options.initialRevision = meta.initialRevision;
  return options;
}

/** Called every `progressEvery` events with the operations pushed and the seconds spent so far. */
export type ReplayProgress = (operations: number, seconds: number) => void;

const progressEvery = 4096;

/** One replay through a fresh LiveChecker. */
export function replayOnce(prepared: PreparedReplay, onProgress?: ReplayProgress): ReplayRun {
  const live = new LiveChecker(liveOptionsFor(prepared.history));
  const pushWatch: WatchPush = live.pushWatchResponse.bind(live);
  const events = prepared.events;
  let operations = 0;
  const started = process.hrtime.bigint();
  for (let i = 0; i < events.length; i++) {
    const e = events[i]!;
    if (e.kind === 'op') {
      live.push(e.op);
      operations++;
    } else if (e.kind === 'advance') live.advance(e.watermark);
    else pushWatch(e.response, e.stream);
    // Every few thousand events: a parent that kills a stuck replay still learns how far it got.
    if (onProgress !== undefined && i % progressEvery === progressEvery - 1) onProgress(operations, Number(process.hrtime.bigint() - started) / 1e9);
  }
  live.finish();
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return { seconds, verdict: live.verdict, inconclusiveReason: live.inconclusiveReason, stats: live.stats() };
}

export interface ReplayResult {
  name: string;
  mode: string;
  operations: number;
  watchResponses: number;
  reps: number;
  /** False when a repetition ran past the budget and was killed: then the figures are its progress. */
  finished: boolean;
  medianSeconds: number;
  opsPerSecond: number;
  /** Median over the repetitions of the time per operation (watch responses included in the time). */
  microsecondsPerOperation: number;
  lagP99Ms?: number;
  lagMaxMs?: number;
  resolved?: number;
  /** The verdict of every repetition, in order (they should all agree). */
  verdicts: Verdict[];
  inconclusiveReason?: string;
  /** When not finished: the operations pushed by the last progress report, and the budget it was killed at. */
  operationsDone?: number;
  budgetSeconds?: number;
}

export interface ReplaySummary {
  histories: ReplayResult[];
  /** Shared-mode time per operation over the median of the exclusive ones (issue #17 asks for at most 2). */
  sharedOverExclusive: number | undefined;
}


/** Replays one history `reps` times in this process (the child side of runReplayBench). */
export function replayHistory(name: string, file: string, reps: number, onProgress?: ReplayProgress): ReplayResult {
  const prepared = prepareReplay(name, readRecordedHistory(file));
  const runs: ReplayRun[] = [];
  for (let r = 0; r < reps; r++) runs.push(replayOnce(prepared, onProgress));
  const medianSeconds = median(runs.map((x) => x.seconds));
  const result: ReplayResult = {
    name,
    mode: prepared.history.meta?.mode ?? 'exclusive',
    operations: prepared.operations,
    watchResponses: prepared.watchResponses,
    reps,
    finished: true,
    medianSeconds,
    opsPerSecond: prepared.operations / medianSeconds,
    microsecondsPerOperation: (medianSeconds * 1e6) / prepared.operations,
    lagP99Ms: median(runs.map((x) => x.stats.lagP99Ms)),
    lagMaxMs: Math.max(...runs.map((x) => x.stats.lagMaxMs)),
    resolved: runs[0]!.stats.resolved,
    verdicts: runs.map((x) => x.verdict),
  };
  const reason = runs.find((x) => x.inconclusiveReason !== undefined)?.inconclusiveReason;
  if (reason !== undefined) result.inconclusiveReason = reason;
  return result;
}

/** What a killed child had printed last: `progress OPS SECONDS` lines on its stderr. */
function lastProgress(stderr: string): { operations: number; seconds: number } | undefined {
  const all = [...stderr.matchAll(/^progress (\d+) ([\d.]+)$/gm)];
  const last = all[all.length - 1];
  return last === undefined ? undefined : { operations: Number(last[1]), seconds: Number(last[2]) };
}

/**
 * Replays every recorded history `reps` times, each in a child process of its own (its memory is its
 * own, and one the checker cannot get through is killed after `budgetSeconds`, reported unfinished).
 */
export function runReplayBench(reps: number, budgetSeconds: number, log: (message: string) => void = () => {}): ReplaySummary {
  const histories: ReplayResult[] = [];
  const files = recordedHistoryFiles();
  for (const { name, file } of files) {
    const child = spawnSync(process.execPath, [...process.execArgv, scriptPath, '--file', file, '--reps', String(reps)], {
      encoding: 'utf8',
      maxBuffer: 1 << 26,
      timeout: budgetSeconds * 1000,
      killSignal: 'SIGKILL',
    });
    const line = child.stdout.split('\n').find((l) => l.startsWith('{'));
    let result: ReplayResult;
    if (child.status === 0 && line !== undefined) result = { ...(JSON.parse(line) as ReplayResult), name };
    else {
      const progress = lastProgress(child.stderr);
      const why = child.error?.message ?? (child.signal ? `killed by ${child.signal}` : `exit status ${String(child.status)}: ${child.stderr.slice(-500)}`);
      log(`replay ${name}: did not finish within ${budgetSeconds} s (${why})`);
      result = {
        name,
        mode: path.basename(name).startsWith('shared') ? 'shared' : 'exclusive',
        operations: NaN,
        watchResponses: NaN,
        reps,
        finished: false,
        medianSeconds: progress?.seconds ?? NaN,
        opsPerSecond: progress === undefined ? 0 : progress.operations / progress.seconds,
        microsecondsPerOperation: progress === undefined ? NaN : (progress.seconds * 1e6) / progress.operations,
        verdicts: [],
        operationsDone: progress?.operations ?? 0,
        budgetSeconds,
      };
    }
    histories.push(result);
    if (result.finished) {
      log(`replay ${name}: ${result.operations} ops, ${Math.round(result.opsPerSecond)} ops/s, lag p99 ${result.lagP99Ms?.toFixed(2)} ms, ${result.verdicts.join(',')}`);
    }
  }
  // Over the histories replayed to the end: an unfinished one has no time per operation to compare.
  const perOp = (mode: string): number[] => histories.filter((h) => h.mode === mode && h.finished).map((h) => h.microsecondsPerOperation);
  const exclusive = perOp('exclusive');
  const shared = perOp('shared');
  const sharedOverExclusive = exclusive.length > 0 && shared.length > 0 ? median(shared) / median(exclusive) : undefined;
  return { histories, sharedOverExclusive };
}

/** Table rows for bench/checker.ts's summary: a header of their own (label, rate, lag, verdict), then one per history. */
export function replayRows(summary: ReplaySummary): string[][] {
  const rows = summary.histories.map((h) => {
    if (!h.finished) {
      return [
        `replay ${h.name} (${h.mode}): NOT FINISHED in the budget`,
        `${Math.round(h.opsPerSecond).toLocaleString('en')} ops/s`,
        `last progress: ${(h.operationsDone ?? 0).toLocaleString('en')} ops in ${h.medianSeconds.toFixed(1)} s (killed at ${h.budgetSeconds ?? '?'} s)`,
        '-',
      ];
    }
    const verdicts = [...new Set(h.verdicts)].join('/');
    return [
      `replay ${h.name} (${h.mode}): ${h.operations.toLocaleString('en')} ops, median of ${h.reps}`,
      `${Math.round(h.opsPerSecond).toLocaleString('en')} ops/s`,
      `lag p99 ${(h.lagP99Ms ?? NaN).toFixed(2)} ms, ${h.microsecondsPerOperation.toFixed(1)} us/op`,
      h.inconclusiveReason === undefined ? verdicts : `${verdicts} (${h.inconclusiveReason})`,
    ];
  });
  rows.unshift(['replay (recorded histories)', 'ops/s', 'lag p99, time per op', 'verdict']);
  if (summary.sharedOverExclusive !== undefined) rows.push(['replay: shared / exclusive time per op (medians)', `${summary.sharedOverExclusive.toFixed(2)}x`, '', '']);
  return rows;
}

const scriptPath = new URL(import.meta.url).pathname;

/**
 * The child: `node bench/replay.ts --history NAME --reps N` prints one ReplayResult as JSON. `--file PATH`
 * replays any history file instead (gzipped or not).
 */
function childMain(): void {
  const { values } = parseArgs({ options: { history: { type: 'string' }, file: { type: 'string' }, reps: { type: 'string' } } });
  const entry =
    values.file !== undefined
      ? { name: path.basename(values.file).replace(/\.jsonl(\.gz)?$/, ''), file: values.file }
      : recordedHistoryFiles().find((h) => h.name === values.history);
  if (entry === undefined) throw new Error(`no recorded history named ${String(values.history)} in ${historiesDir}`);
  const reps = Math.max(1, intOption(values.reps, 5, 'reps'));
  const result = replayHistory(entry.name, entry.file, reps, (operations, seconds) => process.stderr.write(`progress ${operations} ${seconds}\n`));
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === scriptPath) childMain();
