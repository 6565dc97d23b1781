/**
 * The pieces the CRD schemas are built from (./run-schema.ts, ./cluster-schema.ts): patterns, typed
 * builders for durations, names and numbers, conditions. A builder that needs a phrase for people (what a
 * duration's bounds are, what a name may hold) records it beside the schema (`valueNotes`), so the
 * manifest reader (src/run/manifest-rules.ts) says the same thing the schema declares, from one declaration.
 */
import type { ResourceRequirements } from '../domain/cluster-spec.ts';
import type { Condition } from '../domain/kube.ts';
import { formatDuration } from '../duration.ts';
import { enumOf } from './openapi.ts';
import type { ArraySchema, BooleanSchema, JSONSchemaProps, MapSchema, NumberSchema, ObjectSchema, StringSchema, ValidationRule } from './openapi.ts';

// ---------------------------------------------------------------------------------------------------
// Notes for the manifest reader

/**
 * What a reader needs beyond the OpenAPI keywords to read a string field as its schema declares it: a
 * duration's bounds in milliseconds (the CRD states them in CEL, which the reader does not run), or the
 * phrase that says what a patterned string may hold. Kept beside the schema object, not in it, so the
 * CRD stays pure apiextensions.k8s.io/v1 (the API server refuses unknown keywords).
 */
export type ValueNote = { kind: 'duration'; minMs: number; maxMs: number | undefined } | { kind: 'text'; what: string };

const notes = new WeakMap<object, ValueNote>();

function noted<S extends object>(schema: S, note: ValueNote): S {
  notes.set(schema, note);
  return schema;
}

/** The note its builder left on a schema, if any. */
export function valueNote(schema: object): ValueNote | undefined {
  return notes.get(schema);
}

/** A string schema whose values the reader describes as `what` (its pattern and lengths are checked too). */
export function describedString<S extends StringSchema>(schema: S, what: string): S {
  return noted(schema, { kind: 'text', what });
}

// ---------------------------------------------------------------------------------------------------
// Patterns and small schemas

/**
 * Durations as the parser reads them (src/duration.ts: numbers with ms, s, m or h, e.g. `1h30m`), limited
 * to whole milliseconds: no fraction of ms, at most 3 decimals on s, 4 on m, 5 on h. Go's
 * time.ParseDuration (CEL's duration()) reads every one of them.
 */
export const durationPattern = '^([0-9]+ms|[0-9]+([.][0-9]{1,3})?s|[0-9]+([.][0-9]{1,4})?m|[0-9]+([.][0-9]{1,5})?h)+$';

/** A Kubernetes quantity (resource.Quantity's grammar) without a sign. */
export const quantityPattern = '^([0-9]+([.][0-9]*)?|[.][0-9]+)(([KMGTPE]i)|[numkMGTPE]|([eE][+-]?([0-9]+([.][0-9]*)?|[.][0-9]+)))?$';

export const dnsSubdomainPattern = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$';
export const dnsLabelPattern = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$';

/** A CEL raw string literal (no escapes inside; none of our patterns holds a quote). */
export function celString(text: string): string {
  if (text.includes("'")) throw new Error(`unreachable: a CEL literal with a quote: ${text}`);
  return `r'${text}'`;
}

export const isDuration = (expression: string): string => `${expression}.matches(${celString(durationPattern)})`;

interface DurationBounds {
  /** Inclusive, ms. */
  min: number;
  max?: number;
  description: string;
  default?: string;
}

/** A duration field: the pattern, and a CEL rule for the bounds (the parser's message). */
export function duration(bounds: DurationBounds): StringSchema {
  const checks = [`duration(self) >= duration('${formatDuration(bounds.min)}')`];
  if (bounds.max !== undefined) checks.push(`duration(self) <= duration('${formatDuration(bounds.max)}')`);
  const range =
    bounds.max === undefined ? `at least ${formatDuration(bounds.min)}` : `between ${formatDuration(bounds.min)} and ${formatDuration(bounds.max)}`;
  const schema: StringSchema = {
    type: 'string',
    description: `${bounds.description} A duration such as 500ms, 30s, 2m or 1h30m, ${range}.`,
    pattern: durationPattern,
    maxLength: 64,
    ...(bounds.default === undefined ? {} : { default: bounds.default }),
    'x-kubernetes-validations': [{ rule: `!${isDuration('self')} || (${checks.join(' && ')})`, message: `must be a duration ${range}` }],
  };
  return noted(schema, { kind: 'duration', minMs: bounds.min, maxMs: bounds.max });
}

