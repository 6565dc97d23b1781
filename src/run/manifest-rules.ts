/**
 * Rules for the scalar fields of a manifest: each takes a value read from YAML and returns it, or a Reject
 * saying what was expected. Most come from the field's schema in src/api (`ruleOf`, `durationOf`), so a
 * bound, an enum or a pattern is declared once, for the CRD and this reader alike; the rest say what a
 * schema cannot (a bound set by another field, the fault catalog's suggestions, cron's calendar).
 */
import { Cron } from 'croner';
import { cronFieldPattern, cronFields, valueNote } from '../api/index.ts';
import type { BooleanSchema, NumberSchema, StringSchema } from '../api/index.ts';
import { formatDuration, parseDuration } from '../duration.ts';

/** Stand-in for a mapping or list where a scalar was expected, so messages can say what was found. */
export class Collection {
  readonly kind: string;
  constructor(kind: string) {
    this.kind = kind;
  }
}

export function describe(value: unknown): string {
  if (value instanceof Collection) return value.kind;
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return String(value);
  return `a value of type ${typeof value}`;
}

export function closest(name: string, candidates: readonly string[]): string | undefined {
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

// ---------------------------------------------------------------------------------------------------
// Rules for scalar fields: each returns the value or a Reject saying what was expected

export class Reject {
  readonly problem: string;
  constructor(problem: string) {
    this.problem = problem;
  }
}

export type Rule<T> = (value: unknown) => T | Reject;

export function expected(what: string, value: unknown, hint = ''): Reject {
  return new Reject(`must be ${what}, got ${describe(value)}${hint}`);
}

/** Quoted numbers are a type error, as in the CRD's schema: accepting them here would let a manifest pass locally and fail on kubectl apply. */
export function quotedNumberHint(value: unknown): string {
  return typeof value === 'string' && value.trim() !== '' && Number.isFinite(Number(value)) ? ' (write the number without quotes)' : '';
}

export function numberRule(what: string, accept: (n: number) => boolean): Rule<number> {
  return (value) =>
    typeof value === 'number' && Number.isFinite(value) && accept(value) ? value : expected(what, value, quotedNumberHint(value));
}

const booleanRule: Rule<boolean> = (value) => (typeof value === 'boolean' ? value : expected('true or false', value));

function oneOf<T extends string>(allowed: readonly T[]): Rule<T> {
  return (value) =>
    typeof value === 'string' && (allowed as readonly string[]).includes(value)
      ? (value as T)
      : expected(`one of ${allowed.join(', ')}`, value);
}

export function stringRule(what: string, accept: (s: string) => boolean): Rule<string> {
  return (value) => (typeof value === 'string' && accept(value) ? value : expected(what, value));
}

export function durationRule(min: number, max = Number.MAX_SAFE_INTEGER, bounds?: string): Rule<number> {
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

const cronFieldRegExps = cronFields.map((f) => new RegExp(`^${cronFieldPattern(f.values, f.steps)}$`));
const cronExample = 'such as "0 3 * * *" (minute hour day-of-month month day-of-week, UTC)';

export const cronRule: Rule<string> = (value) => {
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

// ---------------------------------------------------------------------------------------------------
// Rules from the schema

/** The phrase for a number's bounds, as the hand-written rules said it. */
function numberWhat(schema: NumberSchema): string {
  const { minimum: min, maximum: max } = schema;
  const kind = schema.type === 'integer' ? 'an integer' : 'a number';
  if (min !== undefined && max !== undefined) return `${kind} between ${min} and ${max}`;
  if (min === 0 && schema.exclusiveMinimum === true) return `a positive ${schema.type === 'integer' ? 'integer' : 'number'}`;
  if (min !== undefined) return `${kind} ${schema.exclusiveMinimum === true ? '>' : '>='} ${min}`;
  if (max !== undefined) return `${kind} ${schema.exclusiveMaximum === true ? '<' : '<='} ${max}`;
  return kind;
}

function numberRuleOf(schema: NumberSchema): Rule<number> {
  const { minimum: min, maximum: max } = schema;
  return numberRule(numberWhat(schema), (n) => {
    if (schema.type === 'integer' && !Number.isInteger(n)) return false;
    if (min !== undefined && (schema.exclusiveMinimum === true ? n <= min : n < min)) return false;
    return max === undefined || (schema.exclusiveMaximum === true ? n < max : n <= max);
  });
}

function stringRuleOf(schema: StringSchema): Rule<string> {
  if (schema.enum !== undefined) return oneOf(schema.enum);
  const note = valueNote(schema);
  if (note?.kind === 'duration') throw new Error('unreachable: a duration field is read with durationOf, as milliseconds');
  const pattern = schema.pattern === undefined ? undefined : new RegExp(schema.pattern);
  return stringRule(note?.what ?? 'a string', (s) => {
    if (schema.minLength !== undefined && s.length < schema.minLength) return false;
    if (schema.maxLength !== undefined && s.length > schema.maxLength) return false;
    return pattern === undefined || pattern.test(s);
  });
}

const rulesBySchema = new WeakMap<object, Rule<unknown>>();

/**
 * The rule of a field, from its schema: the type, bounds, values, pattern and lengths the CRD declares,
 * with the phrase its builder noted for people (src/api/schema-kit.ts).
 */
export function ruleOf(schema: BooleanSchema): Rule<boolean>;
export function ruleOf<T extends number>(schema: NumberSchema<T>): Rule<T>;
export function ruleOf<T extends string>(schema: StringSchema<T>): Rule<T>;
export function ruleOf(schema: BooleanSchema | NumberSchema | StringSchema): Rule<unknown> {
  // Built once per schema (a pattern compiles once), however many manifests and resources are read.
  let rule = rulesBySchema.get(schema);
  if (rule === undefined) {
    rule = schema.type === 'boolean' ? booleanRule : schema.type === 'string' ? stringRuleOf(schema) : numberRuleOf(schema);
    rulesBySchema.set(schema, rule);
  }
  return rule;
}


function durationNote(schema: StringSchema): { minMs: number; maxMs: number | undefined } {
  const note = valueNote(schema);
  if (note?.kind !== 'duration') throw new Error('unreachable: durationOf needs a schema built by duration() (src/api/schema-kit.ts)');
  return note;
}

/** The rule of a duration field (read as milliseconds), with the bounds its schema declares. */
export function durationOf(schema: StringSchema): Rule<number> {
  const { minMs, maxMs } = durationNote(schema);
  return durationRule(minMs, maxMs);
}

/** The default a schema declares; a field read with it must have one. */
export function defaultOf<T>(schema: { default?: T; description?: string }): T {
  if (schema.default === undefined) throw new Error(`unreachable: the schema of "${schema.description ?? '?'}" has no default`);
  return schema.default;
}

/** The default of a duration field, in milliseconds. */
export function durationDefaultOf(schema: StringSchema): number {
  return parseDuration(defaultOf(schema));
}

/** The fields of an object schema: the only ones its section of a manifest may hold. */
export function fieldsOf(schema: { properties: object }): readonly string[] {
  return Object.keys(schema.properties);
}
