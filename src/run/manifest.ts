/**
 * Reads a RobustnessRun manifest (docs/robustnessrun.md) into the typed spec of src/domain/run-spec.ts,
 * filling defaults. This is the boundary where YAML becomes domain types, so it is strict: unknown fields,
 * wrong types and out-of-range values are rejected, and every problem found is reported at once as
 * `FILE:LINE:COLUMN: PATH: problem` so a user can fix a manifest in one pass instead of one error per run.
 */
import { Cron } from 'croner';
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument } from 'yaml';
import type { Document, Node, YAMLError, YAMLMap } from 'yaml';
import { formatDuration, parseDuration } from '../duration.ts';
import { faultNames, targetRules } from '../domain/faults.ts';
import type { FaultChoice, FaultName, FaultsSpec, TargetRule } from '../domain/faults.ts';
import type { ClusterMode } from '../domain/history.ts';
import { scheduleKinds } from '../domain/run-resource.ts';
import {
  etcdOperationKinds,
  kubernetesOperationKinds,
  profileNames,
  robustnessApiVersion,
} from '../domain/run-spec.ts';
import type {
  ChecksSpec,
  OperationKind,
  ProfileName,
  RobustnessRun,
  RobustnessRunSpec,
  ScheduleSpec,
  SelfTestSpec,
  TrafficSpec,
  WatchReopenSpec,
  WatchSpec,
} from '../domain/run-spec.ts';
import { checkFaultParam, defaultFaultChoices, faultCatalog, faultDefinition, isFaultName, validateFaultParams } from '../faults/catalog.ts';

export interface ManifestIssue {
  file: string | undefined;
  /** 1-based; undefined only for runs that were not read from text (defaultRobustnessRun). */
  line: number | undefined;
  column: number | undefined;
  /** Dotted path of the field, e.g. `spec.traffic.qps.target`; empty for YAML syntax errors. */
  path: string;
  problem: string;
}

export function formatManifestIssue(issue: ManifestIssue): string {
  const location = [issue.file, issue.line, issue.column].filter((part) => part !== undefined).join(':');
  return [location, issue.path, issue.problem].filter((part) => part !== '').join(': ');
}

/**
 * Every problem of a manifest, one per line of the message. `file`, `line`, `column`, `path` and
 * `problem` describe the first one (in document order) for callers that only show one.
 */
export class ManifestError extends Error {
  override name = 'ManifestError';
  readonly file: string | undefined;
  readonly line: number | undefined;
  readonly column: number | undefined;
  readonly path: string;
  readonly problem: string;
  readonly issues: readonly ManifestIssue[];
  constructor(issues: readonly [ManifestIssue, ...ManifestIssue[]]) {
    super(issues.map(formatManifestIssue).join('\n'));
    const first = issues[0];
    this.file = first.file;
    this.line = first.line;
    this.column = first.column;
    this.path = first.path;
    this.problem = first.problem;
    this.issues = issues;
  }
}

export interface ManifestOptions {
  file?: string;
  /** Mode of a manifest that does not say: shared unless the caller created the cluster itself. */
  defaultMode: ClusterMode;
}

const clusterModes: readonly ClusterMode[] = ['exclusive', 'shared'];
const maxSeed = 2 ** 31 - 1;

// ---------------------------------------------------------------------------------------------------
// Reading YAML nodes with their positions

interface Context {
  doc: Document | undefined;
  lines: LineCounter | undefined;
  file: string | undefined;
  issues: ManifestIssue[];
}

/** One `name: value` of a mapping; `value` is null for a key written without one (`? name`). */
interface Entry {
  path: string;
  key: Node | undefined;
  value: Node | null;
}

/** A mapping of the manifest whose unknown fields have already been reported. */
interface Section {
  path: string;
  /** Where a missing field of this section is reported: its key in the parent, or the mapping itself. */
  at: Node | undefined;
  present: boolean;
  entries: ReadonlyMap<string, Entry>;
}

function join(path: string, name: string): string {
  return path === '' ? name : `${path}.${name}`;
}

function emptySection(path: string, at: Node | undefined): Section {
  return { path, at, present: false, entries: new Map() };
}

/** `node` undefined means the start of the text: an empty manifest still has a line to point at. */
function report(ctx: Context, node: Node | undefined, path: string, problem: string): void {
  const offset = node === undefined ? 0 : node.range?.[0];
  const pos = offset === undefined || ctx.lines === undefined ? undefined : ctx.lines.linePos(offset);
  ctx.issues.push({ file: ctx.file, line: pos?.line, column: pos?.col, path, problem });
}

function resolve(ctx: Context, node: Node | null): Node | null {
  if (node === null || !isAlias(node)) return node;
  return (ctx.doc === undefined ? undefined : node.resolve(ctx.doc)) ?? null;
}

function isNull(node: Node | null): boolean {
  return node === null || (isScalar(node) && node.value === null);
}

/** An entry that is absent or written as `null`/empty, which Kubernetes also treats as unset. */
function isAbsent(ctx: Context, entry: Entry | undefined): boolean {
  return entry === undefined || isNull(resolve(ctx, entry.value));
}

/** Stand-in for a mapping or list where a scalar was expected, so messages can say what was found. */
class Collection {
  readonly kind: string;
  constructor(kind: string) {
    this.kind = kind;
  }
}

function describe(value: unknown): string {
  if (value instanceof Collection) return value.kind;
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return String(value);
  return `a value of type ${typeof value}`;
}

function scalarOf(ctx: Context, node: Node | null): unknown {
  const resolved = resolve(ctx, node);
  if (isMap(resolved)) return new Collection('a mapping');
  if (isSeq(resolved)) return new Collection('a list');
  return isScalar(resolved) ? resolved.value : null;
}