/** A rule on an object: `a` must not be longer than `b` when both are given (and well-formed). */
export function durationOrder(a: string, b: string, message: string, strict = false): ValidationRule {
  const compare = strict ? '<' : '<=';
  return {
    rule: `!has(self.${a}) || !has(self.${b}) || !${isDuration(`self.${a}`)} || !${isDuration(`self.${b}`)} || duration(self.${a}) ${compare} duration(self.${b})`,
    message,
    fieldPath: `.${b}`,
  };
}

/** An object name (a DNS subdomain). */
export function name(description: string): StringSchema {
  return describedString(
    { type: 'string', description, pattern: dnsSubdomainPattern, maxLength: 253 },
    'a name of lowercase letters, digits, "-" and "." (starting and ending with a letter or digit, at most 253 characters)',
  );
}

/** A namespace name (a DNS label). */
export function namespaceName(description: string): StringSchema {
  return describedString(
    { type: 'string', description, pattern: dnsLabelPattern, maxLength: 63 },
    'a namespace name of lowercase letters, digits and "-" (at most 63 characters)',
  );
}

export function integer(minimum: number, maximum: number, description: string, defaultValue?: number): NumberSchema {
  return { type: 'integer', description, minimum, maximum, ...(defaultValue === undefined ? {} : { default: defaultValue }) };
}

export function boolean(description: string, defaultValue?: boolean): BooleanSchema {
  return { type: 'boolean', description, ...(defaultValue === undefined ? {} : { default: defaultValue }) };
}

export function text(description: string, maxLength: number): StringSchema {
  return { type: 'string', description, maxLength };
}

export function time(description: string): StringSchema {
  return { type: 'string', format: 'date-time', description };
}

export const verdictSchema = enumOf(['linearizable', 'violation', 'inconclusive'], { description: 'The verdict of the checks.' });

/** metav1.Condition, as controller-runtime's generators write it. */
export const conditionSchema: ObjectSchema<Condition> = {
  type: 'object',
  properties: {
    type: {
      type: 'string',
      description: 'The condition type, CamelCase.',
      maxLength: 316,
      pattern: '^([a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$',
    },
    status: enumOf(['True', 'False', 'Unknown']),
    observedGeneration: { type: 'integer', format: 'int64', minimum: 0, description: 'The metadata.generation the condition was computed from.' },
    lastTransitionTime: time('When status last changed.'),
    reason: { type: 'string', description: 'CamelCase, machine-readable.', minLength: 1, maxLength: 1024, pattern: '^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$' },
    message: text('Human-readable details.', 32768),
  },
  required: ['type', 'status', 'lastTransitionTime', 'reason', 'message'],
};

export const conditionsSchema: ArraySchema<Condition> = {
  type: 'array',
  description: 'The latest observations of the object, one per type.',
  items: conditionSchema,
  maxItems: 16,
  'x-kubernetes-list-type': 'map',
  'x-kubernetes-list-map-keys': ['type'],
};


// ---------------------------------------------------------------------------------------------------
// Whole resources

/** The root schema of a custom resource: metadata is the API server's, spec and status are ours. */
export function resourceSchema(description: string, spec: JSONSchemaProps, status: JSONSchemaProps, specRequired: boolean): JSONSchemaProps {
  return {
    type: 'object',
    description,
    properties: {
      apiVersion: { type: 'string', description: 'etcd.robustness.io/v1alpha1' },
      kind: { type: 'string', description: 'The kind.' },
      metadata: { type: 'object' },
      spec,
      status,
    },
    ...(specRequired ? { required: ['spec'] } : {}),
  };
}

export const quantity = (description: string, defaultValue?: string): StringSchema => ({
  type: 'string',
  description,
  pattern: quantityPattern,
  maxLength: 64,
  ...(defaultValue === undefined ? {} : { default: defaultValue }),
});

export const resourceList = (description: string): MapSchema<string> => ({
  type: 'object',
  description,
  additionalProperties: quantity('A quantity, e.g. 250m or 1Gi.'),
  maxProperties: 16,
});

/** Compute resources of a container, as the Pod API takes them. */
export const resourceRequirements = (description: string): ObjectSchema<ResourceRequirements> => ({
  type: 'object',
  description,
  properties: { requests: resourceList('Requested resources, e.g. cpu: 250m.'), limits: resourceList('Resource limits, e.g. memory: 1Gi.') },
});
