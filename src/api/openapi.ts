/**
 * A small typed builder for the OpenAPI v3 structural schemas of the CRDs. The schema of a field is
 * typed by the domain type it describes (`SchemaOf<T>`), so the compiler checks the CRD against
 * src/domain:
 *
 * - `ObjectSchema<T>` must have a property for exactly the keys of T (a missing or extra property is an
 *   error), each typed by that key's type, and `required` may only name keys that are not optional;
 * - a string or number field takes a string or number schema; a union of literals (`'Always' | 'Never'`,
 *   `1 | 3 | 5`) needs `enumOf` with exactly those values (the phantom `[enumCovers]` member makes a
 *   missing or extra value an error);
 * - defaults are typed by the field (a default of 2 for `replicas: 1 | 3 | 5` does not compile).
 *
 * For example, adding `priority: number` to EtcdClusterSpec without adding it to the schema fails with
 * `Property 'priority' is missing in type '{ version: ...; }' but required in type '{ version: ...; priority: ...; }'`,
 * and `topology: enumOf(['standard'])` fails with `Type '(value: "standard") => void' is not assignable to
 * type '(value: ClusterTopology) => void'`. test/unit/crd-drift.test.ts holds such cases as
 * `@ts-expect-error` lines, so the checks themselves are tested.
 *
 * What the types cannot say (CEL rules referring to fields, patterns) is checked by the API server when the
 * CRD is installed (test/integration/crd-validation.test.ts): it compiles every rule against the schema.
 */

/** A CEL validation rule (`x-kubernetes-validations`). */
export interface ValidationRule {
  rule: string;
  message?: string;
  /** A CEL expression giving the message (used instead of `message` when it evaluates). */
  messageExpression?: string;
  reason?: 'FieldValueInvalid' | 'FieldValueForbidden' | 'FieldValueRequired' | 'FieldValueDuplicate';
  /** Where the error is reported, relative to the node that holds the rule (`.member`). */
  fieldPath?: string;
}

/** apiextensions.k8s.io/v1 JSONSchemaProps: the part a structural schema uses. */
export interface JSONSchemaProps {
  type?: 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean';
  description?: string;
  format?: string;
  default?: unknown;
  enum?: readonly unknown[];
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  /** OpenAPI v3.0: a flag on `minimum` (`minimum: 0, exclusiveMinimum: true` is > 0). */
  exclusiveMinimum?: boolean;
  exclusiveMaximum?: boolean;
  minItems?: number;
  maxItems?: number;
  maxProperties?: number;
  properties?: Readonly<Record<string, JSONSchemaProps>>;
  additionalProperties?: JSONSchemaProps;
  items?: JSONSchemaProps;
  required?: readonly string[];
  'x-kubernetes-preserve-unknown-fields'?: true;
  'x-kubernetes-list-type'?: 'atomic' | 'set' | 'map';
  'x-kubernetes-list-map-keys'?: readonly string[];
  'x-kubernetes-validations'?: readonly ValidationRule[];
}

declare const enumCovers: unique symbol;

/**
 * Marks an enum schema as listing exactly the values of T. Only the type has it (nothing at run time
 * carries the symbol); a function type is contravariant in its parameter, so an enum of fewer values than
 * the field's type is not assignable, and the `enum` array rules out more.
 */
export interface Enum<T> {
  readonly enum: readonly T[];
  readonly [enumCovers]: (value: T) => void;
}

interface Common<T> {
  description?: string;
  default?: T;
  'x-kubernetes-validations'?: readonly ValidationRule[];
}

export interface StringSchema<T extends string = string> extends Common<T> {
  type: 'string';
  format?: 'date-time';
  /** A plain `string` field may still list its values (the file form's `fault: string` is a fault name). */
  enum?: readonly T[];
  pattern?: string;
  minLength?: number;
  maxLength?: number;
}

