/**
 * The RobustnessRun API, declared once: the OpenAPI v3 structural schema of its CRD, typed against the
 * domain types (src/domain/run-resource.ts) with the builder of ./openapi.ts, so a field added to, removed
 * from or retyped in a domain interface without the same change here does not compile. The manifest reader
 * (src/run/manifest.ts) takes each section's fields and each field's type, bounds, values, pattern and
 * default from this schema (src/run/manifest-rules.ts), so `run --local` and `kubectl apply` accept the same
 * fields by construction.
 *
 * Rules on one field are OpenAPI (enum, bounds, pattern); rules across fields, and duration bounds, are CEL
 * (`x-kubernetes-validations`). The reader states the cross-field rules again in code, with positions (it
 * does not run CEL); test/unit/crd-drift.test.ts and test/integration/crd-validation.test.ts check that both
 * refuse the same manifests. The reader also checks what needs the operator's knowledge, such as the mode a
 * run gets when it does not say.
 *
 * Choices made where a structural schema cannot say what the file form says:
 *
 * - `faults.choices` items: the file form takes a fault name (`- kill`) or a mapping (`- fault: kill`).
 *   A structural schema gives every list item one type, and an item without a type
 *   (`x-kubernetes-preserve-unknown-fields`) cannot carry CEL rules (the API server refuses them: it has
 *   no type to compile them against), so the fault name would go unchecked. The CRD takes the mapping
 *   only: with it the API server checks the name, weight, target (per fault, from the catalog) and
 *   parameters. `run --local` keeps the shorthand; docs/robustnessrun.md says kubectl needs the mapping.
 * - `faults.interval` / `faults.duration`: the file form also takes one duration for both bounds; the
 *   CRD takes the `{min, max}` mapping only, for the same reason.
 * - `faults.choices[].params` (`Record<string, number | string>`): a property per parameter of the
 *   catalog (each typed and bounded as the catalog says), and a CEL rule per parameter naming the faults
 *   that take it. `x-kubernetes-int-or-string` would not do: `drop`'s `percent` may be fractional.
 * - durations: a pattern that only admits whole milliseconds (the parser's unit: at most 3 decimals on
 *   seconds, 4 on minutes, 5 on hours) and a CEL rule for the bounds. The rule skips values the pattern
 *   refuses, so a malformed duration gets one error, not a second one about converting it.
 * - defaults: only the ones the parser fills the same way whatever the mode, profile or other fields
 *   (never qps, keys, compaction.enabled, a fault's target, timeout, mode or seed; nor interval and
 *   duration bounds, where a bound left out follows the other one).
 */
import { faultNames, targetRules } from '../domain/faults.ts';
import type { NamespacedRef } from '../domain/kube.ts';
import { runPhases, scheduleKinds, taintEffects, tolerationOperators } from '../domain/run-resource.ts';
import type {
  FaultChoiceInput,
  FaultsInput,
  PeriodicInput,
  RobustnessRunSpecInput,
  RobustnessRunStatus,
  RunnerPodSpec,
  RunRecord,
  ScheduleInput,
  Toleration,
  StoredReportRef,
  TrafficInput,
} from '../domain/run-resource.ts';
import { etcdOperationKinds, kubernetesOperationKinds, profileNames } from '../domain/run-spec.ts';
import type { ProfileName } from '../domain/run-spec.ts';
import { describeParam, faultCatalog } from '../faults/catalog.ts';
import type { FaultParam } from '../faults/catalog.ts';
import { cronMessage, cronPattern } from './cron.ts';
import { enumOf } from './openapi.ts';
import type { ArraySchema, BooleanSchema, JSONSchemaProps, KnownKeysSchema, MapSchema, NumberSchema, ObjectSchema, StringSchema, ValidationRule } from './openapi.ts';
import {
  boolean,
  celString,
  conditionsSchema,
  describedString,
  duration,
  durationOrder,
  integer,
  name,
  namespaceName,
  resourceRequirements,
  resourceSchema,
  text,
  time,
  verdictSchema,
} from './schema-kit.ts';
// ---------------------------------------------------------------------------------------------------
// RobustnessRun

