/**
 * spec.faults of a manifest: the fault choices (a name or a mapping), their targets and parameters from the
 * fault catalog, the interval and duration ranges, and the consent a shared cluster needs. Bounds and
 * defaults come from the schema (src/api/run-schema.ts).
 */
import { isMap, isScalar, isSeq } from 'yaml';
import type { Node } from 'yaml';
import { robustnessRunSpecSchema } from '../api/index.ts';
import { faultNames, targetRules } from '../domain/faults.ts';
import type { FaultChoice, FaultName, FaultsSpec, TargetRule } from '../domain/faults.ts';
import type { ClusterMode } from '../domain/history.ts';
import { formatDuration } from '../duration.ts';
import { checkFaultParam, defaultFaultChoices, faultDefinition, isFaultName, validateFaultParams } from '../faults/catalog.ts';
import { closest, Collection, defaultOf, describe, durationDefaultOf, durationOf, expected, fieldsOf, quotedNumberHint, Reject, ruleOf } from './manifest-rules.ts';
import type { Rule } from './manifest-rules.ts';
import { collectEntries, child, field, isAbsent, join, read, readRequired, report, resolve, scalarOf, section } from './manifest-yaml.ts';
import type { Context, Section } from './manifest-yaml.ts';

const faultsSchema = robustnessRunSpecSchema.properties.faults;
const faultsFields = faultsSchema.properties;
const choiceFields = faultsFields.choices.items.properties;

/** Defaults of `faults: {}` (and of the fields a faults section leaves out). */
export const faultDefaults = {
  maxConcurrentFaults: defaultOf(faultsFields.maxConcurrentFaults),
  intervalMs: { min: 3000, max: 6000 },
  durationMs: { min: 1000, max: 3000 },
  recoveryTimeoutMs: durationDefaultOf(faultsFields.recoveryTimeout),
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
  const rule = durationOf(faultsFields[name].properties.min);
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
  const s = section(ctx, entry, path, parent.at, { allowed: fieldsOf(faultsFields[name]) });
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
  const weight = field(ctx, s, 'weight', ruleOf(choiceFields.weight)) ?? defaultOf(choiceFields.weight);
  const targetEntry = s.entries.get('target');
  const givenTarget = field(ctx, s, 'target', targetRule(fault));
  const targetValid = givenTarget !== undefined || isAbsent(ctx, targetEntry);
  const target = givenTarget ?? (fault === undefined ? 'random' : faultDefinition(fault).defaultTarget);
  const memberEntry = s.entries.get('member');
  const member = field(ctx, s, 'member', ruleOf(choiceFields.member));
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
      choice = readChoice(ctx, { path, at: item ?? node, present: true, entries: collectEntries(ctx, node, path, { allowed: fieldsOf(faultsFields.choices.items) }) });
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

export function readFaults(ctx: Context, spec: Section, mode: ClusterMode): FaultsSpec | undefined {
  const entry = spec.entries.get('faults');
  if (entry === undefined) return undefined;
  // `faults:` alone reads as null, which would silently mean "no faults" to Kubernetes.
  if (isAbsent(ctx, entry)) {
    report(ctx, entry.key, entry.path, 'write faults: {} for the default faults, or leave faults out for none (an empty value means unset)');
    return undefined;
  }
  const s = section(ctx, entry, entry.path, spec.at, { allowed: fieldsOf(faultsSchema) });
  if (!s.present) return undefined;
  const enabled = field(ctx, s, 'enabled', ruleOf(faultsFields.enabled)) ?? defaultOf(faultsFields.enabled);
  const allowShared = field(ctx, s, 'allowShared', ruleOf(faultsFields.allowShared)) ?? defaultOf(faultsFields.allowShared);
  const maxConcurrentFaults = field(ctx, s, 'maxConcurrentFaults', ruleOf(faultsFields.maxConcurrentFaults)) ?? faultDefaults.maxConcurrentFaults;
  const intervalMs = readRange(ctx, s, 'interval', faultDefaults.intervalMs);
  const durationMs = readRange(ctx, s, 'duration', faultDefaults.durationMs);
  const recoveryTimeoutMs = field(ctx, s, 'recoveryTimeout', durationOf(faultsFields.recoveryTimeout)) ?? faultDefaults.recoveryTimeoutMs;
  const tolerateFailures = field(ctx, s, 'tolerateFailures', ruleOf(faultsFields.tolerateFailures)) ?? defaultOf(faultsFields.tolerateFailures);
  const choices = readChoices(ctx, s);
  if (enabled && mode === 'shared' && !allowShared) {
    report(ctx, s.at, s.path, 'fault injection disrupts every client of a shared cluster; set allowShared: true to allow it (or enabled: false)');
  }
  if (!enabled) return undefined;
  return { choices, maxConcurrentFaults, intervalMs, durationMs, recoveryTimeoutMs, ...(tolerateFailures ? { tolerateFailures } : {}) };
}
