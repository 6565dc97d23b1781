/**
 * The history format's line validators (docs/history-format.md): the field readers and one parser per
 * kind of line, each turning `unknown` JSON into domain types or throwing FieldError. Validation happens
 * here, once, so the model can trust its input. Separate from the streaming HistoryParser (parse.ts),
 * which feeds them lines and tracks what spans lines (clients, invocations, watches, faults).
 */
import { faultNames } from '../domain/index.ts';
import type {
  Compare,
  EtcdRequest,
  EtcdResponse,
  FaultEvent,
  FaultName,
  FaultPhase,
  HistoryMeta,
  Invocation,
  KeyValue,
  Operation,
  TxnOp,
  WatchEvent,
  WatchRequest,
  WatchResponse,
} from '../domain/index.ts';

export class HistoryFormatError extends Error {
  override name = 'HistoryFormatError';
  readonly file: string;
  readonly line: number;
  readonly problem: string;
  constructor(file: string, line: number, problem: string) {
    super(`${file}:${line}: ${problem}`);
    this.file = file;
    this.line = line;
    this.problem = problem;
  }
}

/** Thrown inside field readers; turned into a HistoryFormatError with the line number. */
export class FieldError extends Error {}

export type Json = Record<string, unknown>;

/**
 * Input quoted in an error message: printable ASCII only (control characters and everything else
 * escaped, so binary input cannot reach a terminal raw), at most ~80 characters of it.
 */
export function excerpt(text: string, max = 80): string {
  return `"${printable(text, max)}"`;
}

/** The text escaped as inside a JSON string, non-ASCII too, cut to `max` characters (saying how long it was). */
export function printable(text: string, max: number): string {
  const cut = text.length > max ? text.slice(0, max) : text;
  const escaped = JSON.stringify(cut)
    .slice(1, -1)
    .replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return text.length > max ? `${escaped}... (${text.length} characters)` : escaped;
}

/** A JSON value quoted in an error message (see excerpt). */
export function shown(value: unknown): string {
  if (value === undefined) return 'nothing';
  return typeof value === 'string' ? excerpt(value) : printable(JSON.stringify(value), 80);
}

/** The fields each line kind may have (docs/history-format.md); any other is rejected, not ignored. */
export const lineFields = {
  operation: ['client', 'call', 'return', 'request', 'response', 'member', 'error'],
  meta: ['kind', 'seed', 'cluster', 'profile', 'startTime', 'prefix', 'mode', 'initialRevision'],
  watch: ['kind', 'id', 'client', 'member', 'request', 'response'],
  fault: ['kind', 'id', 'time', 'phase', 'fault', 'targets', 'params', 'detail'],
  // Written when an operation is sent; an operation line with the same client and call completes it.
  invoke: ['kind', 'client', 'call', 'request', 'member'],
} as const satisfies Record<string, readonly string[]>;

const requestFields: Record<string, readonly string[]> = {
  range: ['type', 'key', 'end', 'revision', 'limit', 'keysOnly', 'serializable'],
  put: ['type', 'key', 'value', 'lease'],
  delete: ['type', 'key', 'end'],
  txn: ['type', 'compare', 'success', 'failure'],
  leaseGrant: ['type', 'id', 'ttl'],
  leaseRevoke: ['type', 'id'],
  compact: ['type', 'revision'],
  defragment: ['type'],
};

const responseFields: Record<string, readonly string[]> = {
  range: ['revision', 'kvs', 'count'],
  delete: ['revision', 'deleted'],
  txn: ['revision', 'succeeded', 'results'],
  put: ['revision'],
  leaseGrant: ['revision'],
  leaseRevoke: ['revision'],
  compact: ['revision'],
  defragment: ['revision'],
};

const keyValueFields = ['key', 'value', 'modRevision', 'createRevision', 'version', 'lease'];
const compareFields = ['key', 'target', 'result', 'value'];
const watchRequestFields = ['key', 'end', 'startRevision', 'progressNotify', 'prevKV'];
const watchResponseFields = ['time', 'revision', 'events', 'progress', 'canceled', 'compactRevision', 'error'];
const watchEventFields = ['type', 'key', 'value', 'modRevision', 'createRevision', 'version', 'isCreate', 'lease', 'prevKV'];