/** What the file form checks of metadata (in a cluster the API server does: the CRD leaves metadata to it). */
export const metadataSchema = { name: name('The run\'s name.'), namespace: namespaceName('The run\'s namespace.') } as const;

/** The CRD is stricter than the file form here: a run in Kubernetes always names its cluster. */
export type RobustnessRunCrdSpec = Omit<RobustnessRunSpecInput, 'clusterRef'> & { clusterRef: NamespacedRef };

const clusterRefSchema: ObjectSchema<NamespacedRef> = {
  type: 'object',
  description: 'The EtcdCluster to drive.',
  properties: {
    name: name('Its name.'),
    namespace: namespaceName('Its namespace; absent: the run\'s.'),
  },
  required: ['name'],
};

/** Requires `field` when `kind` is `owner` and forbids it otherwise (the parser's two messages). */
function onlyWithKind(field: 'cron' | 'window', owner: string, what: string): ValidationRule[] {
  const kind = "(has(self.kind) ? self.kind : 'once')";
  return [
    { rule: `${kind} != '${owner}' || has(self.${field})`, message: `${field} is required with kind: ${owner} (${what})`, fieldPath: `.${field}`, reason: 'FieldValueRequired' },
    { rule: `${kind} == '${owner}' || !has(self.${field})`, message: `${field} is only allowed with kind: ${owner}`, fieldPath: `.${field}`, reason: 'FieldValueForbidden' },
  ];
}

const scheduleSchema: ObjectSchema<ScheduleInput> = {
  type: 'object',
  description: 'When the run runs: once (default), at each time of a cron expression, or continuously in windows.',
  default: {},
  properties: {
    kind: enumOf(scheduleKinds, { description: 'once, cron or continuous.', default: 'once' }),
    cron: {
      type: 'string',
      description: 'kind cron: five fields (minute hour day-of-month month day-of-week), UTC, e.g. "0 3 * * *".',
      maxLength: 256,
      // A rule, not a pattern: the API server quotes a failed pattern whole (1.5 KB); a rule says its message.
      'x-kubernetes-validations': [{ rule: `self.matches(${celString(cronPattern)})`, message: cronMessage }],
    },
    window: duration({ min: 1, description: 'kind continuous: the traffic and check window of each run.' }),
    historyLimit: integer(1, 100, 'Past runs kept in status.history.', 10),
    suspend: boolean('No new runs are started while true; a run in progress finishes.', false),
  },
  'x-kubernetes-validations': [
    ...onlyWithKind('cron', 'cron', 'a five-field cron expression such as "0 3 * * *"'),
    ...onlyWithKind('window', 'continuous', 'the duration of each run, such as "10m"'),
  ],
};

const allOperationKinds = [...new Set([...etcdOperationKinds, ...kubernetesOperationKinds])];

/** The weights a profile may not name: its kinds are the only ones it draws. */
function weightsOfProfile(profile: ProfileName): ValidationRule {
  const own: readonly string[] = profile === 'etcd' ? etcdOperationKinds : kubernetesOperationKinds;
  const foreign = allOperationKinds.filter((kind) => !own.includes(kind));
  return {
    rule: `(has(self.profile) ? self.profile : 'etcd') != '${profile}' || !has(self.weights) || !(${foreign.map((kind) => `has(self.weights.${kind})`).join(' || ')})`,
    message: `the ${profile} profile only has the operation kinds ${own.join(', ')}`,
    fieldPath: '.weights',
  };
}

const weight = (description: string, defaultValue?: number, exclusive = false): NumberSchema => ({
  type: 'number',
  description,
  minimum: 0,
  ...(exclusive ? { exclusiveMinimum: true } : {}),
  ...(defaultValue === undefined ? {} : { default: defaultValue }),
});

/** A property per key (the keys come from a domain constant, so the record's type is exact). */
function eachOf<K extends string, S>(keys: readonly K[], schema: (key: K) => S): Record<K, S> {
  return Object.fromEntries(keys.map((key) => [key, schema(key)])) as Record<K, S>;
}

