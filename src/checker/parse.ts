/**
 * Reads the JSON Lines history format (docs/history-format.md) into typed values, rejecting anything
 * malformed with `FILE:LINE: what is wrong`. Validation happens here, once, so the model can trust its
 * input: this is the boundary where `unknown` JSON becomes domain types.
 */
import { isDeepStrictEqual } from 'node:util';
import { faultNames } from '../domain/index.ts';
import { lazyRangeResponse } from './written-kvs.ts';
import type {
  Compare,
  EtcdRequest,
  EtcdResponse,
  FaultEvent,
  FaultName,
  FaultPhase,
  History,
  HistoryMeta,
  Invocation,
  KeyValue,
  Operation,
  RangeResponse,
  TornTail,
  TxnOp,
  WatchEvent,
  WatchRequest,
  WatchResponse,
  WatchStream,
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
class FieldError extends Error {}

type Json = Record<string, unknown>;

/**
 * Input quoted in an error message: printable ASCII only (control characters and everything else
 * escaped, so binary input cannot reach a terminal raw), at most ~80 characters of it.
 */
export function excerpt(text: string, max = 80): string {
  return `"${printable(text, max)}"`;
}

/** The text escaped as inside a JSON string, non-ASCII too, cut to `max` characters (saying how long it was). */
function printable(text: string, max: number): string {
  const cut = text.length > max ? text.slice(0, max) : text;
  const escaped = JSON.stringify(cut)
    .slice(1, -1)
    .replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return text.length > max ? `${escaped}... (${text.length} characters)` : escaped;
}

/** A JSON value quoted in an error message (see excerpt). */
function shown(value: unknown): string {
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
function onlyFields(value: Json, allowed: readonly string[], where: string): void {
  for (const name of Object.keys(value)) {
    if (!allowed.includes(name)) throw new FieldError(`unknown field ${excerpt(name)} in ${where}`);
  }
}

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function object(value: unknown, where: string): Json {
  if (!isObject(value)) throw new FieldError(`${where} must be an object`);
  return value;
}

function string(value: unknown, where: string): string {
  if (typeof value !== 'string') throw new FieldError(`${where} must be a string`);
  return value;
}

function optString(value: unknown, where: string): string | undefined {
  return value === undefined ? undefined : string(value, where);
}

function integer(value: unknown, where: string, min = 0): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw new FieldError(`${where} must be an integer >= ${min}, got ${shown(value)}`);
  }
  return value;
}