/** Rejects a field the format does not define: a typo or a newer writer's field must not be silently ignored. */
export function onlyFields(value: Json, allowed: readonly string[], where: string): void {
  for (const name of Object.keys(value)) {
    if (!allowed.includes(name)) throw new FieldError(`unknown field ${excerpt(name)} in ${where}`);
  }
}

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function object(value: unknown, where: string): Json {
  if (!isObject(value)) throw new FieldError(`${where} must be an object`);
  return value;
}

export function string(value: unknown, where: string): string {
  if (typeof value !== 'string') throw new FieldError(`${where} must be a string`);
  return value;
}

export function optString(value: unknown, where: string): string | undefined {
  return value === undefined ? undefined : string(value, where);
}

export function integer(value: unknown, where: string, min = 0): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw new FieldError(`${where} must be an integer >= ${min}, got ${shown(value)}`);
  }
  return value;
}

export function optInteger(value: unknown, where: string, min = 0): number | undefined {
  return value === undefined || value === null ? undefined : integer(value, where, min);
}

function optBoolean(value: unknown, where: string): boolean | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'boolean') throw new FieldError(`${where} must be true or false`);
  return value;
}

/** Lease ids are int64: accept a decimal string or a safe integer, keep a string. */
function leaseId(value: unknown, where: string): string {
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return String(value);
  if (typeof value === 'string' && /^\d+$/.test(value)) return value;
  throw new FieldError(`${where} must be a lease id (a non-negative integer or decimal string)`);
}

function optLeaseId(value: unknown, where: string): string | undefined {
  return value === undefined || value === null || value === 0 || value === '0' ? undefined : leaseId(value, where);
}

export function array(value: unknown, where: string): unknown[] {
  if (!Array.isArray(value)) throw new FieldError(`${where} must be an array`);
  return value;
}

/** Drops absent optional fields, so parsed values compare equal to hand-written ones. */
export function omitUndefined<T extends object>(value: T): T {
  // A plain loop: this runs for every parsed object, and Object.entries/fromEntries cost a fifth of a check.
  const out: Record<string, unknown> = {};
  for (const key in value) {
    const v = value[key];
    if (v !== undefined) out[key] = v;
  }
  return out as T;
}

const compareTargets = new Set(['value', 'mod', 'create', 'version', 'lease']);
const compareResults = new Set(['=', '!=', '<', '>']);

function parseCompare(raw: unknown, where: string): Compare {
  const c = object(raw, where);
  onlyFields(c, compareFields, where);
  const target = string(c['target'], `${where}.target`);
  if (!compareTargets.has(target)) throw new FieldError(`${where}.target must be one of value, mod, create, version, lease; got ${excerpt(target)}`);
  const result = string(c['result'], `${where}.result`);
  if (!compareResults.has(result)) throw new FieldError(`${where}.result must be one of =, !=, <, >; got ${excerpt(result)}`);
  const value =
    target === 'value' ? string(c['value'], `${where}.value`) : target === 'lease' ? (optLeaseId(c['value'], `${where}.value`) ?? '0') : integer(c['value'], `${where}.value`);
  return { key: string(c['key'], `${where}.key`), target: target as Compare['target'], result: result as Compare['result'], value };
}

function parseTxnOp(raw: unknown, where: string): TxnOp {
  const op = parseRequest(raw, where);
  if (op.type !== 'range' && op.type !== 'put' && op.type !== 'delete') {
    throw new FieldError(`${where}.type must be range, put or delete inside a txn, got ${excerpt(op.type)}`);
  }
  return op;
}