const weightsSchema: ObjectSchema<NonNullable<TrafficInput['weights']>> = {
  type: 'object',
  description: 'Overrides merged over the profile\'s weights; 0 turns a kind off. Only the profile\'s kinds may be named.',
  properties: eachOf(allOperationKinds, (kind) => weight(`Relative weight of ${kind}.`)),
};

/** A maintenance operation on a shared cluster needs consent when the run says it is shared. */
function sharedConsent(section: 'compaction' | 'defragment' | 'faults', what: string): ValidationRule {
  const enabled = section === 'faults' ? `(!has(self.faults.enabled) || self.faults.enabled)` : `has(self.traffic.${section}.enabled) && self.traffic.${section}.enabled`;
  const owner = section === 'faults' ? 'self.faults' : `self.traffic.${section}`;
  const present = section === 'faults' ? 'has(self.faults)' : `has(self.traffic) && has(self.traffic.${section})`;
  return {
    rule: `!has(self.mode) || self.mode != 'shared' || !(${present}) || !(${enabled}) || (has(${owner}.allowShared) && ${owner}.allowShared)`,
    message: `${what}; set allowShared: true to allow it`,
    fieldPath: section === 'faults' ? '.faults' : `.traffic.${section}`,
  };
}

const periodicSchema = (what: string, enabled: BooleanSchema, defaultInterval: string): ObjectSchema<PeriodicInput> => ({
  type: 'object',
  description: `Periodic ${what}. Needs exclusive mode unless allowShared.`,
  properties: {
    enabled,
    interval: duration({ min: 100, description: `Time between two ${what}s.`, default: defaultInterval }),
    allowShared: boolean(`Consent to ${what} in shared mode.`, false),
  },
});

const trafficSchema: ObjectSchema<TrafficInput> = {
  type: 'object',
  description: 'What requests are sent, how fast, by how many clients.',
  properties: {
    profile: enumOf(profileNames, { description: 'etcd: raw key-value traffic. kubernetes: the requests kube-apiserver makes.', default: 'etcd' }),
    weights: weightsSchema,
    keys: integer(1, 100_000, 'Size of the rotating key pool (etcd) or objects per resource (kubernetes); default 10 (etcd), 50 (kubernetes).'),
    valueSize: integer(8, 1_048_576, 'Bytes per written value.', 32),
    qps: {
      type: 'object',
      description: 'The shared rate limiter.',
      properties: {
        target: weight('Requests per second over all clients (default 200 in exclusive mode, 10 in shared mode).', undefined, true),
        burst: { type: 'number', description: 'Requests let through at once after a pause (default: target, at least 1).', minimum: 1 },
        min: weight('Below this achieved rate the run reports that the cluster could not be driven; 0 disables (default: target / 2).'),
      },
      'x-kubernetes-validations': [{ rule: '!has(self.min) || !has(self.target) || self.min <= self.target', message: 'qps.min must not exceed qps.target', fieldPath: '.min' }],
    },
    clients: {
      type: 'object',
      description: 'The clients sending traffic.',
      properties: {
        perMember: integer(0, 64, 'Clients pinned to each member.', 2),
        spread: integer(0, 64, 'Clients balanced over all members.', 2),
      },
      'x-kubernetes-validations': [
        {
          rule: '!has(self.perMember) || !has(self.spread) || self.perMember + self.spread >= 1',
          message: 'perMember + spread must be at least 1: a run without clients records nothing',
        },
      ],
    },
    requestTimeout: duration({ min: 10, max: 60_000, description: 'Deadline of every recorded request.', default: '500ms' }),
    compaction: periodicSchema('compaction', boolean('Compact periodically (default: on for the kubernetes profile in exclusive mode, else off).'), '10s'),
    defragment: periodicSchema('defragmentation', boolean('Defragment one member at a time periodically.', false), '30s'),
  },
  'x-kubernetes-validations': [weightsOfProfile('etcd'), weightsOfProfile('kubernetes')],
};