function optInteger(value: unknown, where: string, min = 0): number | undefined {
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

function array(value: unknown, where: string): unknown[] {
  if (!Array.isArray(value)) throw new FieldError(`${where} must be an array`);
  return value;
}

/** Drops absent optional fields, so parsed values compare equal to hand-written ones. */
function omitUndefined<T extends object>(value: T): T {
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

function parseKeyValue(raw: unknown, where: string): KeyValue {
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
function plainKeyValue(raw: unknown): KeyValue | undefined {
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

function parseOperation(line: Json): Operation {
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

function parseInvocation(line: Json): Invocation {
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
function unfinished(invocation: Invocation): Operation {
  const { client, call, request, member } = invocation;
  return omitUndefined({ client, call, return: null, request, member });
}

function parseMeta(line: Json): HistoryMeta {
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

function parseWatchRequest(raw: unknown): WatchRequest {
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

function parseWatchResponse(raw: unknown): WatchResponse {
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

function parseFault(line: Json): FaultEvent {
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

/** What HistoryParser.line needs to know about a line besides its text. */
export interface LineOptions {
  /**
   * The text after the history's last newline: nothing follows it. If it is not valid JSON, it is what a
   * crash cut mid-write; it is ignored and reported as `tornTail` instead of rejected.
   */
  last?: boolean;
}


export interface HistoryParserOptions {
  /**
   * Keep the operations (default true). Off, line() still returns each one but finish() returns a history
   * without operations, and memory stays independent of their number (the streaming check, stream.ts). A
   * client's operations are then checked against its previous one only: when a client's operations are
   * not in call order in the file, finish() sets `inCallOrder` to false, and the caller re-reads the
   * history whole to check them (the order is otherwise not required).
   */
  retainOperations?: boolean;
  /**
   * Skip watch response lines as our writer writes them (`{"kind":"watch","id":N,"response":...`) without
   * parsing them: for a later pass of the streaming check over a history an earlier pass validated, which
   * needs only the operations. Most of a history's bytes are watch responses.
   */
  skipWatchResponses?: boolean;
  /**
   * A later pass of the streaming check, over a history an earlier pass validated, which needs only the
   * operations: lines that start with `{"kind":` (never an operation: an operation line has no kind) are
   * skipped unparsed, invoke lines included (the operations an invocation never completed are the first
   * pass's to give), and clients are not followed again.
   */
  operationsOnly?: boolean;
  /**
   * With operationsOnly, on a history whose every non-blank line not starting with `{"kind":` is an
   * operation line (`kindMarked` after a full pass): asked before each such line is parsed, with the
   * operation's index; true skips it unparsed (it still counts in operationsSeen).
   */
  skipOperation?: (index: number, text: string) => boolean;
  /**
   * Validate the kvs arrays of operation lines in our writer's form (see elideKvs) without building them:
   * the operation is returned with those arrays empty, and this is called first with what they held. For
   * the streaming check's first pass, which needs no key-value but only whether any shows a revision or a
   * version (check.ts observedFields): most of a history's bytes are kvs of list reads. Any other line is
   * parsed whole, and every error is the one the whole line gives.
   */
  onElidedKvs?: (fields: ElidedKvsFields) => void;
  /** With onElidedKvs: the key-values whose value is one of these are kept (the observation pass, stream.ts). */
  keepKvValues?: ReadonlySet<string>;
  /**
   * A range read whose one kvs array is in our writer's form (see elideKvs) comes with its key-values as
   * text, parsed on first access (written-kvs.ts lazyRangeResponse): the model compares the text. For the
   * streaming check's last pass. Not with onElidedKvs.
   */
  lazyKvs?: boolean;
}

/** What the kvs arrays elided from one line held (see HistoryParserOptions.onElidedKvs). */
export interface ElidedKvsFields {
  /** Some key-value had a modRevision or a createRevision. */
  revision: boolean;
  /** Some key-value had a version. */
  version: boolean;
}

/** A JSON string's content without escapes (they are rare: such lines are parsed whole). */
const plainString = '[^"\\\\\\u0000-\\u001f]*';
/** An integer JSON spells, and a safe one (up to 15 digits). */
const safeInteger = '(?:0|[1-9]\\d{0,14})';
/** A key-value's revisions and version, each optional, in KeyValue's order. */
const revisions = `(?:,"modRevision":${safeInteger})?(?:,"createRevision":${safeInteger})?(?:,"version":${safeInteger})?`;
/**
 * A key-value as our writers write it: the probes' recorder (key, the revisions and version, value, lease)
 * or serializeHistory (KeyValue's order: the value before the revisions). Only key-values plainKeyValue
 * accepts match, each field at most once.
 */
const writtenKeyValue =
  `\\{"key":"${plainString}"(?:${revisions}(?:,"value":"${plainString}")?|(?:,"value":"${plainString}")?${revisions})` +
  `(?:,"lease":(?:${safeInteger}|"\\d+"|null))?\\}`;
/** The rest of a non-empty kvs array after its `[`, up to its `]`. */
const writtenKeyValues = new RegExp(`(?:${writtenKeyValue},)*${writtenKeyValue}\\]`, 'y');

/** A regular expression's test, false where it runs out of stack (a list read of very many keys). */
function matches(re: RegExp, text: string): boolean {
  try {
    return re.test(text);
  } catch {
    return false;
  }
}

/**
 * The key-values of text[start, end) (a run of writtenKeyValue, comma-separated) whose value is in `keep`,
 * comma-separated. No quote is inside a string there, so `{"key":"` opens a key-value and nothing else, and
 * after a value only integers, decimal strings or null come before its `}`.
 */
function keptKeyValues(text: string, start: number, end: number, keep: ReadonlySet<string>): string {
  const kept: string[] = [];
  for (let at = text.indexOf(',"value":"', start); at >= 0 && at < end; at = text.indexOf(',"value":"', at + 10)) {
    const close = text.indexOf('"', at + 10);
    if (!keep.has(text.slice(at + 10, close))) continue;
    kept.push(text.slice(text.lastIndexOf('{"key":"', at), text.indexOf('}', close) + 1));
  }
  return kept.join(',');
}

/**
 * The line with every `"kvs":[...]` array emptied (or holding only the key-values whose value is in
 * `keep`), when each is a run of key-values in our writers' form (writtenKeyValue) and the line has no
 * backslash (then every quote opens or closes a string, and a field named kvs is told by counting them);
 * undefined when the line has no such array or another form. An array of valid key-values replaced by
 * another such array keeps the line valid or invalid JSON alike.
 */
export function elideKvs(text: string, keep?: ReadonlySet<string>, arrays?: string[]): { text: string; fields: ElidedKvsFields } | undefined {
  let at = text.indexOf('"kvs":[');
  if (at < 0 || text.includes('\\')) return undefined;
  const fields: ElidedKvsFields = { revision: false, version: false };
  const parts: string[] = [];
  let from = 0;
  let quotes = 0;
  while (at >= 0) {
    for (let q = text.indexOf('"', from); q >= 0 && q < at; q = text.indexOf('"', q + 1)) quotes++;
    if (quotes % 2 !== 0) return undefined; // inside a string: not a field
    let end = at + 7;
    if (text.charCodeAt(end) !== 0x5d) {
      writtenKeyValues.lastIndex = end;
      if (!matches(writtenKeyValues, text)) return undefined;
      end = writtenKeyValues.lastIndex - 1;
      const kvs = text.slice(at + 7, end);
      fields.revision ||= kvs.includes('"modRevision":') || kvs.includes('"createRevision":');
      fields.version ||= kvs.includes('"version":');
      arrays?.push(kvs);
    } else arrays?.push('');
    // An even count of quotes in the array: the count stays that of the text before `from`.
    parts.push(text.slice(from, at + 7));
    if (keep !== undefined && keep.size > 0) parts.push(keptKeyValues(text, at + 7, end, keep));
    from = end;
    at = text.indexOf('"kvs":[', from);
  }
  parts.push(text.slice(from));
  return { text: parts.join(''), fields };
}

/**
 * How our writer ends a range read's line after its kvs array: the count and the revision, if any, the
 * response's closing brace, the member, if any, and the line's closing brace.
 */
const writtenRangeTail = /(?:,"count":(?:0|[1-9]\d{0,14}))?(?:,"revision":(?:0|[1-9]\d{0,14}))?\}(?:,"member":"[^"\\]*")?\}$/y;

/**
 * A range read's line as our writer writes it (writtenRangeTail after the kvs array), with a kvs array
 * opened at `start`: the array's text and the line without it, or undefined. The array ends at the line's
 * last `]` when only writtenRangeTail follows: on a valid line (the first pass validated it; a range
 * read's line has no other array) a `]` after the array would sit in a string, which the tail's first
 * quote would have to close, and no tail goes on as JSON after that. The array's text is validated where
 * it is used (the model's comparison with its own rendering, or its parse: see lazyRangeResponse).
 */
function writtenRangeEnd(text: string, start: number): { kvs: string; elided: string } | undefined {
  if (text.includes('\\')) return undefined;
  const end = text.lastIndexOf(']');
  if (end <= start) return undefined;
  writtenRangeTail.lastIndex = end + 1;
  if (!writtenRangeTail.test(text)) return undefined;
  return { kvs: text.slice(start, end), elided: text.slice(0, start) + text.slice(end) };
}

/** The one kvs array of a line in our writer's form (elideKvs), or undefined. */
function elidedArray(text: string): { kvs: string; elided: string } | undefined {
  const arrays: string[] = [];
  const elided = elideKvs(text, undefined, arrays);
  if (elided === undefined || arrays.length !== 1 || arrays[0] === '') return undefined;
  return { kvs: arrays[0]!, elided: elided.text };
}

/** Key-values in our writer's form, as parseResponseFor builds them; throws on anything else. */
function parseWrittenKvs(text: string): KeyValue[] {
  return array(JSON.parse(`[${text}]`), 'response.kvs').map((kv, i) => plainKeyValue(kv) ?? parseKeyValue(kv, `response.kvs[${i}]`));
}

/** How every line that is not an operation starts, as our writer writes them (kind first). */
export const kindPrefix = '{"kind":';

/** How our writer starts a watch response line (see HistoryParserOptions.skipWatchResponses). */
export const watchResponsePrefix = /^\{"kind":"watch","id":\d+,"response":/;

/** A client's latest operation, for the overlap check of a parser that does not retain operations. */
interface ClientLast {
  call: number;
  return: number | null;
  line: number;
}

/**
 * Incremental parser: feed lines one at a time (the live checker and the CLI stream files through it).
 * An invoke line waits for the operation line that completes it (same client and call); one still open
 * at finish() becomes an operation with an unknown outcome.
 */
export class HistoryParser {
  readonly file: string;
  private readonly retain: boolean;
  private lineNumber = 0;
  private meta: HistoryMeta | undefined;
  private readonly operations: Operation[] = [];
  private readonly operationLines: number[] = [];
  private readonly watches = new Map<number, WatchStream>();
  private readonly faults: FaultEvent[] = [];
  /** The fault each injection id names, so its later lines cannot name another. */
  private readonly faultIds = new Map<number, FaultName>();
  /** Each client's open invocation and its line (a client has at most one: its operations never overlap). */
  private readonly invoked = new Map<number, { invocation: Invocation; line: number }>();
  private torn: TornTail | undefined;
  /** Without retained operations: each client's latest, and the first overlap found (thrown by finish()). */
  private readonly lastByClient = new Map<number, ClientLast>();
  private overlap: HistoryFormatError | undefined;
  private operationCount = 0;
  /** False when some client's operations are not in call order (only without retained operations). */
  inCallOrder = true;
  /**
   * Whether every non-blank line read so far that is not an operation started with `{"kind":` (a torn
   * last line included): then a later pass can tell operation lines by their first bytes (skipOperation).
   */
  kindMarked = true;
  private readonly operationsOnly: boolean;
  private readonly onElidedKvs: ((fields: ElidedKvsFields) => void) | undefined;
  private readonly keepKvValues: ReadonlySet<string> | undefined;
  private readonly skipOperation: ((index: number, text: string) => boolean) | undefined;

  constructor(file = '<history>', options: HistoryParserOptions = {}) {
    this.file = file;
    this.retain = options.retainOperations ?? true;
    this.skipWatchResponses = options.skipWatchResponses ?? false;
    this.operationsOnly = options.operationsOnly ?? false;
    this.skipOperation = this.operationsOnly ? options.skipOperation : undefined;
    this.onElidedKvs = options.onElidedKvs;
    this.keepKvValues = options.keepKvValues;
    this.lazyKvs = options.lazyKvs ?? false;
  }

  private readonly lazyKvs: boolean;

  private readonly skipWatchResponses: boolean;

  /** Operations parsed so far. */
  get operationsSeen(): number {
    return this.operationCount;
  }

  /** Where the torn last line was, if the history ended with one (see LineOptions.last). */
  get tornTail(): TornTail | undefined {
    return this.torn;
  }

  /** The invocations not completed so far, oldest call first: their operations are still in flight. */
  get openInvocations(): Invocation[] {
    return [...this.invoked.values()].map((o) => o.invocation).sort((a, b) => a.call - b.call);
  }

  /** Parses one line; returns the operation it held or completed, if any (an invoke line holds none yet). */
  line(text: string, options: LineOptions = {}): Operation | undefined {
    this.lineNumber++;
    if (text.trim() === '') return undefined;
    if (this.skipWatchResponses && watchResponsePrefix.test(text)) return undefined;
    const marked = text.startsWith(kindPrefix);
    if (this.operationsOnly) {
      if (marked) return undefined;
      if (this.skipOperation?.(this.operationCount, text) === true) {
        this.operationCount++;
        return undefined;
      }
    }
    if (this.torn) throw new HistoryFormatError(this.file, this.torn.line, 'not valid JSON, and not the last line (only a last line can be torn by a crash)');
    if (this.onElidedKvs !== undefined && !marked) {
      const elided = elideKvs(text, this.keepKvValues);
      if (elided !== undefined) {
        let op: Operation | undefined;
        let parsed = false;
        try {
          op = this.interpret(JSON.parse(elided.text), marked);
          parsed = true;
        } catch {
          // The whole line gives the error (or the result) it gives without elision.
        }
        if (parsed) {
          this.onElidedKvs(elided.fields);
          return op;
        }
      }
    }
    if (this.lazyKvs && !marked) {
      const lazy = this.lazyRange(text);
      if (lazy !== undefined) return lazy;
    }
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch (error) {
      if (options.last === true) {
        this.torn = { file: this.file, line: this.lineNumber };
        if (!marked) this.kindMarked = false;
        return undefined;
      }
      // V8's message quotes the input: escape and shorten it (binary input must not reach a terminal raw).
      throw new HistoryFormatError(this.file, this.lineNumber, `not valid JSON (${printable((error as Error).message, 160)})`);
    }
    return this.interpret(raw, marked);
  }

  /**
   * A range read with its key-values left as text (HistoryParserOptions.lazyKvs), or undefined, having
   * changed nothing, for any other line (which line() then parses whole). Only a line whose one field named
   * kvs is the response's, and a valid array in our writer's form: its text then parses without error.
   */
  private lazyRange(text: string): Operation | undefined {
    const first = text.indexOf('"kvs"');
    if (first < 0 || text.indexOf('"kvs"', first + 5) >= 0 || text.charCodeAt(first + 6) !== 0x5b) return undefined;
    const found = writtenRangeEnd(text, first + 7) ?? elidedArray(text);
    if (found === undefined) return undefined;
    let raw: unknown;
    try {
      raw = JSON.parse(found.elided);
    } catch {
      return undefined;
    }
    // The one "kvs" is the response's field: the array it opens is the one the response holds.
    const r = raw as { request?: { type?: unknown }; response?: { kvs?: unknown } } | null;
    if (typeof r !== 'object' || r === null || r.request?.type !== 'range' || !Array.isArray(r.response?.kvs)) return undefined;
    let op: Operation | undefined;
    try {
      op = this.interpret(raw, false);
    } catch {
      return undefined; // the whole line gives the error, as without lazyKvs (interpret changes nothing when it throws)
    }
    const response = op?.response as RangeResponse | undefined;
    if (op === undefined || response === undefined || !('kvs' in response)) return op;
    const { file, lineNumber } = this;
    op.response = lazyRangeResponse(response, found.kvs, (kvs) => {
      try {
        return parseWrittenKvs(kvs);
      } catch (error) {
        // Only a line the first pass did not read: it validated this one whole.
        throw new HistoryFormatError(file, lineNumber, `its key-values do not parse (${printable((error as Error).message, 160)}): the history changed after the first pass read it`);
      }
    });
    return op;
  }

  /**
   * A parsed line's meaning. With elided kvs (onElidedKvs) it may be called twice for one line: its state
   * changes come only after everything that may throw, and never depend on the kvs.
   */
  private interpret(raw: unknown, marked: boolean): Operation | undefined {
    try {
      const line = object(raw, 'line');
      if (line['kind'] !== undefined && !marked) this.kindMarked = false;
      switch (line['kind']) {
        case undefined:
          return this.operationLine(line);
        case 'invoke':
          this.invokeLine(line);
          return undefined;
        case 'meta':
          if (this.meta) throw new FieldError('a second meta line (a history has at most one)');
          if (this.operationCount > 0 || this.invoked.size > 0) throw new FieldError('the meta line must come before the operations');
          this.meta = parseMeta(line);
          return undefined;
        case 'watch':
          this.watchLine(line);
          return undefined;
        case 'fault':
          this.faultLine(line);
          return undefined;
        default:
          throw new FieldError(`unknown kind ${shown(line['kind'])} (expected no kind, "invoke", "meta", "watch" or "fault")`);
      }
    } catch (error) {
      if (error instanceof FieldError) throw new HistoryFormatError(this.file, this.lineNumber, error.message);
      throw error;
    }
  }

  private operationLine(line: Json): Operation {
    const op = parseOperation(line);
    const open = this.invoked.get(op.client);
    // Without a matching invocation the line is complete on its own (histories written before invoke lines).
    if (open !== undefined && open.invocation.call === op.call) {
      if (!isDeepStrictEqual(open.invocation.request, op.request)) {
        throw new FieldError(`client ${op.client}'s operation called at ${op.call} has a different request from its invocation (line ${open.line})`);
      }
      this.invoked.delete(op.client);
    }
    this.operationCount++;
    if (this.retain) {
      this.operations.push(op);
      this.operationLines.push(this.lineNumber);
    } else if (!this.operationsOnly) this.followClient(op);
    return op;
  }

  private invokeLine(line: Json): void {
    const invocation = parseInvocation(line);
    const open = this.invoked.get(invocation.client);
    if (open !== undefined) {
      throw new FieldError(
        `client ${invocation.client} is invoked at ${invocation.call} while its invocation at ${open.invocation.call} (line ${open.line}) is still open (a client's operations never overlap)`,
      );
    }
    this.invoked.set(invocation.client, { invocation, line: this.lineNumber });
  }

  /** The overlap check of finish(), one operation at a time, for clients whose operations come in call order. */
  private followClient(op: Operation): void {
    const last = this.lastByClient.get(op.client);
    this.lastByClient.set(op.client, { call: op.call, return: op.return, line: this.lineNumber });
    if (last === undefined) return;
    if (op.call < last.call) this.inCallOrder = false;
    else if (this.overlap === undefined && (last.return === null || op.call < last.return)) this.overlap = this.overlapError(op.client, op, this.lineNumber, last, last.line);
  }

  private overlapError(client: number, next: Operation, nextLine: number, prev: { return: number | null }, prevLine: number): HistoryFormatError {
    return new HistoryFormatError(
      this.file,
      nextLine,
      `client ${client} starts an operation at ${next.call} while its previous one (line ${prevLine}) ` +
        (prev.return === null ? 'never returned (continue under a new client id after an unknown outcome)' : `returned only at ${prev.return}`),
    );
  }

  private watchLine(line: Json): void {
    onlyFields(line, lineFields.watch, 'a watch line');
    const id = integer(line['id'], 'id');
    if (line['request'] !== undefined) {
      if (this.watches.has(id)) throw new FieldError(`watch ${id} is opened twice`);
      this.watches.set(
        id,
        omitUndefined({
          id,
          client: optInteger(line['client'], 'client'),
          member: optString(line['member'], 'member'),
          request: parseWatchRequest(line['request']),
          responses: [],
        }),
      );
      return;
    }
    const stream = this.watches.get(id);
    if (!stream) throw new FieldError(`a response for watch ${id}, which no earlier line opened`);
    if (line['response'] === undefined) throw new FieldError('a watch line needs "request" (to open) or "response"');
    stream.responses.push(parseWatchResponse(line['response']));
  }

  private faultLine(line: Json): void {
    const event = parseFault(line);
    const named = this.faultIds.get(event.id);
    if (named !== undefined && named !== event.fault) throw new FieldError(`fault ${event.id} is ${named} on an earlier line, not ${event.fault}`);
    this.faultIds.set(event.id, event.fault);
    this.faults.push(event);
  }

  /**
   * Checks what spans lines (a client's operations never overlap) and returns the history, with an
   * unknown-outcome operation for each invocation never completed.
   */
  finish(): History {
    // A crash left these in flight: each may have taken effect, or not. They come last, also without
    // retained operations (the streaming check takes them from the history finish() returns).
    for (const { invocation, line } of this.invoked.values()) {
      const op = unfinished(invocation);
      this.operationCount++;
      if (!this.retain) this.followClient(op);
      this.operations.push(op);
      this.operationLines.push(line);
    }
    this.invoked.clear();
    if (this.overlap !== undefined && this.inCallOrder) throw this.overlap;
    const byClient = new Map<number, number[]>();
    this.operations.forEach((op, i) => {
      const list = byClient.get(op.client) ?? [];
      list.push(i);
      byClient.set(op.client, list);
    });
    for (const [client, indices] of byClient) {
      indices.sort((a, b) => this.operations[a]!.call - this.operations[b]!.call);
      for (let k = 1; k < indices.length; k++) {
        const prev = this.operations[indices[k - 1]!]!;
        const next = this.operations[indices[k]!]!;
        if (prev.return === null || next.call < prev.return) throw this.overlapError(client, next, this.operationLines[indices[k]!]!, prev, this.operationLines[indices[k - 1]!]!);
      }
    }
    const history: History = { meta: this.meta, operations: this.operations, watches: [...this.watches.values()] };
    // Only when there are some, so histories without faults compare equal to hand-written ones.
    if (this.faults.length > 0) history.faults = this.faults;
    if (this.torn) history.tornTail = this.torn;
    return history;
  }
}

export function parseHistory(text: string, file?: string): History {
  const parser = new HistoryParser(file);
  const lines = text.split('\n');
  // The last element is what follows the last newline: empty unless a crash cut the last line.
  lines.forEach((line, i) => parser.line(line, { last: i === lines.length - 1 }));
  return parser.finish();
}

// One line each (without the newline), exactly as serializeHistory writes them: the segment writer
// (src/probes/history-file.ts) streams lines as they happen and must produce the same text.

export function serializeMetaLine(meta: HistoryMeta): string {
  return JSON.stringify(meta);
}

export function serializeOperationLine(op: Operation): string {
  return JSON.stringify(op);
}

/** The line written when an operation is sent; the operation line (same client and call) completes it. */
export function serializeInvokeLine(invocation: Invocation): string {
  const { kind, client, call, request, member } = invocation;
  // Written for every operation sent: the text JSON.stringify makes of { kind, client, call, request, member },
  // without building that object (JSON writes a finite number as String() does).
  if (!Number.isFinite(client) || !Number.isFinite(call)) {
    return JSON.stringify(member === undefined ? { kind, client, call, request } : { kind, client, call, request, member });
  }
  const head = `{"kind":"${kind}","client":${client},"call":${call},"request":${JSON.stringify(request)}`;
  return member === undefined ? `${head}}` : `${head},"member":${JSON.stringify(member)}}`;
}

/** The line that opens a stream: everything but its responses, which get a line each. */
export function serializeWatchOpenLine(stream: WatchStream): string {
  const { responses, ...head } = stream;
  return JSON.stringify({ kind: 'watch', ...head });
}

export function serializeWatchResponseLine(id: number, response: WatchResponse): string {
  // The text JSON.stringify({ kind: 'watch', id, response }) makes, without building that object (a line
  // per response of every watch stream): JSON writes an integer as String() does.
  if (!Number.isSafeInteger(id)) return JSON.stringify({ kind: 'watch', id, response });
  return `{"kind":"watch","id":${id},"response":${JSON.stringify(response)}}`;
}

/** `kind` first, like the other lines, whatever order the event's fields were set in. */
export function serializeFaultLine(event: FaultEvent): string {
  const { kind, ...rest } = event;
  return JSON.stringify({ kind, ...rest });
}

/** The history as JSON Lines (the inverse of parseHistory). */
export function serializeHistory(history: History): string {
  const lines: string[] = [];
  if (history.meta) lines.push(serializeMetaLine(history.meta));
  for (const op of history.operations) lines.push(serializeOperationLine(op));
  for (const w of history.watches) {
    lines.push(serializeWatchOpenLine(w));
    for (const response of w.responses) lines.push(serializeWatchResponseLine(w.id, response));
  }
  for (const event of history.faults ?? []) lines.push(serializeFaultLine(event));
  return `${lines.join('\n')}\n`;
}