export function parseRequest(raw: unknown, where = 'request'): EtcdRequest {
  const r = object(raw, where);
  const type = r['type'];
  if (typeof type === 'string' && Object.hasOwn(requestFields, type)) onlyFields(r, requestFields[type]!, where);
  switch (type) {
    case 'range':
      return omitUndefined({
        type,
        key: string(r['key'], `${where}.key`),
        end: optString(r['end'], `${where}.end`),
        revision: optInteger(r['revision'], `${where}.revision`),
        limit: optInteger(r['limit'], `${where}.limit`),
        keysOnly: optBoolean(r['keysOnly'], `${where}.keysOnly`),
        serializable: optBoolean(r['serializable'], `${where}.serializable`),
      });
    case 'put':
      return omitUndefined({
        type,
        key: string(r['key'], `${where}.key`),
        value: string(r['value'], `${where}.value`),
        lease: optLeaseId(r['lease'], `${where}.lease`),
      });
    case 'delete':
      return omitUndefined({ type, key: string(r['key'], `${where}.key`), end: optString(r['end'], `${where}.end`) });
    case 'txn':
      return {
        type,
        compare: array(r['compare'] ?? [], `${where}.compare`).map((c, i) => parseCompare(c, `${where}.compare[${i}]`)),
        success: array(r['success'] ?? [], `${where}.success`).map((o, i) => parseTxnOp(o, `${where}.success[${i}]`)),
        failure: array(r['failure'] ?? [], `${where}.failure`).map((o, i) => parseTxnOp(o, `${where}.failure[${i}]`)),
      };
    case 'leaseGrant':
      return { type, id: leaseId(r['id'], `${where}.id`), ttl: integer(r['ttl'], `${where}.ttl`) };
    case 'leaseRevoke':
      return { type, id: leaseId(r['id'], `${where}.id`) };
    case 'compact':
      return { type, revision: integer(r['revision'], `${where}.revision`) };
    case 'defragment':
      return { type };
    default:
      throw new FieldError(
        `${where}.type must be one of range, put, delete, txn, leaseGrant, leaseRevoke, compact, defragment; got ${shown(type)}`,
      );
  }
}

export function parseKeyValue(raw: unknown, where: string): KeyValue {
  const kv = object(raw, where);
  onlyFields(kv, keyValueFields, where);
  return omitUndefined({
    key: string(kv['key'], `${where}.key`),
    value: optString(kv['value'], `${where}.value`),
    modRevision: optInteger(kv['modRevision'], `${where}.modRevision`),
    createRevision: optInteger(kv['createRevision'], `${where}.createRevision`),
    version: optInteger(kv['version'], `${where}.version`),
    lease: optLeaseId(kv['lease'], `${where}.lease`),
  });
}

const keyValueFieldSet: ReadonlySet<string> = new Set(keyValueFields);

/** A field parseKeyValue reads with optInteger, when it holds one (or nothing). */
function plainOptInteger(value: unknown): boolean {
  return value === undefined || value === null || (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0);
}

/**
 * parseKeyValue's result for a key-value that needs no message (every field known and of its type),
 * without building the messages' paths; undefined for any other, which parseKeyValue then rejects. A list
 * read returns hundreds of these: building "response.kvs[17].modRevision" for each field was most of the
 * cost of parsing a history.
 */
export function plainKeyValue(raw: unknown): KeyValue | undefined {
  if (!isObject(raw)) return undefined;
  for (const name in raw) if (!keyValueFieldSet.has(name)) return undefined;
  const { key, value, modRevision, createRevision, version, lease } = raw;
  if (typeof key !== 'string' || (value !== undefined && typeof value !== 'string')) return undefined;
  if (!plainOptInteger(modRevision) || !plainOptInteger(createRevision) || !plainOptInteger(version)) return undefined;
  // Leases as optLeaseId reads them: none (absent, null, 0 or "0"), a safe integer, or a decimal string.
  let leaseText: string | undefined;
  if (typeof lease === 'number') {
    if (!Number.isSafeInteger(lease) || lease < 0) return undefined;
    leaseText = lease === 0 ? undefined : String(lease);
  } else if (typeof lease === 'string') {
    if (!/^\d+$/.test(lease)) return undefined;
    leaseText = lease === '0' ? undefined : lease;
  } else if (lease !== undefined && lease !== null) return undefined;
  // The fields in parseKeyValue's order, the absent ones left out (as omitUndefined does).
  const kv: KeyValue = { key };
  if (value !== undefined) kv.value = value;
  if (typeof modRevision === 'number') kv.modRevision = modRevision;
  if (typeof createRevision === 'number') kv.createRevision = createRevision;
  if (typeof version === 'number') kv.version = version;
  if (leaseText !== undefined) kv.lease = leaseText;
  return kv;
}