/** Every parameter of the catalog, each typed as the catalog says (a name used by two faults must mean the same). */
function paramSchemas(): KnownKeysSchema<number | string>['properties'] {
  const byName = new Map<string, { param: FaultParam; faults: string[] }>();
  for (const definition of faultCatalog) {
    for (const [paramName, param] of Object.entries(definition.params)) {
      const seen = byName.get(paramName);
      if (seen !== undefined && JSON.stringify({ ...seen.param, description: '' }) !== JSON.stringify({ ...param, description: '' })) {
        throw new Error(`the catalog's parameter ${paramName} differs between ${seen.faults.join(', ')} and ${definition.name}`);
      }
      byName.set(paramName, { param, faults: [...(seen?.faults ?? []), definition.name] });
    }
  }
  const entries = [...byName.entries()].sort(([a], [b]) => a.localeCompare(b));
  return Object.fromEntries(
    entries.map(([paramName, { param, faults }]): [string, StringSchema | NumberSchema] => {
      const description = `${param.description} (${faults.join(', ')}): ${describeParam(param)}.`;
      if (param.type === 'string') {
        const schema: StringSchema = { type: 'string', description, maxLength: 256, ...(param.values === undefined ? {} : { enum: [...param.values] }) };
        return [paramName, schema];
      }
      const schema: NumberSchema = {
        type: param.integer === true ? 'integer' : 'number',
        description,
        ...(param.min === undefined ? {} : { minimum: param.min }),
        ...(param.max === undefined ? {} : { maximum: param.max }),
      };
      return [paramName, schema];
    }),
  );
}

/**
 * CEL rules of a choice that follow the catalog: the targets each fault allows (one rule per set of
 * targets, with the parser's message), the parameters it takes.
 */
function catalogRules(): ValidationRule[] {
  const byTargets = new Map<string, string[]>();
  for (const definition of faultCatalog) {
    const key = definition.allowedTargets.join(', ');
    byTargets.set(key, [...(byTargets.get(key) ?? []), definition.name]);
  }
  const list = (values: readonly string[]): string => `[${values.map((v) => `'${v}'`).join(', ')}]`;
  const rules: ValidationRule[] = [...byTargets.entries()].map(([targets, faults]) => ({
    rule: `!has(self.target) || !(self.fault in ${list(faults)}) || self.target in ${list(targets.split(', '))}`,
    messageExpression: `self.fault + ' cannot target "' + self.target + '" (allowed for ' + self.fault + ': ${targets})'`,
    fieldPath: '.target',
  }));
  const paramNames = [...new Set(faultCatalog.flatMap((d) => Object.keys(d.params)))].sort();
  for (const paramName of paramNames) {
    const owners = faultCatalog.filter((d) => Object.hasOwn(d.params, paramName)).map((d) => d.name);
    rules.push({
      rule: `!has(self.params) || !has(self.params.${paramName}) || self.fault in [${owners.map((o) => `'${o}'`).join(', ')}]`,
      message: `${paramName} is a parameter of ${owners.join(', ')} only`,
      fieldPath: `.params.${paramName}`,
    });
  }
  return rules;
}

const choiceSchema: ObjectSchema<FaultChoiceInput> = {
  type: 'object',
  description: 'A fault a round may draw. (run --local also takes a bare fault name; kubectl needs this mapping.)',
  properties: {
    fault: enumOf(faultNames, { description: 'A fault of the catalog (docs/faults.md).', maxLength: 64 }),
    weight: weight('Relative weight in the draw.', 1, true),
    target: enumOf(targetRules, { description: 'Which members it hits (default: the fault\'s own); each fault allows only some.', maxLength: 64 }),
    member: describedString({ type: 'string', description: 'The member to hit; required with target: member, refused with any other.', minLength: 1, maxLength: 253 }, 'a member name'),
    params: { type: 'object', description: 'The fault\'s parameters (default: the catalog\'s).', properties: paramSchemas() },
  },
  required: ['fault'],
  'x-kubernetes-validations': [
    {
      rule: "!has(self.target) || self.target != 'member' || has(self.member)",
      message: 'member is required with target: member (the name of the member to hit)',
      fieldPath: '.member',
      reason: 'FieldValueRequired',
    },
    {
      rule: "!has(self.member) || (has(self.target) && self.target == 'member')",
      message: 'member is only allowed with target: member',
      fieldPath: '.member',
      reason: 'FieldValueForbidden',
    },
    ...catalogRules(),
  ],
};