function closest(name: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of candidates) {
    const d = editDistance(name.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [candidate, d];
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min(previous[j]! + 1, current[j - 1]! + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length]!;
}

function unknownField(name: string, allowed: readonly string[]): string {
  const guess = closest(name, allowed);
  if (guess !== undefined) return `unknown field, did you mean "${guess}"?`;
  return allowed.length === 0 ? 'unknown field (this section has no fields)' : `unknown field (allowed: ${allowed.join(', ')})`;
}

interface SectionRules {
  /** 'any' for mappings whose keys are data (labels). */
  allowed: readonly string[] | 'any';
  /** Fields a later version will accept: a clearer message than "unknown field". */
  reserved?: readonly string[];
  /** Replaces the "unknown field" message, for sections whose keys are data (weights). */
  unknown?: (name: string) => string;
}

function collectEntries(ctx: Context, map: YAMLMap, path: string, rules: SectionRules): Map<string, Entry> {
  const entries = new Map<string, Entry>();
  for (const pair of map.items) {
    const key = pair.key as Node | null;
    const value = pair.value as Node | null;
    const name = scalarOf(ctx, key);
    const keyNode = key ?? undefined;
    if (typeof name !== 'string') {
      report(ctx, keyNode ?? value ?? undefined, path, `field names must be strings, got ${describe(name)}`);
      continue;
    }
    const fieldPath = join(path, name);
    const allowed = rules.allowed;
    if (rules.reserved?.includes(name) === true) {
      report(ctx, keyNode, fieldPath, 'not supported by this version yet');
    } else if (allowed !== 'any' && !allowed.includes(name)) {
      report(ctx, keyNode, fieldPath, rules.unknown === undefined ? unknownField(name, allowed) : rules.unknown(name));
    } else {
      entries.set(name, { path: fieldPath, key: keyNode, value });
    }
  }
  return entries;
}

/** Reads an optional mapping; a wrong type is reported and read as an empty section so defaults apply. */
function section(ctx: Context, entry: Entry | undefined, path: string, at: Node | undefined, rules: SectionRules): Section {
  if (entry === undefined || isAbsent(ctx, entry)) return emptySection(path, entry?.key ?? at);
  const map = resolve(ctx, entry.value);
  if (map === null || !isMap(map)) {
    report(ctx, entry.value ?? entry.key, path, `must be a mapping, got ${describe(scalarOf(ctx, entry.value))}`);
    return emptySection(path, entry.key);
  }
  return { path, at: entry.key ?? map, present: true, entries: collectEntries(ctx, map, path, rules) };
}

function child(ctx: Context, parent: Section, name: string, rules: SectionRules): Section {
  return section(ctx, parent.entries.get(name), join(parent.path, name), parent.at, rules);
}

function requireSection(ctx: Context, parent: Section, name: string, rules: SectionRules): Section {
  const result = child(ctx, parent, name, rules);
  const entry = parent.entries.get(name);
  if (!result.present && isAbsent(ctx, entry)) report(ctx, entry?.key ?? parent.at, result.path, 'is required');
  return result;
}

// ---------------------------------------------------------------------------------------------------
// Rules for scalar fields: each returns the value or a Reject saying what was expected

class Reject {
  readonly problem: string;
  constructor(problem: string) {
    this.problem = problem;
  }
}

type Rule<T> = (value: unknown) => T | Reject;

function expected(what: string, value: unknown, hint = ''): Reject {
  return new Reject(`must be ${what}, got ${describe(value)}${hint}`);
}

/** Quoted numbers are a type error, as in the CRD's schema: accepting them here would let a manifest pass locally and fail on kubectl apply. */
function quotedNumberHint(value: unknown): string {
  return typeof value === 'string' && value.trim() !== '' && Number.isFinite(Number(value)) ? ' (write the number without quotes)' : '';
}

function numberRule(what: string, accept: (n: number) => boolean): Rule<number> {
  return (value) =>
    typeof value === 'number' && Number.isFinite(value) && accept(value) ? value : expected(what, value, quotedNumberHint(value));
}

function integerIn(min: number, max: number): Rule<number> {
  return numberRule(`an integer between ${min} and ${max}`, (n) => Number.isInteger(n) && n >= min && n <= max);
}

const booleanRule: Rule<boolean> = (value) => (typeof value === 'boolean' ? value : expected('true or false', value));

function oneOf<T extends string>(allowed: readonly T[]): Rule<T> {
  return (value) =>
    typeof value === 'string' && (allowed as readonly string[]).includes(value)
      ? (value as T)
      : expected(`one of ${allowed.join(', ')}`, value);
}

function stringRule(what: string, accept: (s: string) => boolean): Rule<string> {
  return (value) => (typeof value === 'string' && accept(value) ? value : expected(what, value));
}

const dnsLabel = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const dnsSubdomain = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

const nameRule = stringRule(
  'a name of lowercase letters, digits, "-" and "." (starting and ending with a letter or digit, at most 253 characters)',
  (s) => s.length <= 253 && dnsSubdomain.test(s),
);
const namespaceRule = stringRule(
  'a namespace name of lowercase letters, digits and "-" (at most 63 characters)',
  (s) => s.length <= 63 && dnsLabel.test(s),
);


function durationRule(min: number, max = Number.MAX_SAFE_INTEGER, bounds?: string): Rule<number> {
  const range = bounds ?? (max === Number.MAX_SAFE_INTEGER ? `at least ${formatDuration(min)}` : `between ${formatDuration(min)} and ${formatDuration(max)}`);
  return (value) => {
    // A bare number has no unit; guessing seconds or milliseconds would silently be wrong for someone.
    if (typeof value !== 'string') return expected(`a duration string such as "30s"`, value, typeof value === 'number' ? ` (write e.g. "${value}s")` : '');
    let parsed: number;
    try {
      parsed = parseDuration(value);
    } catch {
      return expected('a duration such as 500ms, 30s, 2m or 1h30m', value);
    }
    // Decimal fractions are not exact in binary ("0.007s" is 7.000000000000001 ms): within a nanosecond of a
    // whole millisecond is that millisecond, as for Kubernetes (whose durations count nanoseconds).
    const ms = Math.abs(parsed - Math.round(parsed)) < 1e-6 ? Math.round(parsed) : parsed;
    if (!Number.isSafeInteger(ms)) return expected('a whole number of milliseconds', value);
    return ms >= min && ms <= max ? ms : expected(`a duration ${range}`, value);
  };
}

function read<T>(ctx: Context, entry: Entry | undefined, rule: Rule<T>): T | undefined {
  if (entry === undefined || isAbsent(ctx, entry)) return undefined;
  const result = rule(scalarOf(ctx, entry.value));
  if (!(result instanceof Reject)) return result;
  report(ctx, entry.value ?? entry.key, entry.path, result.problem);
  return undefined;
}

function readRequired<T>(ctx: Context, parent: Section, name: string, rule: Rule<T>): T | undefined {
  const entry = parent.entries.get(name);
  if (parent.present && isAbsent(ctx, entry)) report(ctx, entry?.key ?? parent.at, join(parent.path, name), 'is required');
  return read(ctx, entry, rule);
}

function field<T>(ctx: Context, s: Section, name: string, rule: Rule<T>): T | undefined {
  return read(ctx, s.entries.get(name), rule);
}

// ---------------------------------------------------------------------------------------------------
// The manifest, section by section

/**
 * Every field of a RobustnessRun manifest, by the dotted path of the mapping that holds it (`[]` marks the
 * items of a list). The parser allows exactly these (weights narrow to the profile's operation kinds, and
 * params to the fault's parameters), and test/unit/crd-drift.test.ts checks that the RobustnessRun CRD's
 * schema has the same fields, so a field added here and not to src/controller/api/schema.ts (or the other
 * way round) fails a test.
 */
export const manifestFields = {
  '': ['apiVersion', 'kind', 'metadata', 'spec'],
  metadata: ['name', 'namespace', 'labels', 'annotations'],
  spec: [
    'clusterRef',
    'schedule',
    'duration',
    'timeout',
    'mode',
    'prefix',
    'seed',
    'traffic',
    'watch',
    'checks',
    'abortOnViolation',
    'selfTest',
    'faults',
  ],
  'spec.clusterRef': ['name', 'namespace'],
  'spec.schedule': ['kind', 'cron', 'window', 'historyLimit', 'suspend'],
  'spec.traffic': ['profile', 'weights', 'keys', 'valueSize', 'qps', 'clients', 'requestTimeout', 'compaction', 'defragment'],
  'spec.traffic.weights': [...new Set([...etcdOperationKinds, ...kubernetesOperationKinds])],
  'spec.traffic.qps': ['target', 'burst', 'min'],
  'spec.traffic.clients': ['perMember', 'spread'],
  'spec.traffic.compaction': ['enabled', 'interval', 'allowShared'],
  'spec.traffic.defragment': ['enabled', 'interval', 'allowShared'],
  'spec.watch': ['enabled', 'progressNotify', 'progressInterval', 'perMember', 'reopen'],
  'spec.watch.reopen': ['interval', 'lifetime', 'revisionOffset'],
  'spec.watch.reopen.revisionOffset': ['min', 'max'],
  'spec.checks': ['linearizability', 'watch', 'hashKV'],
  'spec.selfTest': ['staleReads'],
  'spec.selfTest.staleReads': ['member'],
  'spec.faults': ['enabled', 'allowShared', 'maxConcurrentFaults', 'interval', 'duration', 'recoveryTimeout', 'tolerateFailures', 'choices'],
  'spec.faults.interval': ['min', 'max'],
  'spec.faults.duration': ['min', 'max'],
  'spec.faults.choices[]': ['fault', 'weight', 'target', 'member', 'params'],
  'spec.faults.choices[].params': [...new Set(faultCatalog.flatMap((definition) => Object.keys(definition.params)))].sort(),
} as const satisfies Record<string, readonly string[]>;

function readMetadata(ctx: Context, s: Section): RobustnessRun['metadata'] {
  // The empty name never escapes: a missing or invalid name is an issue, so parsing throws.
  const name = readRequired(ctx, s, 'name', nameRule) ?? '';
  const namespace = field(ctx, s, 'namespace', namespaceRule);
  // Labels and annotations are accepted so a manifest written for kubectl works here too; a run has no use for them.
  for (const name of ['labels', 'annotations']) {
    const map = child(ctx, s, name, { allowed: 'any' });
    for (const entry of map.entries.values()) read(ctx, entry, stringRule('a string', () => true));
  }
  return namespace === undefined ? { name } : { name, namespace };
}

function readClusterRef(ctx: Context, spec: Section): RobustnessRunSpec['clusterRef'] {
  const s = child(ctx, spec, 'clusterRef', { allowed: manifestFields['spec.clusterRef'] });
  if (!s.present) return undefined;
  const name = readRequired(ctx, s, 'name', nameRule) ?? '';
  const namespace = field(ctx, s, 'namespace', namespaceRule);
  return namespace === undefined ? { name } : { name, namespace };
}

// ---------------------------------------------------------------------------------------------------
// spec.schedule

/**
 * The five fields of a cron expression: the values each allows (a regular expression valid in both
 * JavaScript and Go's RE2, as the CRD's pattern is checked by the API server) and the largest step.
 * What croner accepts beyond this (`?`, `L`, `W`, `#`, seconds, `@daily`) is refused, so the file form and
 * the CRD accept the same expressions.
 */
const cronFields = [
  { name: 'minute', values: '[0-5]?[0-9]', steps: '[1-9]|[1-5][0-9]|60', allowed: '0-59' },
  { name: 'hour', values: '[01]?[0-9]|2[0-3]', steps: '[1-9]|1[0-9]|2[0-4]', allowed: '0-23' },
  { name: 'day of month', values: '0?[1-9]|[12][0-9]|3[01]', steps: '[1-9]|[12][0-9]|3[01]', allowed: '1-31' },
  {
    name: 'month',
    values: '0?[1-9]|1[0-2]|JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC|jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec',
    steps: '[1-9]|1[0-2]',
    allowed: '1-12 or JAN-DEC',
  },
  {
    name: 'day of week',
    values: '[0-7]|SUN|MON|TUE|WED|THU|FRI|SAT|sun|mon|tue|wed|thu|fri|sat',
    steps: '[1-7]',
    allowed: '0-7 (0 and 7 are Sunday) or SUN-SAT',
  },
] as const;

/** One field: a list of `*`, `*\/step`, `value`, `value-value` or `value-value/step`. */
function cronFieldPattern(values: string, steps: string): string {
  const value = `(${values})`;
  const step = `(/(${steps}))?`;
  const item = `(\\*${step}|${value}(-${value}${step})?)`;
  return `${item}(,${item})*`;
}

/** The pattern of spec.schedule.cron, in the CRD and here: five fields separated by spaces. */
export const cronPattern = `^${cronFields.map((f) => cronFieldPattern(f.values, f.steps)).join(' +')}$`;

const cronFieldRegExps = cronFields.map((f) => new RegExp(`^${cronFieldPattern(f.values, f.steps)}$`));
const cronExample = 'such as "0 3 * * *" (minute hour day-of-month month day-of-week, UTC)';

const cronRule: Rule<string> = (value) => {
  if (typeof value !== 'string') return expected(`a five-field cron expression ${cronExample}`, value);
  const parts = value.split(/ +/);
  if (parts.length !== 5) return expected(`a cron expression of five fields ${cronExample}`, value);
  for (const [i, part] of parts.entries()) {
    const spec = cronFields[i]!;
    if (!cronFieldRegExps[i]!.test(part)) {
      return new Reject(
        `the ${spec.name} field of ${describe(value)} must be *, a value (${spec.allowed}), a range (a-b), a list (a,b) or a step (*/n, a-b/n), got ${describe(part)}`,
      );
    }
  }
  let next: Date | null;
  try {
    next = new Cron(value, { paused: true, timezone: 'UTC' }).nextRun();
  } catch (error) {
    return new Reject(`${describe(value)} is not a valid cron expression: ${(error as Error).message.replace(/^CronPattern: /, '')}`);
  }
  if (next === null) return new Reject(`${describe(value)} never fires (no date matches it)`);
  return value;
};

function readSchedule(ctx: Context, spec: Section): ScheduleSpec {
  const s = child(ctx, spec, 'schedule', { allowed: manifestFields['spec.schedule'] });
  const kindEntry = s.entries.get('kind');
  const givenKind = field(ctx, s, 'kind', oneOf(scheduleKinds));
  const kind = givenKind ?? 'once';
  const cron = field(ctx, s, 'cron', cronRule);
  const windowMs = field(ctx, s, 'window', durationRule(1));
  // A kind that was itself invalid says nothing about which of cron and window belong.
  if (givenKind !== undefined || isAbsent(ctx, kindEntry)) {
    for (const [name, owner, what] of [
      ['cron', 'cron', 'a five-field cron expression such as "0 3 * * *"'],
      ['window', 'continuous', 'the duration of each run, such as "10m"'],
    ] as const) {
      const entry = s.entries.get(name);
      if (kind === owner && isAbsent(ctx, entry)) {
        report(ctx, kindEntry?.value ?? s.at, join(s.path, name), `is required with kind: ${owner} (${what})`);
      } else if (kind !== owner && !isAbsent(ctx, entry)) {
        report(ctx, entry?.key, join(s.path, name), `only allowed with kind: ${owner} (this schedule is ${kind})`);
      }
    }
  }
  return {
    kind,
    ...(cron === undefined || kind !== 'cron' ? {} : { cron }),
    ...(windowMs === undefined || kind !== 'continuous' ? {} : { windowMs }),
    historyLimit: field(ctx, s, 'historyLimit', integerIn(1, 100)) ?? 10,
    suspend: field(ctx, s, 'suspend', booleanRule) ?? false,
  };
}

const prefixRule = stringRule('a key prefix that starts and ends with "/" and is not "/" alone', (s) => s.length > 1 && s.startsWith('/') && s.endsWith('/'));

function kindsOf(profile: ProfileName): readonly OperationKind[] {
  return profile === 'etcd' ? etcdOperationKinds : kubernetesOperationKinds;
}

function otherProfile(profile: ProfileName): ProfileName {
  return profile === 'etcd' ? 'kubernetes' : 'etcd';
}

function isOperationKind(name: string, kinds: readonly OperationKind[]): name is OperationKind {
  return (kinds as readonly string[]).includes(name);
}

/** `profile` is undefined when it was itself invalid: kinds cannot be judged then, only the numbers. */
function readWeights(ctx: Context, traffic: Section, profile: ProfileName | undefined): TrafficSpec['weights'] {
  const kinds = profile === undefined ? [...etcdOperationKinds, ...kubernetesOperationKinds] : kindsOf(profile);
  const unknown = (name: string): string => {
    const list = profile === undefined ? `allowed: ${kinds.join(', ')}` : `allowed for the ${profile} profile: ${kinds.join(', ')}`;
    if (profile !== undefined && isOperationKind(name, kindsOf(otherProfile(profile)))) {
      return `"${name}" is an operation of the ${otherProfile(profile)} profile, not ${profile} (${list})`;
    }
    return `unknown operation kind (${list})`;
  };
  const s = child(ctx, traffic, 'weights', { allowed: kinds, unknown });
  const weights: Partial<Record<OperationKind, number>> = {};
  for (const [name, entry] of s.entries) {
    const weight = read(ctx, entry, numberRule('a number >= 0', (n) => n >= 0));
    if (weight !== undefined && isOperationKind(name, kinds)) weights[name] = weight;
  }
  const named = Object.keys(weights).length;
  if (profile !== undefined && named === kinds.length && Object.values(weights).every((w) => w === 0)) {
    report(ctx, s.at, s.path, 'every operation kind has weight 0: at least one must be positive');
  }
  return weights;
}

function readQps(ctx: Context, traffic: Section, mode: ClusterMode): TrafficSpec['qps'] {
  const s = child(ctx, traffic, 'qps', { allowed: manifestFields['spec.traffic.qps'] });
  const given = field(ctx, s, 'target', numberRule('a positive number', (n) => n > 0));
  // Probing a production cluster must be gentle unless the user asks for more.
  const target = given ?? (mode === 'exclusive' ? 200 : 10);
  const targetValid = given !== undefined || isAbsent(ctx, s.entries.get('target'));
  const burst = field(ctx, s, 'burst', numberRule('a number >= 1', (n) => n >= 1)) ?? Math.max(1, target);
  const minRule = targetValid
    ? numberRule(`a number between 0 and qps.target (${target})`, (n) => n >= 0 && n <= target)
    : numberRule('a number >= 0', (n) => n >= 0);
  const min = field(ctx, s, 'min', minRule) ?? Math.floor(target / 2);
  return { target, burst, min };
}

function readClients(ctx: Context, traffic: Section): TrafficSpec['clients'] {
  const s = child(ctx, traffic, 'clients', { allowed: manifestFields['spec.traffic.clients'] });
  const perMember = field(ctx, s, 'perMember', integerIn(0, 64));
  const spread = field(ctx, s, 'spread', integerIn(0, 64));
  const valid = (name: string, value: number | undefined): boolean => value !== undefined || isAbsent(ctx, s.entries.get(name));
  const clients = { perMember: perMember ?? 2, spread: spread ?? 2 };
  if (valid('perMember', perMember) && valid('spread', spread) && clients.perMember + clients.spread < 1) {
    report(ctx, s.at, s.path, 'perMember + spread must be at least 1: a run without clients records nothing');
  }
  return clients;
}

interface MaintenanceDefaults {
  enabled: boolean;
  intervalMs: number;
  /** Why the operation must not run against a shared cluster without consent. */
  sharedRisk: string;
}

function readMaintenance(
  ctx: Context,
  traffic: Section,
  name: 'compaction' | 'defragment',
  mode: ClusterMode,
  defaults: MaintenanceDefaults,
): TrafficSpec['compaction'] {
  const s = child(ctx, traffic, name, { allowed: manifestFields[`spec.traffic.${name}`] });
  const enabled = field(ctx, s, 'enabled', booleanRule);
  const intervalMs = field(ctx, s, 'interval', durationRule(100)) ?? defaults.intervalMs;
  const allowShared = field(ctx, s, 'allowShared', booleanRule) ?? false;
  const permitted = mode === 'exclusive' || allowShared;
  if (enabled === true && !permitted) {
    const entry = s.entries.get('enabled');
    report(ctx, entry?.value ?? undefined, `${s.path}.enabled`, `${defaults.sharedRisk}; set allowShared: true to allow it`);
  }
  // A profile default never turns on something that touches other clients of a shared cluster.
  return { enabled: enabled ?? (defaults.enabled && permitted), intervalMs, allowShared };
}

function readTraffic(ctx: Context, spec: Section, mode: ClusterMode): TrafficSpec {
  const s = child(ctx, spec, 'traffic', { allowed: manifestFields['spec.traffic'] });
  const profileEntry = s.entries.get('profile');
  const givenProfile = field(ctx, s, 'profile', oneOf(profileNames));
  const profileValid = givenProfile !== undefined || isAbsent(ctx, profileEntry);
  const profile = givenProfile ?? 'etcd';
  return {
    profile,
    weights: readWeights(ctx, s, profileValid ? profile : undefined),
    keys: field(ctx, s, 'keys', integerIn(1, 100_000)) ?? (profile === 'kubernetes' ? 50 : 10),
    valueSize: field(ctx, s, 'valueSize', integerIn(8, 1_048_576)) ?? 32,
    qps: readQps(ctx, s, mode),
    clients: readClients(ctx, s),
    requestTimeoutMs: field(ctx, s, 'requestTimeout', durationRule(10, 60_000)) ?? 500,
    compaction: readMaintenance(ctx, s, 'compaction', mode, {
      enabled: profile === 'kubernetes',
      intervalMs: 10_000,
      sharedRisk: 'compaction rewrites history for every client of a shared cluster',
    }),
    defragment: readMaintenance(ctx, s, 'defragment', mode, {
      enabled: false,
      intervalMs: 30_000,
      sharedRisk: 'defragmentation stalls every client of a member of a shared cluster while it runs',
    }),
  };
}

function readWatch(ctx: Context, spec: Section): WatchSpec {
  const s = child(ctx, spec, 'watch', { allowed: manifestFields['spec.watch'] });
  return {
    enabled: field(ctx, s, 'enabled', booleanRule) ?? true,
    progressNotify: field(ctx, s, 'progressNotify', booleanRule) ?? true,
    progressIntervalMs: field(ctx, s, 'progressInterval', durationRule(100)) ?? 1000,
    perMember: field(ctx, s, 'perMember', booleanRule) ?? true,
    ...readReopen(ctx, s),
  };
}

/** Defaults of `reopen: {}`: etcd's robustness traffic draws its watch offsets in [-100, 100]. */
export const watchReopenDefaults = { intervalMs: 1000, lifetimeMs: 5000, revisionOffset: { min: -100, max: 100 } } as const;

/** The largest revision offset either way: far enough for any scenario, small enough to stay a number etcd takes. */
const maxRevisionOffset = 1_000_000;

function readReopen(ctx: Context, watch: Section): { reopen?: WatchReopenSpec } {
  const s = child(ctx, watch, 'reopen', { allowed: manifestFields['spec.watch.reopen'] });
  if (!s.present) return {};
  const offsets = child(ctx, s, 'revisionOffset', { allowed: manifestFields['spec.watch.reopen.revisionOffset'] });
  const offsetRule = integerIn(-maxRevisionOffset, maxRevisionOffset);
  const min = field(ctx, offsets, 'min', offsetRule);
  const max = field(ctx, offsets, 'max', offsetRule);
  if (min !== undefined && max !== undefined && min > max) {
    const maxEntry = offsets.entries.get('max');
    report(ctx, maxEntry?.value ?? undefined, join(offsets.path, 'max'), `must not be below min (${min}), got ${max}`);
  }
  const defaults = watchReopenDefaults.revisionOffset;
  return {
    reopen: {
      intervalMs: field(ctx, s, 'interval', durationRule(10, 3_600_000)) ?? watchReopenDefaults.intervalMs,
      lifetimeMs: field(ctx, s, 'lifetime', durationRule(100, 3_600_000)) ?? watchReopenDefaults.lifetimeMs,
      // A bound left out keeps its default unless that would put min above max (as the fault ranges do).
      revisionOffset: { min: min ?? Math.min(defaults.min, max ?? defaults.min), max: max ?? Math.max(defaults.max, min ?? defaults.max) },
    },
  };
}

function readChecks(ctx: Context, spec: Section): ChecksSpec {
  const s = child(ctx, spec, 'checks', { allowed: manifestFields['spec.checks'] });
  const linearizability = field(ctx, s, 'linearizability', booleanRule);
  const watch = field(ctx, s, 'watch', booleanRule);
  if (linearizability === false && watch === false) {
    report(ctx, s.at, s.path, 'at least one of linearizability and watch must be true: a run that checks nothing proves nothing');
  }
  return { linearizability: linearizability ?? true, watch: watch ?? true, hashKV: field(ctx, s, 'hashKV', booleanRule) ?? true };
}

function readSelfTest(ctx: Context, spec: Section): SelfTestSpec | undefined {
  const s = child(ctx, spec, 'selfTest', { allowed: manifestFields['spec.selfTest'] });
  const entry = s.entries.get('staleReads');
  if (entry === undefined) return undefined;
  // `staleReads:` alone reads as null, which would silently mean "off" to Kubernetes.
  if (isAbsent(ctx, entry)) {
    report(ctx, entry.key, entry.path, 'write staleReads: {} to enable the stale-reads self-test (an empty value means unset)');
    return undefined;
  }
  const stale = section(ctx, entry, entry.path, s.at, { allowed: manifestFields['spec.selfTest.staleReads'] });
  if (!stale.present) return undefined;
  const member = field(ctx, stale, 'member', stringRule('a member name', (m) => m !== ''));
  return { staleReads: member === undefined ? {} : { member } };
}

// ---------------------------------------------------------------------------------------------------
// spec.faults

/** Defaults of `faults: {}` (and of the fields a faults section leaves out). */
export const faultDefaults = {
  maxConcurrentFaults: 1,
  intervalMs: { min: 3000, max: 6000 },
  durationMs: { min: 1000, max: 3000 },
  recoveryTimeoutMs: 30_000,
} as const;

/** The maxConcurrentFaults of the built-in run (defaultRobustnessRun, exclusive mode). */
export const builtInMaxConcurrentFaults = 2;

function defaultChoice(fault: FaultName): FaultChoice {
  const definition = faultDefinition(fault);
  const validated = validateFaultParams(fault, {});
  if (!('params' in validated)) throw new Error(`unreachable: the catalog's defaults of ${fault} are invalid: ${validated.problem}`);
  return { fault, weight: 1, target: definition.defaultTarget, params: validated.params };
}

/** What `faults: {}` means, with another maxConcurrentFaults if given. */
export function defaultFaultsSpec(maxConcurrentFaults: number = faultDefaults.maxConcurrentFaults): FaultsSpec {
  return {
    choices: defaultFaultChoices.map(defaultChoice),
    maxConcurrentFaults,
    intervalMs: { ...faultDefaults.intervalMs },
    durationMs: { ...faultDefaults.durationMs },
    recoveryTimeoutMs: faultDefaults.recoveryTimeoutMs,
  };
}

const faultRule: Rule<FaultName> = (value) => {
  if (typeof value === 'string' && isFaultName(value)) return value;
  const guess = typeof value === 'string' ? closest(value, faultNames) : undefined;
  return expected(`one of ${faultNames.join(', ')}`, value, guess === undefined ? '' : ` (did you mean "${guess}"?)`);
};

function targetRule(fault: FaultName | undefined): Rule<TargetRule> {
  const allowed = fault === undefined ? targetRules : faultDefinition(fault).allowedTargets;
  return (value) => {
    if (typeof value === 'string' && (allowed as readonly string[]).includes(value)) return value as TargetRule;
    if (fault !== undefined && typeof value === 'string' && (targetRules as readonly string[]).includes(value)) {
      return new Reject(`${fault} cannot target "${value}" (allowed for ${fault}: ${allowed.join(', ')})`);
    }
    return expected(`one of ${allowed.join(', ')}`, value);
  };
}

/**
 * `interval` and `duration`: a mapping `{min, max}` (either may be left out) or one duration for both.
 * A bound left out keeps its default unless that would put min above max.
 */
function readRange(ctx: Context, parent: Section, name: 'interval' | 'duration', defaults: { min: number; max: number }): { min: number; max: number } {
  const entry = parent.entries.get(name);
  const path = join(parent.path, name);
  const rule = durationRule(100, 3_600_000);
  const node = entry === undefined ? null : resolve(ctx, entry.value);
  if (entry !== undefined && !isAbsent(ctx, entry) && !isMap(node)) {
    const found = scalarOf(ctx, entry.value);
    if (found instanceof Collection) {
      report(ctx, entry.value ?? entry.key, path, `must be a mapping with min and max, or one duration such as "3s", got ${describe(found)}`);
      return { ...defaults };
    }
    const both = read(ctx, entry, rule);
    return both === undefined ? { ...defaults } : { min: both, max: both };
  }
  const s = section(ctx, entry, path, parent.at, { allowed: manifestFields[`spec.faults.${name}`] });
  const min = field(ctx, s, 'min', rule);
  const max = field(ctx, s, 'max', rule);
  if (min !== undefined && max !== undefined && min > max) {
    const maxEntry = s.entries.get('max');
    report(ctx, maxEntry?.value ?? undefined, join(path, 'max'), `must not be shorter than min (${formatDuration(min)}), got ${formatDuration(max)}`);
  }
  return {
    min: min ?? Math.min(defaults.min, max ?? defaults.min),
    max: max ?? Math.max(defaults.max, min ?? defaults.max),
  };
}

function readFaultParams(ctx: Context, choice: Section, fault: FaultName | undefined): FaultChoice['params'] {
  const s = child(ctx, choice, 'params', { allowed: 'any' });
  const given: Record<string, number | string> = {};
  for (const [name, entry] of s.entries) {
    if (fault === undefined) continue; // which parameters are allowed depends on the fault
    const value = scalarOf(ctx, entry.value);
    const checked = checkFaultParam(fault, name, value);
    if ('unknown' in checked) report(ctx, entry.key, entry.path, checked.unknown);
    else if ('expected' in checked) report(ctx, entry.value ?? entry.key, entry.path, expected(checked.expected, value, quotedNumberHint(value)).problem);
    else given[name] = checked.value;
  }
  if (fault === undefined) return {};
  const validated = validateFaultParams(fault, given);
  return 'params' in validated ? validated.params : {};
}

function readChoice(ctx: Context, s: Section): FaultChoice | undefined {
  const fault = readRequired(ctx, s, 'fault', faultRule);
  const weight = field(ctx, s, 'weight', numberRule('a number > 0', (n) => n > 0)) ?? 1;
  const targetEntry = s.entries.get('target');
  const givenTarget = field(ctx, s, 'target', targetRule(fault));
  const targetValid = givenTarget !== undefined || isAbsent(ctx, targetEntry);
  const target = givenTarget ?? (fault === undefined ? 'random' : faultDefinition(fault).defaultTarget);
  const memberEntry = s.entries.get('member');
  const member = field(ctx, s, 'member', stringRule('a member name', (m) => m !== ''));
  if (targetValid && target === 'member' && isAbsent(ctx, memberEntry)) {
    report(ctx, targetEntry?.value ?? s.at, join(s.path, 'member'), 'is required with target: member (the name of the member to hit)');
  }
  if (targetValid && target !== 'member' && !isAbsent(ctx, memberEntry)) {
    report(ctx, memberEntry?.key, join(s.path, 'member'), `only allowed with target: member (this choice targets ${target})`);
  }
  const params = readFaultParams(ctx, s, fault);
  if (fault === undefined) return undefined;
  return { fault, weight, target, ...(member === undefined || target !== 'member' ? {} : { member }), params };
}

function readChoices(ctx: Context, faults: Section): FaultChoice[] {
  const entry = faults.entries.get('choices');
  if (entry === undefined || isAbsent(ctx, entry)) return defaultFaultChoices.map(defaultChoice);
  const list = resolve(ctx, entry.value);
  if (list === null || !isSeq(list)) {
    report(ctx, entry.value ?? entry.key, entry.path, `must be a list of fault choices, got ${describe(scalarOf(ctx, entry.value))}`);
    return [];
  }
  if (list.items.length === 0) {
    report(ctx, entry.value ?? entry.key, entry.path, 'must hold at least one choice (write enabled: false to run without faults, or leave choices out for the default ones)');
  }
  const choices: FaultChoice[] = [];
  list.items.forEach((raw, i) => {
    const item = raw as Node | null;
    const path = `${entry.path}[${i}]`;
    const node = resolve(ctx, item);
    let choice: FaultChoice | undefined;
    if (isMap(node)) {
      choice = readChoice(ctx, { path, at: item ?? node, present: true, entries: collectEntries(ctx, node, path, { allowed: manifestFields['spec.faults.choices[]'] }) });
    } else if (isScalar(node) && typeof node.value === 'string') {
      // `- kill` is short for `- fault: kill`.
      choice = readChoice(ctx, { path, at: item ?? node, present: true, entries: new Map([['fault', { path: join(path, 'fault'), key: undefined, value: item }]]) });
    } else {
      report(ctx, item ?? entry.value ?? undefined, path, `must be a fault name or a mapping with fault, weight, target, member and params, got ${describe(scalarOf(ctx, item))}`);
    }
    if (choice !== undefined) choices.push(choice);
  });
  return choices;
}

function readFaults(ctx: Context, spec: Section, mode: ClusterMode): FaultsSpec | undefined {
  const entry = spec.entries.get('faults');
  if (entry === undefined) return undefined;
  // `faults:` alone reads as null, which would silently mean "no faults" to Kubernetes.
  if (isAbsent(ctx, entry)) {
    report(ctx, entry.key, entry.path, 'write faults: {} for the default faults, or leave faults out for none (an empty value means unset)');
    return undefined;
  }
  const s = section(ctx, entry, entry.path, spec.at, { allowed: manifestFields['spec.faults'] });
  if (!s.present) return undefined;
  const enabled = field(ctx, s, 'enabled', booleanRule) ?? true;
  const allowShared = field(ctx, s, 'allowShared', booleanRule) ?? false;
  const maxConcurrentFaults = field(ctx, s, 'maxConcurrentFaults', integerIn(1, 5)) ?? faultDefaults.maxConcurrentFaults;
  const intervalMs = readRange(ctx, s, 'interval', faultDefaults.intervalMs);
  const durationMs = readRange(ctx, s, 'duration', faultDefaults.durationMs);
  const recoveryTimeoutMs = field(ctx, s, 'recoveryTimeout', durationRule(1000, 3_600_000)) ?? faultDefaults.recoveryTimeoutMs;
  const tolerateFailures = field(ctx, s, 'tolerateFailures', booleanRule) ?? false;
  const choices = readChoices(ctx, s);
  if (enabled && mode === 'shared' && !allowShared) {
    report(ctx, s.at, s.path, 'fault injection disrupts every client of a shared cluster; set allowShared: true to allow it (or enabled: false)');
  }
  if (!enabled) return undefined;
  return { choices, maxConcurrentFaults, intervalMs, durationMs, recoveryTimeoutMs, ...(tolerateFailures ? { tolerateFailures } : {}) };
}

function randomSeed(): number {
  return Math.floor(Math.random() * (maxSeed + 1));
}

function readSpec(ctx: Context, s: Section, defaultMode: ClusterMode): RobustnessRunSpec {
  const clusterRef = readClusterRef(ctx, s);
  const schedule = readSchedule(ctx, s);
  const givenDuration = field(ctx, s, 'duration', durationRule(1));
  const durationValid = givenDuration !== undefined || isAbsent(ctx, s.entries.get('duration'));
  const durationMs = givenDuration ?? 60_000;
  const timeoutRule = durationValid ? durationRule(durationMs + 1, undefined, `longer than spec.duration (${formatDuration(durationMs)})`) : durationRule(1);
  const timeoutMs = field(ctx, s, 'timeout', timeoutRule) ?? durationMs + 5 * 60_000;
  const mode = field(ctx, s, 'mode', oneOf(clusterModes)) ?? defaultMode;
  const prefix = field(ctx, s, 'prefix', prefixRule);
  const seed = field(ctx, s, 'seed', integerIn(0, maxSeed)) ?? randomSeed();
  const traffic = readTraffic(ctx, s, mode);
  const watch = readWatch(ctx, s);
  const checks = readChecks(ctx, s);
  const abortOnViolation = field(ctx, s, 'abortOnViolation', booleanRule) ?? false;
  const selfTest = readSelfTest(ctx, s);
  const faults = readFaults(ctx, s, mode);
  return {
    ...(clusterRef === undefined ? {} : { clusterRef }),
    schedule,
    durationMs,
    timeoutMs,
    mode,
    ...(prefix === undefined ? {} : { prefix }),
    seed,
    traffic,
    watch,
    checks,
    abortOnViolation,
    ...(selfTest === undefined ? {} : { selfTest }),
    ...(faults === undefined ? {} : { faults }),
  };
}

function readRoot(ctx: Context, root: Node | null, defaultMode: ClusterMode): RobustnessRun | undefined {
  const map = resolve(ctx, root);
  if (map === null || !isMap(map)) {
    const found = isNull(map) ? 'an empty document' : describe(scalarOf(ctx, map));
    report(ctx, root ?? undefined, '', `a RobustnessRun manifest must be a mapping with apiVersion, kind, metadata and spec, got ${found}`);
    return undefined;
  }
  const rootSection: Section = { path: '', at: root ?? undefined, present: true, entries: collectEntries(ctx, map, '', { allowed: manifestFields[''] }) };
  readRequired(ctx, rootSection, 'apiVersion', stringRule(`"${robustnessApiVersion}"`, (v) => v === robustnessApiVersion));
  readRequired(ctx, rootSection, 'kind', stringRule('"RobustnessRun"', (v) => v === 'RobustnessRun'));
  const metadata = readMetadata(ctx, requireSection(ctx, rootSection, 'metadata', { allowed: manifestFields.metadata }));
  const spec = readSpec(ctx, requireSection(ctx, rootSection, 'spec', { allowed: manifestFields.spec }), defaultMode);
  return { apiVersion: robustnessApiVersion, kind: 'RobustnessRun', metadata, spec };
}

/** yaml's own wording for the errors a hand-written manifest is likely to contain is written for library users. */
function syntaxProblem(error: YAMLError): string {
  switch (error.code) {
    case 'MULTIPLE_DOCS':
      return 'a manifest must hold exactly one YAML document; a second one starts here';
    case 'DUPLICATE_KEY':
      return 'this field is given twice in the same mapping';
    default:
      return `YAML syntax error: ${error.message}`;
  }
}

function syntaxIssue(ctx: Context, error: YAMLError): ManifestIssue {
  const pos = ctx.lines?.linePos(error.pos[0]);
  return { file: ctx.file, line: pos?.line, column: pos?.col, path: '', problem: syntaxProblem(error) };
}

function byPosition(a: ManifestIssue, b: ManifestIssue): number {
  return (a.line ?? Infinity) - (b.line ?? Infinity) || (a.column ?? Infinity) - (b.column ?? Infinity);
}

function failIfIssues(ctx: Context): void {
  const [first, ...rest] = [...ctx.issues].sort(byPosition);
  if (first !== undefined) throw new ManifestError([first, ...rest]);
}

/**
 * Parses and validates one RobustnessRun manifest, filling every default. Throws a ManifestError listing
 * every problem (YAML syntax errors first and alone: a broken document's tree is not worth validating).
 */
export function parseRobustnessRun(text: string, options: ManifestOptions): RobustnessRun {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  const ctx: Context = { doc, lines, file: options.file, issues: [] };
  ctx.issues.push(...doc.errors.map((error) => syntaxIssue(ctx, error)));
  failIfIssues(ctx);
  const run = readRoot(ctx, doc.contents, options.defaultMode);
  failIfIssues(ctx);
  if (run === undefined) throw new Error('unreachable: an unreadable manifest always has an issue');
  return run;
}

/**
 * The run used when no manifest is given: every default, from the same code that fills a manifest's. In
 * exclusive mode it also injects the default faults, up to builtInMaxConcurrentFaults at once (the same as
 * a manifest with `faults: {maxConcurrentFaults: 2}`); in shared mode it injects none.
 */
export function defaultRobustnessRun(options: { name?: string; defaultMode: ClusterMode }): RobustnessRun {
  const ctx: Context = { doc: undefined, lines: undefined, file: undefined, issues: [] };
  const name = options.name ?? 'local';
  const nameProblem = nameRule(name);
  if (nameProblem instanceof Reject) ctx.issues.push({ file: undefined, line: undefined, column: undefined, path: 'metadata.name', problem: nameProblem.problem });
  failIfIssues(ctx);
  const read = readSpec(ctx, emptySection('spec', undefined), options.defaultMode);
  const spec = read.mode === 'exclusive' ? { ...read, faults: defaultFaultsSpec(builtInMaxConcurrentFaults) } : read;
  return { apiVersion: robustnessApiVersion, kind: 'RobustnessRun', metadata: { name }, spec };
}

/**
 * The members a run names (spec.faults.choices[].member, spec.selfTest.staleReads.member) checked against
 * the cluster's, once those are known and before any traffic: a fault aimed at a member that does not
 * exist would only fail at run time. Throws a ManifestError naming each such choice and the members that exist.
 */
export function checkRunMembers(run: RobustnessRun, members: readonly string[], file?: string): void {
  const issues: ManifestIssue[] = [];
  const known = members.length === 0 ? 'none' : members.join(', ');
  const issue = (path: string, problem: string): void => {
    issues.push({ file, line: undefined, column: undefined, path, problem });
  };
  (run.spec.faults?.choices ?? []).forEach((choice, i) => {
    if (choice.member !== undefined && !members.includes(choice.member)) {
      issue(`spec.faults.choices[${i}].member`, `${choice.fault} targets member "${choice.member}", which this cluster does not have (its members: ${known})`);
    }
  });
  const staleVia = run.spec.selfTest?.staleReads?.member;
  if (staleVia !== undefined && !members.includes(staleVia)) {
    issue('spec.selfTest.staleReads.member', `no member named "${staleVia}" in this cluster (its members: ${known})`);
  }
  const [first, ...rest] = issues;
  if (first !== undefined) throw new ManifestError([first, ...rest]);
}