function parseResponseFor(request: EtcdRequest, raw: unknown, where: string): EtcdResponse {
  const r = object(raw, where);
  if (r['error'] !== undefined) {
    onlyFields(r, ['error'], where);
    return { error: string(r['error'], `${where}.error`) };
  }
  onlyFields(r, responseFields[request.type]!, `${where} (of a ${request.type})`);
  const revision = optInteger(r['revision'], `${where}.revision`);
  switch (request.type) {
    case 'range':
      return omitUndefined({
        revision,
        kvs: array(r['kvs'] ?? [], `${where}.kvs`).map((kv, i) => plainKeyValue(kv) ?? parseKeyValue(kv, `${where}.kvs[${i}]`)),
        count: optInteger(r['count'], `${where}.count`),
      });
    case 'delete':
      return omitUndefined({ revision, deleted: optInteger(r['deleted'], `${where}.deleted`) });
    case 'txn': {
      const succeeded = r['succeeded'];
      if (typeof succeeded !== 'boolean') throw new FieldError(`${where}.succeeded must be true or false for a txn`);
      const ops = succeeded ? request.success : request.failure;
      const results =
        r['results'] === undefined
          ? undefined
          : array(r['results'], `${where}.results`).map((res, i) => {
              const op = ops[i];
              if (!op) throw new FieldError(`${where}.results has ${i + 1}+ entries but the txn branch has ${ops.length} operations`);
              return parseResponseFor(op, res, `${where}.results[${i}]`);
            });
      return omitUndefined({ revision, succeeded, results });
    }
    case 'put':
    case 'leaseGrant':
    case 'leaseRevoke':
    case 'compact':
    case 'defragment':
      return omitUndefined({ revision });
  }
}

export function parseOperation(line: Json): Operation {
  onlyFields(line, lineFields.operation, 'an operation line');
  const client = integer(line['client'], 'client');
  const call = integer(line['call'], 'call');
  const ret = optInteger(line['return'], 'return');
  if (ret !== undefined && ret < call) throw new FieldError(`return (${ret}) is before call (${call})`);
  const request = parseRequest(line['request']);
  let response: EtcdResponse | undefined;
  if (line['response'] !== undefined && line['response'] !== null) {
    if (ret === undefined) throw new FieldError('an operation with a response must have a return time');
    response = parseResponseFor(request, line['response'], 'response');
  } else if (ret !== undefined && request.type !== 'defragment') {
    throw new FieldError('an operation with a return time must have a response (use "response": {"error": ...} for a failed request)');
  }
  return omitUndefined({
    client,
    call,
    return: ret ?? null,
    request,
    response,
    member: optString(line['member'], 'member'),
    error: optString(line['error'], 'error'),
  });
}

export function parseInvocation(line: Json): Invocation {
  onlyFields(line, lineFields.invoke, 'an invoke line');
  return omitUndefined({
    kind: 'invoke' as const,
    client: integer(line['client'], 'client'),
    call: integer(line['call'], 'call'),
    request: parseRequest(line['request']),
    member: optString(line['member'], 'member'),
  });
}

/** The unknown-outcome operation an invocation left open at the end of the history stands for. */
export function unfinished(invocation: Invocation): Operation {
  const { client, call, request, member } = invocation;
  return omitUndefined({ client, call, return: null, request, member });
}

export function parseMeta(line: Json): HistoryMeta {
  onlyFields(line, lineFields.meta, 'the meta line');
  const mode = line['mode'];
  if (mode !== undefined && mode !== 'exclusive' && mode !== 'shared') {
    throw new FieldError(`mode must be "exclusive" or "shared", got ${shown(mode)}`);
  }
  const seed = line['seed'];
  if (seed !== undefined && typeof seed !== 'number' && typeof seed !== 'string') throw new FieldError('seed must be a number or a string');
  return omitUndefined({
    kind: 'meta' as const,
    seed,
    cluster: optString(line['cluster'], 'cluster'),
    profile: optString(line['profile'], 'profile'),
    startTime: optString(line['startTime'], 'startTime'),
    prefix: optString(line['prefix'], 'prefix'),
    mode,
    initialRevision: optInteger(line['initialRevision'], 'initialRevision', 1),
  });
}

