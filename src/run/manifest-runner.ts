/**
 * spec.runner of a RobustnessRun manifest: the runner Pod's resources, nodeSelector and tolerations, read
 * with the CRD schema's rules (src/api/run-schema.ts runnerSchema) so `run --local` refuses what
 * `kubectl apply` refuses. The operator passes them to the runner Pod as given.
 */
import { isMap, isSeq } from 'yaml';
import type { Node } from 'yaml';
import { nodeSelectorSchema, quantity, runnerSchema } from '../api/index.ts';
import type { ResourceRequirements } from '../domain/cluster-spec.ts';
import type { RunnerPodSpec, Toleration } from '../domain/run-resource.ts';
import { describe, fieldsOf, ruleOf, type Rule } from './manifest-rules.ts';
import { child, collectEntries, field, isAbsent, read, report, resolve, scalarOf, type Context, type Section } from './manifest-yaml.ts';

const runnerFields = runnerSchema.properties;
const tolerationFields = runnerFields.tolerations.items.properties;
const quantityRule = ruleOf(quantity('A quantity, e.g. 250m or 1Gi.'));
const labelValueRule = ruleOf(nodeSelectorSchema.additionalProperties);

/** A mapping whose keys are data (resource names, label keys), each value read with `rule`. */
function readMap(ctx: Context, parent: Section, name: string, rule: Rule<string>): Record<string, string> | undefined {
  const s = child(ctx, parent, name, { allowed: 'any' });
  if (!s.present) return undefined;
  const values: Record<string, string> = {};
  for (const [key, entry] of s.entries) {
    const value = read(ctx, entry, rule);
    if (value !== undefined) values[key] = value;
  }
  return values;
}

function readResources(ctx: Context, runner: Section): ResourceRequirements | undefined {
  const s = child(ctx, runner, 'resources', { allowed: fieldsOf(runnerFields.resources) });
  if (!s.present) return undefined;
  const requests = readMap(ctx, s, 'requests', quantityRule);
  const limits = readMap(ctx, s, 'limits', quantityRule);
  return { ...(requests === undefined ? {} : { requests }), ...(limits === undefined ? {} : { limits }) };
}

function readToleration(ctx: Context, s: Section): Toleration {
  const key = field(ctx, s, 'key', ruleOf(tolerationFields.key));
  const operator = field(ctx, s, 'operator', ruleOf(tolerationFields.operator));
  const value = field(ctx, s, 'value', ruleOf(tolerationFields.value));
  const effect = field(ctx, s, 'effect', ruleOf(tolerationFields.effect));
  const tolerationSeconds = field(ctx, s, 'tolerationSeconds', ruleOf(tolerationFields.tolerationSeconds));
  return {
    ...(key === undefined ? {} : { key }),
    ...(operator === undefined ? {} : { operator }),
    ...(value === undefined ? {} : { value }),
    ...(effect === undefined ? {} : { effect }),
    ...(tolerationSeconds === undefined ? {} : { tolerationSeconds }),
  };
}

function readTolerations(ctx: Context, runner: Section): Toleration[] | undefined {
  const entry = runner.entries.get('tolerations');
  if (entry === undefined || isAbsent(ctx, entry)) return undefined;
  const list = resolve(ctx, entry.value);
  if (list === null || !isSeq(list)) {
    report(ctx, entry.value ?? entry.key, entry.path, `must be a list of tolerations, got ${describe(scalarOf(ctx, entry.value))}`);
    return undefined;
  }
  const tolerations: Toleration[] = [];
  list.items.forEach((raw, i) => {
    const item = raw as Node | null;
    const path = `${entry.path}[${i}]`;
    const node = resolve(ctx, item);
    if (!isMap(node)) {
      report(ctx, item ?? entry.value ?? undefined, path, `must be a mapping with key, operator, value, effect and tolerationSeconds, got ${describe(scalarOf(ctx, item))}`);
      return;
    }
    tolerations.push(readToleration(ctx, { path, at: item ?? node, present: true, entries: collectEntries(ctx, node, path, { allowed: fieldsOf(runnerFields.tolerations.items) }) }));
  });
  return tolerations;
}

export function readRunner(ctx: Context, spec: Section): RunnerPodSpec | undefined {
  const s = child(ctx, spec, 'runner', { allowed: fieldsOf(runnerSchema) });
  if (!s.present) return undefined;
  const resources = readResources(ctx, s);
  const nodeSelector = readMap(ctx, s, 'nodeSelector', labelValueRule);
  const tolerations = readTolerations(ctx, s);
  return {
    ...(resources === undefined ? {} : { resources }),
    ...(nodeSelector === undefined ? {} : { nodeSelector }),
    ...(tolerations === undefined ? {} : { tolerations }),
  };
}
