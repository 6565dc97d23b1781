/**
 * Reads a RobustnessRun manifest (docs/robustnessrun.md) into the typed spec of src/domain/run-spec.ts,
 * filling defaults. This is the boundary where YAML becomes domain types, so it is strict: unknown fields,
 * wrong types and out-of-range values are rejected, and every problem found is reported at once as
 * `FILE:LINE:COLUMN: PATH: problem` so a user can fix a manifest in one pass instead of one error per run.
 */
import { Document, isMap, LineCounter, parseDocument } from 'yaml';
import type { Node } from 'yaml';
import { metadataSchema, robustnessRunSpecSchema } from '../api/index.ts';
import type { NumberSchema } from '../api/index.ts';
import { formatDuration } from '../duration.ts';
import type { ClusterMode } from '../domain/history.ts';
import { etcdOperationKinds, kubernetesOperationKinds, robustnessApiVersion } from '../domain/run-spec.ts';
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
import { readRunner } from './manifest-runner.ts';
import { builtInMaxConcurrentFaults, defaultFaultsSpec, readFaults } from './manifest-faults.ts';
import { cronRule, defaultOf, describe, durationDefaultOf, durationOf, durationRule, fieldsOf, numberRule, Reject, ruleOf, stringRule } from './manifest-rules.ts';
import {
  child,
  collectEntries,
  emptySection,
  failIfIssues,
  field,
  isAbsent,
  isNull,
  join,
  read,
  readRequired,
  report,
  requireSection,
  resolve,
  scalarOf,
  section,
  syntaxIssue,
} from './manifest-yaml.ts';
import type { Context, Section } from './manifest-yaml.ts';

export { formatManifestIssue, ManifestError } from './manifest-yaml.ts';
export type { ManifestIssue } from './manifest-yaml.ts';
import { ManifestError } from './manifest-yaml.ts';
import type { ManifestIssue } from './manifest-yaml.ts';
export { builtInMaxConcurrentFaults, defaultFaultsSpec, faultDefaults } from './manifest-faults.ts';

export interface ManifestOptions {
  file?: string;
  /** Mode of a manifest that does not say: shared unless the caller created the cluster itself. */
  defaultMode: ClusterMode;
}

const maxSeed = 2 ** 31 - 1;

// ---------------------------------------------------------------------------------------------------
// The manifest, section by section. Each section's fields, and each field's type, bounds, values and
// default, come from the RobustnessRun schema (src/api/run-schema.ts); the code here says what a schema
// cannot: the file form's shorthands, defaults that depend on the mode or the profile, and rules across fields.

const specFields = robustnessRunSpecSchema.properties;
const scheduleFields = specFields.schedule.properties;
const trafficFields = specFields.traffic.properties;
const watchFields = specFields.watch.properties;
const reopenFields = watchFields.reopen.properties;
const checksFields = specFields.checks.properties;

const weightSchemas: Readonly<Partial<Record<string, NumberSchema>>> = trafficFields.weights.properties;

/** The schema of an operation kind's weight. */
function weightSchemaOf(kind: OperationKind): NumberSchema {
  const schema = weightSchemas[kind];
  if (schema === undefined) throw new Error(`unreachable: the weights schema has no ${kind}`);
  return schema;
}

/** The envelope of a resource: the API server's fields, not the schema's (which leaves metadata open). */
const rootFields = ['apiVersion', 'kind', 'metadata', 'spec'];
const metadataFields = ['name', 'namespace', 'labels', 'annotations'];

function readMetadata(ctx: Context, s: Section): RobustnessRun['metadata'] {
  // The empty name never escapes: a missing or invalid name is an issue, so parsing throws.
  const name = readRequired(ctx, s, 'name', ruleOf(metadataSchema.name)) ?? '';
  const namespace = field(ctx, s, 'namespace', ruleOf(metadataSchema.namespace));
  // Labels and annotations are accepted so a manifest written for kubectl works here too; a run has no use for them.
  for (const name of ['labels', 'annotations']) {
    const map = child(ctx, s, name, { allowed: 'any' });
    for (const entry of map.entries.values()) read(ctx, entry, stringRule('a string', () => true));
  }
  return namespace === undefined ? { name } : { name, namespace };
}

function readClusterRef(ctx: Context, spec: Section): RobustnessRunSpec['clusterRef'] {
  const clusterRef = specFields.clusterRef;
  const s = child(ctx, spec, 'clusterRef', { allowed: fieldsOf(clusterRef) });
  if (!s.present) return undefined;
  const name = readRequired(ctx, s, 'name', ruleOf(clusterRef.properties.name)) ?? '';
  const namespace = field(ctx, s, 'namespace', ruleOf(clusterRef.properties.namespace));
  return namespace === undefined ? { name } : { name, namespace };
}

