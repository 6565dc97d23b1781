/**
 * The historical bug suite's pure parts (bench/bugs.ts runs it): each bug's spec
 * (examples/bugs/<etcd issue>/bug.json), what a run's verdict.json says was found, whether that catches
 * the bug (affected release) or passes (fixed release), and the table of rates.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { etcdFlagProblem } from '../src/local/runtime.ts';
import { checkNames } from '../src/run/metrics.ts';
import { median } from './options.ts';

/** A violation kind as the suite names them: `linearizability`, `staleRead`, `hashKV` or `watch:<property>`. */
export type ViolationKind = string;

export interface BugSpec {
  /** The etcd issue number (the folder's name). */
  issue: number;
  title: string;
  /** Members of the local cluster (`run --local --members`). */
  members: 1 | 3 | 5;
  /**
   * The release that has the bug and the first that fixed it (built by test/bin/build-release.sh). A
   * release written v3.X.Y+<patch> is built with test/bin/etcd-release/patches/<patch>.patch applied.
   */
  affected: string;
  fixed: string;
  /** The violation kinds that count as catching the bug (any of them). */
  expect: ViolationKind[];
  /** Extra etcd flags for every member (`run --local --etcd-flag`), e.g. `--snapshot-count=10`; absent: none. */
  etcdFlags?: string[];
  /** The bug's folder, holding run.yaml. */
  dir: string;
}

export class BugSpecError extends Error {
  override name = 'BugSpecError';
  readonly file: string;
  constructor(file: string, message: string) {
    super(`${file}: ${message}`);
    this.file = file;
  }
}

const releasePattern = /^v3\.\d+\.\d+(?:\+[A-Za-z][A-Za-z0-9]*)?$/;
// The watch properties the checker reports, from the run metrics' list (which the compiler keeps complete).
const watchProperties = new Set(checkNames.filter((name) => name.startsWith('watch_')).map((name) => name.slice('watch_'.length)));

function isKind(kind: string): boolean {
  if (kind === 'linearizability' || kind === 'staleRead' || kind === 'hashKV') return true;
  return kind.startsWith('watch:') && watchProperties.has(kind.slice('watch:'.length));
}