const rangeSchema = (what: string): ObjectSchema<{ min?: string; max?: string }> => ({
  type: 'object',
  description: `${what}, drawn in [min, max]; a bound left out keeps its default unless that would put min above max.`,
  properties: {
    min: duration({ min: 100, max: 3_600_000, description: 'The shortest.' }),
    max: duration({ min: 100, max: 3_600_000, description: 'The longest.' }),
  },
  'x-kubernetes-validations': [durationOrder('min', 'max', 'max must not be shorter than min')],
});

const faultsSchema: ObjectSchema<FaultsInput> = {
  type: 'object',
  description: 'The faults injected during the run. Absent: none; {}: the default choices.',
  properties: {
    enabled: boolean('false runs without faults but keeps the section.', true),
    allowShared: boolean('Consent to faults in shared mode.', false),
    maxConcurrentFaults: integer(1, 5, 'A round injects between 1 and this many faults at once.', 1),
    interval: rangeSchema('The pause before each round (default 3s..6s)'),
    duration: rangeSchema('How long a lasting fault stays before it is healed (default 1s..3s)'),
    recoveryTimeout: duration({ min: 1000, max: 3_600_000, description: 'How long to wait at most for a healthy cluster after a round.', default: '30s' }),
    tolerateFailures: boolean('true: a fault that fails to apply leaves the verdict standing; false: the run ends Inconclusive (FaultsFailed).', false),
    choices: {
      type: 'array',
      description: 'The faults a round draws from, by weight (default: kill, pause, blackhole, delay, partition, leaderTransfer, raftBeforeSavePanic, raftAfterSavePanic).',
      items: choiceSchema,
      minItems: 1,
      maxItems: 64,
      'x-kubernetes-list-type': 'atomic',
    },
  },
};

const tolerationSchema: ObjectSchema<Toleration> = {
  type: 'object',
  description: 'A toleration, as a Pod takes it.',
  properties: {
    key: text('The taint key; empty with operator Exists: every taint.', 316),
    operator: enumOf(tolerationOperators, { description: 'Exists or Equal (default Equal).' }),
    value: text('The taint value (operator Equal).', 63),
    effect: enumOf(taintEffects, { description: 'The taint effect; empty: every effect.' }),
    tolerationSeconds: integer(0, 31_536_000, 'NoExecute: how long the Pod stays bound after the taint appears.'),
  },
};

export const nodeSelectorSchema: MapSchema<string> = {
  type: 'object',
  description: 'Node labels the runner Pod\'s node must have.',
  additionalProperties: text('A label value.', 63),
  maxProperties: 32,
};

const tolerationsSchema: ArraySchema<Toleration> = {
  type: 'array',
  description: 'Tolerations of the runner Pod.',
  items: tolerationSchema,
  maxItems: 32,
  'x-kubernetes-list-type': 'atomic',
};

/** The runner Pod of an operator that runs each run in a Pod of its own (the kubernetes runtime). */
export const runnerSchema: ObjectSchema<RunnerPodSpec> = {
  type: 'object',
  description: 'The runner Pod that drives each run (an operator with runner Pods): its resources and placement. Ignored by runs in the operator process and by run --local.',
  properties: {
    resources: resourceRequirements('Compute resources of the runner container.'),
    nodeSelector: nodeSelectorSchema,
    tolerations: tolerationsSchema,
  },
};