function readSchedule(ctx: Context, spec: Section): ScheduleSpec {
  const s = child(ctx, spec, 'schedule', { allowed: fieldsOf(specFields.schedule) });
  const kindEntry = s.entries.get('kind');
  const givenKind = field(ctx, s, 'kind', ruleOf(scheduleFields.kind));
  const kind = givenKind ?? defaultOf(scheduleFields.kind);
  const cron = field(ctx, s, 'cron', cronRule);
  const windowMs = field(ctx, s, 'window', durationOf(scheduleFields.window));
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
    historyLimit: field(ctx, s, 'historyLimit', ruleOf(scheduleFields.historyLimit)) ?? defaultOf(scheduleFields.historyLimit),
    suspend: field(ctx, s, 'suspend', ruleOf(scheduleFields.suspend)) ?? defaultOf(scheduleFields.suspend),
  };
}


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
    if (!isOperationKind(name, kinds)) continue; // reported as unknown by the section
    const weight = read(ctx, entry, ruleOf(weightSchemaOf(name)));
    if (weight !== undefined) weights[name] = weight;
  }
  const named = Object.keys(weights).length;
  if (profile !== undefined && named === kinds.length && Object.values(weights).every((w) => w === 0)) {
    report(ctx, s.at, s.path, 'every operation kind has weight 0: at least one must be positive');
  }
  return weights;
}

function readQps(ctx: Context, traffic: Section, mode: ClusterMode): TrafficSpec['qps'] {
  const qps = trafficFields.qps.properties;
  const s = child(ctx, traffic, 'qps', { allowed: fieldsOf(trafficFields.qps) });
  const given = field(ctx, s, 'target', ruleOf(qps.target));
  // Probing a production cluster must be gentle unless the user asks for more.
  const target = given ?? (mode === 'exclusive' ? 200 : 10);
  const targetValid = given !== undefined || isAbsent(ctx, s.entries.get('target'));
  const burst = field(ctx, s, 'burst', ruleOf(qps.burst)) ?? Math.max(1, target);
  const minRule = targetValid
    ? numberRule(`a number between 0 and qps.target (${target})`, (n) => n >= 0 && n <= target)
    : ruleOf(qps.min);
  const min = field(ctx, s, 'min', minRule) ?? Math.floor(target / 2);
  return { target, burst, min };
}

function readClients(ctx: Context, traffic: Section): TrafficSpec['clients'] {
  const fields = trafficFields.clients.properties;
  const s = child(ctx, traffic, 'clients', { allowed: fieldsOf(trafficFields.clients) });
  const perMember = field(ctx, s, 'perMember', ruleOf(fields.perMember));
  const spread = field(ctx, s, 'spread', ruleOf(fields.spread));
  const valid = (name: string, value: number | undefined): boolean => value !== undefined || isAbsent(ctx, s.entries.get(name));
  const clients = { perMember: perMember ?? defaultOf(fields.perMember), spread: spread ?? defaultOf(fields.spread) };
  if (valid('perMember', perMember) && valid('spread', spread) && clients.perMember + clients.spread < 1) {
    report(ctx, s.at, s.path, 'perMember + spread must be at least 1: a run without clients records nothing');
  }
  return clients;
}

interface MaintenanceDefaults {
  enabled: boolean;
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
  const fields = trafficFields[name].properties;
  const s = child(ctx, traffic, name, { allowed: fieldsOf(trafficFields[name]) });
  const enabled = field(ctx, s, 'enabled', ruleOf(fields.enabled));
  const intervalMs = field(ctx, s, 'interval', durationOf(fields.interval)) ?? durationDefaultOf(fields.interval);
  const allowShared = field(ctx, s, 'allowShared', ruleOf(fields.allowShared)) ?? defaultOf(fields.allowShared);
  const permitted = mode === 'exclusive' || allowShared;
  if (enabled === true && !permitted) {
    const entry = s.entries.get('enabled');
    report(ctx, entry?.value ?? undefined, `${s.path}.enabled`, `${defaults.sharedRisk}; set allowShared: true to allow it`);
  }
  // A profile default never turns on something that touches other clients of a shared cluster.
  return { enabled: enabled ?? (defaults.enabled && permitted), intervalMs, allowShared };
}