export interface NumberSchema<T extends number = number> extends Common<T> {
  type: 'integer' | 'number';
  format?: 'int32' | 'int64' | 'double';
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: boolean;
  exclusiveMaximum?: boolean;
}

export interface BooleanSchema extends Common<boolean> {
  type: 'boolean';
}

export interface ArraySchema<I> extends Common<readonly I[]> {
  type: 'array';
  items: SchemaOf<I>;
  maxItems: number;
  minItems?: number;
  'x-kubernetes-list-type'?: 'atomic' | 'set' | 'map';
  'x-kubernetes-list-map-keys'?: readonly (keyof I & string)[];
}

/** A map with data as keys (labels, resource requests). */
export interface MapSchema<V> extends Common<Readonly<Record<string, V>>> {
  type: 'object';
  additionalProperties: SchemaOf<V>;
  maxProperties?: number;
}

/**
 * A `Record<string, V>` whose keys are known to the API (fault parameters): a property per key, each a
 * schema of V; which keys belong to which value is left to CEL rules.
 */
export interface KnownKeysSchema<V> extends Common<Readonly<Record<string, V>>> {
  type: 'object';
  properties: Readonly<Record<string, SchemaOf<V>>>;
}

/** `Record<string, unknown>`: kept as written (reserved fields). */
export interface OpaqueObjectSchema extends Common<Readonly<Record<string, never>>> {
  type: 'object';
  'x-kubernetes-preserve-unknown-fields': true;
}

/** The keys of T that are not optional: the only ones `required` may list. */
export type RequiredKeys<T> = { [K in keyof T]-?: undefined extends T[K] ? never : K }[keyof T];

export interface ObjectSchema<T> extends Common<Readonly<Record<string, never>>> {
  type: 'object';
  properties: { [K in keyof Required<T>]-?: SchemaOf<Exclude<T[K], undefined>> };
  required?: readonly RequiredKeys<T>[];
}

type StringSchemaOf<T extends string> = string extends T ? StringSchema : StringSchema<T> & Enum<T>;
type NumberSchemaOf<T extends number> = number extends T ? NumberSchema : NumberSchema<T> & Enum<T>;
type ObjectOrMapSchema<T extends object> = string extends keyof T
  ? unknown extends T[keyof T]
    ? OpaqueObjectSchema
    : MapSchema<T[keyof T]> | KnownKeysSchema<T[keyof T]>
  : ObjectSchema<T>;

/**
 * The schema of a value of type T. Two unions a structural schema cannot express as one type get the
 * form it can: `number | string` is a number schema or a string schema (each field picks one), and
 * `string | SomeObject` (a list item that may be a name or a mapping) is the object form only.
 */
export type SchemaOf<T> = unknown extends T
  ? OpaqueObjectSchema
  : [T] extends [boolean]
    ? BooleanSchema
    : [T] extends [number]
      ? NumberSchemaOf<T>
      : [T] extends [string]
        ? StringSchemaOf<T>
        : [T] extends [readonly (infer I)[]]
          ? ArraySchema<I>
          : [T] extends [object]
            ? ObjectOrMapSchema<T>
            : [T] extends [number | string]
              ? NumberSchemaOf<Extract<T, number>> | StringSchemaOf<Extract<T, string>>
              : [T] extends [string | object]
                ? ObjectOrMapSchema<Extract<T, object>>
                : never;

/** An enum of exactly `values` (type `string`, or `integer` for numbers). */
export function enumOf<const T extends string>(values: readonly T[], extra?: Omit<StringSchema<T>, 'type'>): StringSchema<T> & Enum<T>;
export function enumOf<const T extends number>(values: readonly T[], extra?: Omit<NumberSchema<T>, 'type'>): NumberSchema<T> & Enum<T>;
export function enumOf(values: readonly (string | number)[], extra: object = {}): JSONSchemaProps {
  const type = values.every((v) => typeof v === 'number') ? 'integer' : 'string';
  return { type, ...extra, enum: [...values] };
}