export function parseWatchRequest(raw: unknown): WatchRequest {
  const r = object(raw, 'request');
  onlyFields(r, watchRequestFields, 'request');
  return omitUndefined({
    key: string(r['key'], 'request.key'),
    end: optString(r['end'], 'request.end'),
    startRevision: optInteger(r['startRevision'], 'request.startRevision'),
    progressNotify: optBoolean(r['progressNotify'], 'request.progressNotify'),
    prevKV: optBoolean(r['prevKV'], 'request.prevKV'),
  });
}

function parseWatchEvent(raw: unknown, where: string): WatchEvent {
  const e = object(raw, where);
  onlyFields(e, watchEventFields, where);
  const type = e['type'];
  if (type !== 'put' && type !== 'delete') throw new FieldError(`${where}.type must be "put" or "delete"`);
  return omitUndefined({
    type,
    key: string(e['key'], `${where}.key`),
    value: optString(e['value'], `${where}.value`),
    modRevision: integer(e['modRevision'], `${where}.modRevision`),
    createRevision: optInteger(e['createRevision'], `${where}.createRevision`),
    version: optInteger(e['version'], `${where}.version`),
    isCreate: optBoolean(e['isCreate'], `${where}.isCreate`),
    lease: optString(e['lease'], `${where}.lease`),
    prevKV: e['prevKV'] === undefined || e['prevKV'] === null ? undefined : parseKeyValue(e['prevKV'], `${where}.prevKV`),
  });
}

export function parseWatchResponse(raw: unknown): WatchResponse {
  const r = object(raw, 'response');
  onlyFields(r, watchResponseFields, 'response');
  return omitUndefined({
    time: integer(r['time'], 'response.time'),
    revision: optInteger(r['revision'], 'response.revision'),
    events: array(r['events'] ?? [], 'response.events').map((e, i) => parseWatchEvent(e, `response.events[${i}]`)),
    progress: optBoolean(r['progress'], 'response.progress'),
    canceled: optBoolean(r['canceled'], 'response.canceled'),
    compactRevision: optInteger(r['compactRevision'], 'response.compactRevision'),
    error: optString(r['error'], 'response.error'),
  });
}

const faultPhases: readonly FaultPhase[] = ['inject', 'verified', 'heal', 'failed'];

function parseFaultParams(raw: unknown): Record<string, number | string> | undefined {
  if (raw === undefined || raw === null) return undefined;
  const params = object(raw, 'params');
  for (const [name, value] of Object.entries(params)) {
    if (typeof value !== 'string' && !(typeof value === 'number' && Number.isFinite(value))) throw new FieldError(`params.${printable(name, 80)} must be a number or a string`);
  }
  return params as Record<string, number | string>;
}

export function parseFault(line: Json): FaultEvent {
  onlyFields(line, lineFields.fault, 'a fault line');
  const phase = line['phase'];
  if (typeof phase !== 'string' || !(faultPhases as readonly string[]).includes(phase)) {
    throw new FieldError(`phase must be one of ${faultPhases.join(', ')}; got ${shown(phase)}`);
  }
  const fault = line['fault'];
  if (typeof fault !== 'string' || !(faultNames as readonly string[]).includes(fault)) {
    throw new FieldError(`fault must be one of ${faultNames.join(', ')}; got ${shown(fault)}`);
  }
  return omitUndefined({
    kind: 'fault' as const,
    id: integer(line['id'], 'id'),
    time: integer(line['time'], 'time'),
    phase: phase as FaultPhase,
    fault: fault as FaultName,
    targets: array(line['targets'], 'targets').map((t, i) => string(t, `targets[${i}]`)),
    params: parseFaultParams(line['params']),
    detail: optString(line['detail'], 'detail'),
  });
}
