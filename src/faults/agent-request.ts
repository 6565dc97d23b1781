/**
 * The fault agent's API requests (src/faults/agent.ts): validating a decoded fault request into an
 * AgentFaultRequest or a 400 message that names the bad field, reading a request body within the size
 * limit, and the error the API answers with.
 */
import type http from 'node:http';
import type { AgentFaultRequest, LinkRule } from '../domain/faults.ts';
import { defaultMaxTtlMs } from '../domain/faults.ts';
import { JsonHttpError, readJsonBody } from '../http-json.ts';

export const agentFaultTypes = ['kill', 'crash', 'pause', 'failpoint', 'network', 'diskPressure'] as const satisfies readonly AgentFaultRequest['type'][];
/** Request bodies above this are refused with 413. */
export const maxRequestBytes = 64 * 1024;

// ---- validation (pure) ----

export type ParsedFaultRequest = { ok: true; request: AgentFaultRequest } | { ok: false; error: string };

class FieldError extends Error {}

/** The fields of each request type, checked against AgentFaultRequest (a field the type lacks does not compile). */
type FieldsOf<T extends AgentFaultRequest['type']> = readonly (keyof Extract<AgentFaultRequest, { type: T }> & string)[];

const fieldsByType: { readonly [T in AgentFaultRequest['type']]: FieldsOf<T> } = {
  kill: ['type'],
  crash: ['type', 'ttlMs'],
  pause: ['type', 'ttlMs'],
  failpoint: ['type', 'name', 'term', 'ttlMs'],
  network: ['type', 'rules', 'peers', 'ttlMs'],
  diskPressure: ['type', 'bytes', 'ttlMs'],
};

const failpointNamePattern = /^[A-Za-z][A-Za-z0-9_]*$/;
const linkActions = ['blackhole', 'delay', 'drop'] as const;
const maxRules = 256;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isFaultType(value: string): value is AgentFaultRequest['type'] {
  return (agentFaultTypes as readonly string[]).includes(value);
}

function show(value: unknown): string {
  return value === undefined ? 'nothing' : JSON.stringify(value);
}

function numberField(body: Record<string, unknown>, field: string, label: string, range: { min: number; minExclusive?: boolean; max?: number; integer?: boolean }): number | undefined {
  const value = body[field];
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new FieldError(`${label}: must be a number, got ${show(value)}`);
  if (range.integer && !Number.isSafeInteger(value)) throw new FieldError(`${label}: must be a whole number, got ${value}`);
  if (range.minExclusive ? value <= range.min : value < range.min) {
    throw new FieldError(`${label}: must be ${range.minExclusive ? 'greater than' : 'at least'} ${range.min}, got ${value}`);
  }
  if (range.max !== undefined && value > range.max) throw new FieldError(`${label}: must be at most ${range.max}, got ${value}`);
  return value;
}

function stringField(body: Record<string, unknown>, field: string, label: string): string | undefined {
  const value = body[field];
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value.trim() === '') throw new FieldError(`${label}: must be a non-empty string, got ${show(value)}`);
  return value;
}

function ttlField(body: Record<string, unknown>, maxTtlMs: number): number {
  const value = body['ttlMs'];
  if (value === undefined) throw new FieldError(`ttlMs: required (milliseconds until the agent heals the fault itself, at most ${maxTtlMs})`);
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new FieldError(`ttlMs: must be a number of milliseconds, got ${show(value)}`);
  if (value <= 0) throw new FieldError(`ttlMs: must be greater than 0, got ${value}`);
  if (value > maxTtlMs) throw new FieldError(`ttlMs: ${value} is above this agent's maximum of ${maxTtlMs} ms (--max-ttl)`);
  return value;
}

function parseLinkRule(raw: unknown, index: number): LinkRule {
  const at = `rules[${index}]`;
  if (!isRecord(raw)) throw new FieldError(`${at}: must be an object with from, to and action`);
  const allowed = ['from', 'to', 'action', 'delayMs', 'jitterMs', 'dropPercent'];
  for (const key of Object.keys(raw)) {
    if (!allowed.includes(key)) throw new FieldError(`${at}.${key}: unknown field (fields: ${allowed.join(', ')})`);
  }
  const from = stringField(raw, 'from', `${at}.from`);
  const to = stringField(raw, 'to', `${at}.to`);
  if (from === undefined) throw new FieldError(`${at}.from: required (the sending member's name)`);
  if (to === undefined) throw new FieldError(`${at}.to: required (the receiving member's name)`);
  if (from === to) throw new FieldError(`${at}: from and to are the same member (${from})`);
  const action = raw['action'];
  if (typeof action !== 'string' || !(linkActions as readonly string[]).includes(action)) {
    throw new FieldError(`${at}.action: must be one of ${linkActions.join(', ')}, got ${show(action)}`);
  }
  const rule: LinkRule = { from, to, action: action as LinkRule['action'] };
  const delayMs = numberField(raw, 'delayMs', `${at}.delayMs`, { min: 0, max: 60_000 });
  const jitterMs = numberField(raw, 'jitterMs', `${at}.jitterMs`, { min: 0, max: 60_000 });
  const dropPercent = numberField(raw, 'dropPercent', `${at}.dropPercent`, { min: 0, max: 100 });
  if (action === 'delay') {
    if (delayMs === undefined) throw new FieldError(`${at}.delayMs: required for a delay rule`);
    rule.delayMs = delayMs;
    if (jitterMs !== undefined) rule.jitterMs = jitterMs;
  } else if (delayMs !== undefined || jitterMs !== undefined) {
    throw new FieldError(`${at}.${delayMs !== undefined ? 'delayMs' : 'jitterMs'}: only for a delay rule`);
  }
  if (action === 'drop') {
    if (dropPercent === undefined) throw new FieldError(`${at}.dropPercent: required for a drop rule (0..100)`);
    rule.dropPercent = dropPercent;
  } else if (dropPercent !== undefined) {
    throw new FieldError(`${at}.dropPercent: only for a drop rule`);
  }
  return rule;
}