export const robustnessRunSpecSchema: ObjectSchema<RobustnessRunCrdSpec> = {
  type: 'object',
  description: 'What a robustness run drives, for how long and what it checks (docs/robustnessrun.md).',
  properties: {
    clusterRef: clusterRefSchema,
    schedule: scheduleSchema,
    duration: duration({ min: 1, description: 'How long traffic is driven.', default: '60s' }),
    timeout: duration({ min: 1, description: 'Give up (inconclusive) after this long, including the final check; longer than duration (default: duration + 5m).' }),
    mode: enumOf(['exclusive', 'shared'], {
      description: 'exclusive: the run owns the cluster. shared: other clients use it; only keys under prefix are checked, traffic is gentle by default.',
    }),
    prefix: describedString(
      { type: 'string', description: 'The run\'s key prefix (default /etcd-robustness/<name>/); deleted at the end.', pattern: '^/.*/$', maxLength: 1024 },
      'a key prefix that starts and ends with "/" and is not "/" alone',
    ),
    seed: integer(0, 2_147_483_647, 'Seeds traffic and faults (default: random, recorded in status).'),
    traffic: trafficSchema,
    watch: {
      type: 'object',
      description: 'The watches recorded beside the traffic.',
      properties: {
        enabled: boolean('Record watches beside the traffic.', true),
        progressNotify: boolean('Ask etcd for progress notifications, and request one every interval.', true),
        progressInterval: duration({ min: 100, description: 'How often a progress notification is requested.', default: '1s' }),
        perMember: boolean('One watch per member (true) or one over all members.', true),
        reopen: {
          type: 'object',
          description:
            'Extra short-lived watches at past or future revisions: every interval, one (per member when perMember) from the newest revision seen plus a seeded offset in [min, max]. Absent: none; {}: the defaults.',
          properties: {
            interval: duration({ min: 10, max: 3_600_000, description: 'Time between two reopened watches.', default: '1s' }),
            lifetime: duration({ min: 100, max: 3_600_000, description: 'How long each reopened watch stays open.', default: '5s' }),
            revisionOffset: {
              type: 'object',
              description: 'The offset from the newest revision seen: negative watches the past, positive the future (default -100..100).',
              properties: {
                min: integer(-1_000_000, 1_000_000, 'The lowest offset.'),
                max: integer(-1_000_000, 1_000_000, 'The highest offset.'),
              },
              'x-kubernetes-validations': [{ rule: '!has(self.min) || !has(self.max) || self.min <= self.max', message: 'max must not be below min', fieldPath: '.max' }],
            },
          },
        },
      },
    },
    checks: {
      type: 'object',
      description: 'Which checks run on the recorded history.',
      properties: {
        linearizability: boolean('Check the operations for linearizability.', true),
        watch: boolean('Check the watch streams against the history.', true),
        hashKV: boolean('At the end of a run with faults, every member\'s HashKV must agree.', true),
      },
      'x-kubernetes-validations': [
        {
          rule: '(!has(self.linearizability) || self.linearizability) || (!has(self.watch) || self.watch)',
          message: 'at least one of linearizability and watch must be true: a run that checks nothing proves nothing',
        },
      ],
    },
    abortOnViolation: boolean('Stop the traffic as soon as the live checker sees a violation.', false),
    selfTest: {
      type: 'object',
      description: 'Deliberate breakage proving the pipeline catches a violation.',
      properties: {
        staleReads: {
          type: 'object',
          description: 'Reads go to a lagging member as serializable but are recorded as linearizable. {} enables it.',
          properties: { member: describedString({ type: 'string', description: 'The lagging member (default: chosen by the runner).', minLength: 1, maxLength: 253 }, 'a member name') },
        },
      },
    },
    faults: faultsSchema,
    runner: runnerSchema,
  },
  required: ['clusterRef'],
  'x-kubernetes-validations': [
    // duration has a default (60s), so a timeout is always compared with one.
    durationOrder('duration', 'timeout', 'timeout must be longer than duration', true),
    sharedConsent('compaction', 'compaction rewrites history for every client of a shared cluster'),
    sharedConsent('defragment', 'defragmentation stalls every client of a member of a shared cluster while it runs'),
    sharedConsent('faults', 'fault injection disrupts every client of a shared cluster'),
  ],
};

const storedReportSchema: ObjectSchema<StoredReportRef> = {
  type: 'object',
  description: 'Where the report is stored.',
  properties: {
    kind: enumOf(['configMap', 'volume'], { description: 'configMap: a ConfigMap per run in the run\'s namespace; volume: the operator\'s report volume.' }),
    name: text('The ConfigMap name or path.', 1024),
    size: { type: 'integer', format: 'int64', minimum: 0, description: 'Bytes stored (compressed).' },
    truncated: boolean('The history did not fit: only the verdict and HTML report were stored.'),
  },
  required: ['kind', 'name', 'size'],
};