/** Parses and validates one bug.json; `dir` is its folder (named after the issue). */
export function parseBugSpec(text: string, file: string, dir: string): BugSpec {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new BugSpecError(file, `not JSON: ${(error as Error).message}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new BugSpecError(file, 'must be a JSON object');
  const o = raw as Record<string, unknown>;
  const known = new Set(['issue', 'title', 'members', 'affected', 'fixed', 'expect', 'etcdFlags']);
  for (const key of Object.keys(o)) if (!known.has(key)) throw new BugSpecError(file, `unknown field "${key}" (known: ${[...known].join(', ')})`);
  const issue = o['issue'];
  if (typeof issue !== 'number' || !Number.isSafeInteger(issue) || issue <= 0) throw new BugSpecError(file, '"issue" must be a positive integer (the etcd issue number)');
  if (path.basename(dir) !== String(issue)) throw new BugSpecError(file, `"issue" is ${issue} but the folder is ${path.basename(dir)}`);
  const title = o['title'];
  if (typeof title !== 'string' || title.trim() === '') throw new BugSpecError(file, '"title" must be a non-empty string');
  const members = o['members'];
  if (members !== 1 && members !== 3 && members !== 5) throw new BugSpecError(file, '"members" must be 1, 3 or 5');
  const release = (field: 'affected' | 'fixed'): string => {
    const value = o[field];
    if (typeof value !== 'string' || !releasePattern.test(value)) throw new BugSpecError(file, `"${field}" must be an etcd release like v3.5.4 (or v3.5.13+<patch>), got ${JSON.stringify(value)}`);
    return value;
  };
  const affected = release('affected');
  const fixed = release('fixed');
  if (affected === fixed) throw new BugSpecError(file, '"affected" and "fixed" name the same release');
  const expect = o['expect'];
  if (!Array.isArray(expect) || expect.length === 0) throw new BugSpecError(file, '"expect" must be a non-empty list of violation kinds');
  for (const kind of expect) {
    if (typeof kind !== 'string' || !isKind(kind)) throw new BugSpecError(file, `"expect": unknown violation kind ${JSON.stringify(kind)} (linearizability, staleRead, hashKV or watch:<property>)`);
  }
  const etcdFlags = o['etcdFlags'];
  if (etcdFlags !== undefined) {
    if (!Array.isArray(etcdFlags)) throw new BugSpecError(file, '"etcdFlags" must be a list of etcd flags such as "--snapshot-count=10"');
    for (const flag of etcdFlags) {
      const problem = typeof flag === 'string' ? etcdFlagProblem(flag) : `an etcd flag must be a string, got ${JSON.stringify(flag)}`;
      if (problem !== undefined) throw new BugSpecError(file, `"etcdFlags": ${problem}`);
    }
  }
  return { issue, title, members, affected, fixed, expect: expect as string[], ...(etcdFlags === undefined ? {} : { etcdFlags: etcdFlags as string[] }), dir };
}

/** Every bug under `root` (examples/bugs), by issue number; `only` picks some (an unknown one is an error). */
export function loadBugSuite(root: string, only: readonly number[] = []): BugSpec[] {
  const specs = readdirSync(root, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && /^\d+$/.test(entry.name))
    .map((entry) => {
      const dir = path.join(root, entry.name);
      const file = path.join(dir, 'bug.json');
      return parseBugSpec(readFileSync(file, 'utf8'), file, dir);
    })
    .sort((a, b) => a.issue - b.issue);
  const unknown = only.filter((issue) => !specs.some((spec) => spec.issue === issue));
  if (unknown.length > 0) throw new BugSpecError(root, `no bug ${unknown.join(', ')} (the suite has ${specs.map((s) => s.issue).join(', ')})`);
  return only.length === 0 ? specs : specs.filter((spec) => only.includes(spec.issue));
}

/** What one run's verdict.json (src/run/report.ts RunSummary) says: its phase and the violation kinds found. */
export interface RunFindings {
  phase: string;
  kinds: ViolationKind[];
  /** From the start of the run to the first violation the live checks saw. */
  firstViolationMs: number | undefined;
  reason: string | undefined;
}

/** Reads the fields the suite needs from a run summary; anything else in it is ignored. */
export function findingsOf(summary: unknown, file: string): RunFindings {
  if (typeof summary !== 'object' || summary === null) throw new BugSpecError(file, 'not a run summary (verdict.json)');
  const s = summary as {
    outcome?: { phase?: unknown; reason?: unknown };
    live?: { verdict?: unknown; firstViolationMs?: unknown };
    linearizability?: { verdict?: unknown; staleReadViolations?: unknown; reason?: unknown };
    watchViolations?: { property?: unknown }[];
    hashKv?: { equal?: unknown; compared?: unknown };
  };
  const phase = s.outcome?.phase;
  if (typeof phase !== 'string') throw new BugSpecError(file, 'the run summary has no outcome phase');
  const kinds = new Set<ViolationKind>();
  if (s.linearizability?.verdict === 'violation' || s.live?.verdict === 'violation') kinds.add('linearizability');
  if (typeof s.linearizability?.staleReadViolations === 'number' && s.linearizability.staleReadViolations > 0) kinds.add('staleRead');
  for (const v of s.watchViolations ?? []) if (typeof v.property === 'string') kinds.add(`watch:${v.property}`);
  // Members that could not all be asked compared nothing (older summaries have no `compared`: they compared).
  if (s.hashKv?.equal === false && s.hashKv.compared !== false) kinds.add('hashKV');
  const first = s.live?.firstViolationMs;
  const reason = typeof s.outcome?.reason === 'string' ? s.outcome.reason : typeof s.linearizability?.reason === 'string' ? s.linearizability.reason : undefined;
  return { phase, kinds: [...kinds].sort(), firstViolationMs: typeof first === 'number' ? first : undefined, reason };
}

/**
 * One run's result for the suite. On the affected release: `caught` (a violation of an expected kind),
 * `other` (violations, none expected), `missed` (passed) or `inconclusive`. On the fixed release: `passed`,
 * `violation` or `inconclusive`. `error`: the run did not produce a summary.
 */
export type RunResultKind = 'caught' | 'other' | 'missed' | 'passed' | 'violation' | 'inconclusive' | 'error';

export function classify(findings: RunFindings, spec: BugSpec, role: 'affected' | 'fixed'): RunResultKind {
  const violated = findings.phase === 'Failed' || findings.kinds.length > 0;
  if (role === 'fixed') {
    if (findings.phase === 'Passed' && findings.kinds.length === 0) return 'passed';
    return violated ? 'violation' : 'inconclusive';
  }
  if (findings.kinds.some((kind) => spec.expect.includes(kind))) return 'caught';
  if (violated) return 'other';
  return findings.phase === 'Passed' ? 'missed' : 'inconclusive';
}

export interface SuiteRun {
  issue: number;
  release: string;
  role: 'affected' | 'fixed';
  seed: number;
  result: RunResultKind;
  kinds: ViolationKind[];
  firstViolationMs?: number;
  reason?: string;
  report?: string;
}

/** One row of the table: a bug on one release. */
export interface ReleaseSummary {
  issue: number;
  release: string;
  role: 'affected' | 'fixed';
  runs: number;
  /** Runs that did what the role asks: caught (affected) or passed (fixed). */
  good: number;
  medianFirstViolationMs: number | undefined;
  kinds: ViolationKind[];
  /** The release could not be built (the build's error), so nothing ran. */
  buildError?: string;
}


export function summarizeRelease(issue: number, release: string, role: 'affected' | 'fixed', runs: readonly SuiteRun[]): ReleaseSummary {
  const mine = runs.filter((r) => r.issue === issue && r.release === release && r.role === role);
  const good = mine.filter((r) => r.result === (role === 'affected' ? 'caught' : 'passed')).length;
  const firsts = mine.filter((r) => r.result === 'caught' && r.firstViolationMs !== undefined).map((r) => r.firstViolationMs!);
  const kinds = [...new Set(mine.flatMap((r) => r.kinds))].sort();
  return { issue, release, role, runs: mine.length, good, medianFirstViolationMs: firsts.length === 0 ? undefined : median(firsts), kinds };
}

/** The issue's bar: caught on the affected release in at least 4 of 5 runs (80%), the fixed release passing every run. */
export function meetsBar(affected: ReleaseSummary, fixed: ReleaseSummary): boolean {
  if (affected.buildError !== undefined || fixed.buildError !== undefined) return false;
  return affected.runs > 0 && affected.good * 5 >= affected.runs * 4 && fixed.runs > 0 && fixed.good === fixed.runs;
}

const seconds = (ms: number | undefined): string => (ms === undefined ? '-' : `${(ms / 1000).toFixed(1)} s`);

/** The table `npm run bugs` prints: one line per bug, the affected release's figures then the fixed one's. */
export function formatTable(rows: readonly { spec: BugSpec; affected: ReleaseSummary; fixed: ReleaseSummary }[]): string {
  const header = ['bug', 'affected', 'runs', 'caught', 'first violation (median)', 'kinds seen', 'fixed', 'runs', 'passed', 'bar'];
  const cellsOf = ({ spec, affected, fixed }: (typeof rows)[number]): string[] => [
    String(spec.issue),
    affected.release,
    affected.buildError === undefined ? String(affected.runs) : 'build failed',
    `${affected.good}/${affected.runs}`,
    seconds(affected.medianFirstViolationMs),
    affected.kinds.join(' ') || '-',
    fixed.release,
    fixed.buildError === undefined ? String(fixed.runs) : 'build failed',
    `${fixed.good}/${fixed.runs}`,
    meetsBar(affected, fixed) ? 'met' : 'NOT met',
  ];
  const table = [header, ...rows.map(cellsOf)];
  const widths = header.map((_, c) => Math.max(...table.map((r) => r[c]!.length)));
  return table.map((r) => r.map((cell, c) => cell.padEnd(widths[c]!)).join('  ').trimEnd()).join('\n');
}