function readTraffic(ctx: Context, spec: Section, mode: ClusterMode): TrafficSpec {
  const s = child(ctx, spec, 'traffic', { allowed: fieldsOf(specFields.traffic) });
  const profileEntry = s.entries.get('profile');
  const givenProfile = field(ctx, s, 'profile', ruleOf(trafficFields.profile));
  const profileValid = givenProfile !== undefined || isAbsent(ctx, profileEntry);
  const profile = givenProfile ?? defaultOf(trafficFields.profile);
  return {
    profile,
    weights: readWeights(ctx, s, profileValid ? profile : undefined),
    keys: field(ctx, s, 'keys', ruleOf(trafficFields.keys)) ?? (profile === 'kubernetes' ? 50 : 10),
    valueSize: field(ctx, s, 'valueSize', ruleOf(trafficFields.valueSize)) ?? defaultOf(trafficFields.valueSize),
    qps: readQps(ctx, s, mode),
    clients: readClients(ctx, s),
    requestTimeoutMs: field(ctx, s, 'requestTimeout', durationOf(trafficFields.requestTimeout)) ?? durationDefaultOf(trafficFields.requestTimeout),
    compaction: readMaintenance(ctx, s, 'compaction', mode, {
      enabled: profile === 'kubernetes',
      sharedRisk: 'compaction rewrites history for every client of a shared cluster',
    }),
    defragment: readMaintenance(ctx, s, 'defragment', mode, {
      enabled: defaultOf(trafficFields.defragment.properties.enabled),
      sharedRisk: 'defragmentation stalls every client of a member of a shared cluster while it runs',
    }),
  };
}

function readWatch(ctx: Context, spec: Section): WatchSpec {
  const s = child(ctx, spec, 'watch', { allowed: fieldsOf(specFields.watch) });
  return {
    enabled: field(ctx, s, 'enabled', ruleOf(watchFields.enabled)) ?? defaultOf(watchFields.enabled),
    progressNotify: field(ctx, s, 'progressNotify', ruleOf(watchFields.progressNotify)) ?? defaultOf(watchFields.progressNotify),
    progressIntervalMs: field(ctx, s, 'progressInterval', durationOf(watchFields.progressInterval)) ?? durationDefaultOf(watchFields.progressInterval),
    perMember: field(ctx, s, 'perMember', ruleOf(watchFields.perMember)) ?? defaultOf(watchFields.perMember),
    ...readReopen(ctx, s),
  };
}

/** Defaults of `reopen: {}`: etcd's robustness traffic draws its watch offsets in [-100, 100]. */
export const watchReopenDefaults = {
  intervalMs: durationDefaultOf(reopenFields.interval),
  lifetimeMs: durationDefaultOf(reopenFields.lifetime),
  revisionOffset: { min: -100, max: 100 },
} as const;

function readReopen(ctx: Context, watch: Section): { reopen?: WatchReopenSpec } {
  const s = child(ctx, watch, 'reopen', { allowed: fieldsOf(watchFields.reopen) });
  if (!s.present) return {};
  const offsetFields = reopenFields.revisionOffset.properties;
  const offsets = child(ctx, s, 'revisionOffset', { allowed: fieldsOf(reopenFields.revisionOffset) });
  const min = field(ctx, offsets, 'min', ruleOf(offsetFields.min));
  const max = field(ctx, offsets, 'max', ruleOf(offsetFields.max));
  if (min !== undefined && max !== undefined && min > max) {
    const maxEntry = offsets.entries.get('max');
    report(ctx, maxEntry?.value ?? undefined, join(offsets.path, 'max'), `must not be below min (${min}), got ${max}`);
  }
  const defaults = watchReopenDefaults.revisionOffset;
  return {
    reopen: {
      intervalMs: field(ctx, s, 'interval', durationOf(reopenFields.interval)) ?? watchReopenDefaults.intervalMs,
      lifetimeMs: field(ctx, s, 'lifetime', durationOf(reopenFields.lifetime)) ?? watchReopenDefaults.lifetimeMs,
      // A bound left out keeps its default unless that would put min above max (as the fault ranges do).
      revisionOffset: { min: min ?? Math.min(defaults.min, max ?? defaults.min), max: max ?? Math.max(defaults.max, min ?? defaults.max) },
    },
  };
}

function readChecks(ctx: Context, spec: Section): ChecksSpec {
  const s = child(ctx, spec, 'checks', { allowed: fieldsOf(specFields.checks) });
  const linearizability = field(ctx, s, 'linearizability', ruleOf(checksFields.linearizability));
  const watch = field(ctx, s, 'watch', ruleOf(checksFields.watch));
  if (linearizability === false && watch === false) {
    report(ctx, s.at, s.path, 'at least one of linearizability and watch must be true: a run that checks nothing proves nothing');
  }
  return {
    linearizability: linearizability ?? defaultOf(checksFields.linearizability),
    watch: watch ?? defaultOf(checksFields.watch),
    hashKV: field(ctx, s, 'hashKV', ruleOf(checksFields.hashKV)) ?? defaultOf(checksFields.hashKV),
  };
}