const runRecordSchema: ObjectSchema<RunRecord> = {
  type: 'object',
  description: 'One finished run.',
  properties: {
    number: { type: 'integer', format: 'int64', minimum: 1, description: '1 for the first run of this RobustnessRun.' },
    phase: enumOf(runPhases),
    verdict: verdictSchema,
    reason: text('Why it ended as it did.', 32768),
    startTime: time('When it started.'),
    endTime: time('When it ended.'),
    seed: { type: 'integer', format: 'int64', minimum: 0, description: 'The seed it used.' },
    report: storedReportSchema,
    faultToWritable: {
      type: 'object',
      description: 'Time from each fault to the cluster being writable again (the first write invoked after it that succeeded).',
      properties: {
        faults: { type: 'integer', format: 'int64', minimum: 0, description: 'Faults measured.' },
        recovered: { type: 'integer', format: 'int64', minimum: 0, description: 'Faults after which a write succeeded before the run ended.' },
        medianMs: { type: 'integer', format: 'int64', minimum: 0, description: 'Median time to writable, ms.' },
        maxMs: { type: 'integer', format: 'int64', minimum: 0, description: 'Worst time to writable, ms.' },
      },
      required: ['faults', 'recovered'],
    },
  },
  required: ['number', 'phase', 'startTime'],
};

const count = (description: string): NumberSchema => ({ type: 'integer', format: 'int64', minimum: 0, description });

export const robustnessRunStatusSchema: ObjectSchema<RobustnessRunStatus> = {
  type: 'object',
  description: 'The run as the operator last observed it.',
  properties: {
    phase: enumOf(runPhases),
    observedGeneration: count('The metadata.generation this status describes.'),
    runNumber: { type: 'integer', format: 'int64', minimum: 1, description: 'The run in progress or last finished (1-based).' },
    startTime: time('When the run started.'),
    endTime: time('When the run ended.'),
    nextRunTime: time('Scheduled runs: when the next one starts.'),
    seed: { type: 'integer', format: 'int64', minimum: 0, description: 'The seed used.' },
    verdict: verdictSchema,
    reason: text('Why the run ended as it did.', 32768),
    operations: {
      type: 'object',
      description: 'Operations by outcome.',
      properties: { ok: count('Succeeded.'), failed: count('Failed.'), unknown: count('Unknown outcome.') },
      required: ['ok', 'failed', 'unknown'],
    },
    achievedQps: { type: 'number', minimum: 0, description: 'Requests per second achieved.' },
    availability: { type: 'number', minimum: 0, description: 'Share of operations that succeeded.' },
    faults: {
      type: 'object',
      description: 'Faults by outcome.',
      properties: { injected: count('Injected.'), failed: count('Failed to inject or verify.'), active: count('Active now.') },
      required: ['injected', 'failed', 'active'],
    },
    violations: {
      type: 'array',
      description: 'At most 10, the first ones found (the report has the evidence).',
      items: {
        type: 'object',
        properties: { check: text('The check that failed.', 256), summary: text('What was seen.', 4096) },
        required: ['check', 'summary'],
      },
      maxItems: 10,
      'x-kubernetes-list-type': 'atomic',
    },
    report: storedReportSchema,
    recording: {
      type: 'object',
      description: 'While a run goes: where its history is recorded (a folder on the operator replica running it).',
      properties: { replica: text('The operator replica running it.', 253), path: text('The folder of its history and report.', 4096) },
      required: ['replica', 'path'],
    },
    runnerJob: name('While a run goes in a runner Pod: the Job that runs it.'),
    lastRun: runRecordSchema,
    history: {
      type: 'array',
      description: 'Past runs, newest first, at most spec.schedule.historyLimit.',
      items: runRecordSchema,
      maxItems: 100,
      'x-kubernetes-list-type': 'atomic',
    },
    conditions: conditionsSchema,
  },
};

export const robustnessRunSchema: JSONSchemaProps = resourceSchema(
  'A robustness run: traffic, faults and checks against an EtcdCluster.',
  robustnessRunSpecSchema,
  robustnessRunStatusSchema,
  true,
);