function parsePeers(raw: unknown): Record<string, string> {
  if (!isRecord(raw)) throw new FieldError(`peers: must be an object of member id (hex) to member name, got ${show(raw)}`);
  const peers: Record<string, string> = {};
  for (const [id, name] of Object.entries(raw)) {
    if (!/^(0x)?[0-9a-fA-F]{1,16}$/.test(id)) throw new FieldError(`peers: ${JSON.stringify(id)} is not a member id in hex`);
    if (typeof name !== 'string' || name.trim() === '') throw new FieldError(`peers.${id}: must be a member name, got ${show(name)}`);
    peers[id] = name;
  }
  return peers;
}

function parseOrThrow(raw: unknown, maxTtlMs: number): AgentFaultRequest {
  if (!isRecord(raw)) throw new FieldError(`the request body must be a JSON object with a "type", got ${show(raw)}`);
  const type = raw['type'];
  if (type === undefined) throw new FieldError(`type: required, one of ${agentFaultTypes.join(', ')}`);
  if (typeof type !== 'string' || !isFaultType(type)) {
    throw new FieldError(`type: unknown fault type ${show(type)} (types: ${agentFaultTypes.join(', ')})`);
  }
  const allowed: readonly string[] = fieldsByType[type];
  for (const key of Object.keys(raw)) {
    if (!allowed.includes(key)) throw new FieldError(`${key}: unknown field for a ${type} fault (fields: ${allowed.join(', ')})`);
  }
  switch (type) {
    case 'kill':
      return { type };
    case 'crash':
    case 'pause':
      return { type, ttlMs: ttlField(raw, maxTtlMs) };
    case 'failpoint': {
      const name = stringField(raw, 'name', 'name');
      if (name === undefined) throw new FieldError('name: required (a gofail failpoint name, e.g. raftBeforeSave)');
      if (!failpointNamePattern.test(name)) throw new FieldError(`name: ${JSON.stringify(name)} is not a failpoint name`);
      const term = stringField(raw, 'term', 'term');
      if (term === undefined) throw new FieldError('term: required (a gofail term, e.g. panic or sleep("100ms"))');
      // eslint-disable-next-line no-control-regex
      if (term.length > 256 || /[\u0000-\u001f]/.test(term)) throw new FieldError('term: must be one line of at most 256 characters');
      return { type, name, term, ttlMs: ttlField(raw, maxTtlMs) };
    }
    case 'network': {
      const rules = raw['rules'];
      if (!Array.isArray(rules) || rules.length === 0) throw new FieldError(`rules: required, a non-empty array of link rules, got ${show(rules)}`);
      if (rules.length > maxRules) throw new FieldError(`rules: at most ${maxRules} rules, got ${rules.length}`);
      const request: AgentFaultRequest = { type, rules: rules.map((r: unknown, i) => parseLinkRule(r, i)), ttlMs: ttlField(raw, maxTtlMs) };
      if (raw['peers'] !== undefined) request.peers = parsePeers(raw['peers']);
      return request;
    }
    case 'diskPressure': {
      const bytes = numberField(raw, 'bytes', 'bytes', { min: 0, minExclusive: true, integer: true });
      if (bytes === undefined) throw new FieldError('bytes: required (the ballast file size in bytes)');
      return { type, bytes, ttlMs: ttlField(raw, maxTtlMs) };
    }
  }
}

/** Validates a decoded request body: the request, or a message for a 400 that names the bad field. */
export function parseFaultRequest(raw: unknown, maxTtlMs: number = defaultMaxTtlMs): ParsedFaultRequest {
  try {
    return { ok: true, request: parseOrThrow(raw, maxTtlMs) };
  } catch (error) {
    if (error instanceof FieldError) return { ok: false, error: error.message };
    throw error;
  }
}

/** An error the API answers with this status and `{ "error": message }`. */
export class AgentHttpError extends JsonHttpError {
  override name = 'AgentHttpError';
}

/** PUT /v1/recovery's body, `{ "epoch": N }` with N a positive whole number: the epoch, or a 400 naming what is wrong. */
export function parseRecoveryRequest(body: unknown): number {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new AgentHttpError(400, 'a recovery request is a JSON object { "epoch": N }');
  const unknown = Object.keys(body).filter((key) => key !== 'epoch');
  if (unknown.length > 0) throw new AgentHttpError(400, `a recovery request has only "epoch"; unknown field "${unknown[0]!}"`);
  const epoch = (body as { epoch?: unknown }).epoch;
  if (typeof epoch !== 'number' || !Number.isSafeInteger(epoch) || epoch < 1) throw new AgentHttpError(400, `"epoch" must be a positive whole number (the failover's witness epoch), got ${JSON.stringify(epoch)}`);
  return epoch;
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** A request's JSON body, at most maxRequestBytes (413 above, 400 when it is not JSON). */
export async function readFaultRequestBody(req: http.IncomingMessage): Promise<unknown> {
  return readJsonBody(req, { maxBytes: maxRequestBytes, expected: 'a JSON fault request', error: (status, message) => new AgentHttpError(status, message) });
}