function readSelfTest(ctx: Context, spec: Section): SelfTestSpec | undefined {
  const selfTest = specFields.selfTest.properties;
  const s = child(ctx, spec, 'selfTest', { allowed: fieldsOf(specFields.selfTest) });
  const entry = s.entries.get('staleReads');
  if (entry === undefined) return undefined;
  // `staleReads:` alone reads as null, which would silently mean "off" to Kubernetes.
  if (isAbsent(ctx, entry)) {
    report(ctx, entry.key, entry.path, 'write staleReads: {} to enable the stale-reads self-test (an empty value means unset)');
    return undefined;
  }
  const stale = section(ctx, entry, entry.path, s.at, { allowed: fieldsOf(selfTest.staleReads) });
  if (!stale.present) return undefined;
  const member = field(ctx, stale, 'member', ruleOf(selfTest.staleReads.properties.member));
  return { staleReads: member === undefined ? {} : { member } };
}

function randomSeed(): number {
  return Math.floor(Math.random() * (maxSeed + 1));
}

function readSpec(ctx: Context, s: Section, defaultMode: ClusterMode): RobustnessRunSpec {
  const clusterRef = readClusterRef(ctx, s);
  const schedule = readSchedule(ctx, s);
  const givenDuration = field(ctx, s, 'duration', durationOf(specFields.duration));
  const durationValid = givenDuration !== undefined || isAbsent(ctx, s.entries.get('duration'));
  const durationMs = givenDuration ?? durationDefaultOf(specFields.duration);
  const timeoutRule = durationValid
    ? durationRule(durationMs + 1, undefined, `longer than spec.duration (${formatDuration(durationMs)})`)
    : durationOf(specFields.timeout);
  const timeoutMs = field(ctx, s, 'timeout', timeoutRule) ?? durationMs + 5 * 60_000;
  const mode = field(ctx, s, 'mode', ruleOf(specFields.mode)) ?? defaultMode;
  const prefix = field(ctx, s, 'prefix', ruleOf(specFields.prefix));
  const seed = field(ctx, s, 'seed', ruleOf(specFields.seed)) ?? randomSeed();
  const traffic = readTraffic(ctx, s, mode);
  const watch = readWatch(ctx, s);
  const checks = readChecks(ctx, s);
  const abortOnViolation = field(ctx, s, 'abortOnViolation', ruleOf(specFields.abortOnViolation)) ?? defaultOf(specFields.abortOnViolation);
  const selfTest = readSelfTest(ctx, s);
  const faults = readFaults(ctx, s, mode);
  const runner = readRunner(ctx, s);
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
    ...(runner === undefined ? {} : { runner }),
  };
}

function readRoot(ctx: Context, root: Node | null, defaultMode: ClusterMode): RobustnessRun | undefined {
  const map = resolve(ctx, root);
  if (map === null || !isMap(map)) {
    const found = isNull(map) ? 'an empty document' : describe(scalarOf(ctx, map));
    report(ctx, root ?? undefined, '', `a RobustnessRun manifest must be a mapping with apiVersion, kind, metadata and spec, got ${found}`);
    return undefined;
  }
  const rootSection: Section = { path: '', at: root ?? undefined, present: true, entries: collectEntries(ctx, map, '', { allowed: rootFields }) };
  readRequired(ctx, rootSection, 'apiVersion', stringRule(`"${robustnessApiVersion}"`, (v) => v === robustnessApiVersion));
  readRequired(ctx, rootSection, 'kind', stringRule('"RobustnessRun"', (v) => v === 'RobustnessRun'));
  const metadata = readMetadata(ctx, requireSection(ctx, rootSection, 'metadata', { allowed: metadataFields }));
  const spec = readSpec(ctx, requireSection(ctx, rootSection, 'spec', { allowed: fieldsOf(robustnessRunSpecSchema) }), defaultMode);
  return { apiVersion: robustnessApiVersion, kind: 'RobustnessRun', metadata, spec };
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
  return readDocument(ctx, doc, options);
}

/**
 * Validates a RobustnessRun that is already an object (one read from the API server), filling every
 * default, with the same rules as a manifest. It has no text, so its problems name the field path only.
 */
export function readRobustnessRun(resource: unknown, options: ManifestOptions): RobustnessRun {
  const doc = new Document(resource);
  return readDocument({ doc, lines: undefined, file: options.file, issues: [] }, doc, options);
}

/** The run a document holds, or a ManifestError with every problem in it. */
function readDocument(ctx: Context, doc: Document, options: ManifestOptions): RobustnessRun {
  const run = readRoot(ctx, doc.contents, options.defaultMode);
  failIfIssues(ctx);
  if (run === undefined) throw new Error('unreachable: an unreadable document always has an issue');
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
  const nameProblem = ruleOf(metadataSchema.name)(name);
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

