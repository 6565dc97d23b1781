/**
 * The etcd model: the state a linearizable etcd must be in after a sequence of requests, and the
 * check of a recorded response against it (after etcd's tests/robustness/model).
 *
 * State: the global revision, the compact revision, every key's value, mod/create revision, version
 * and lease, and the set of leases. States are immutable values: `step` returns the same object when a
 * request changes nothing (the checker relies on that to linearize reads greedily) and a new one
 * otherwise, built copy-on-write.
 *
 * Fields no response in the history ever shows (revisions, versions) are not tracked at all, so states
 * that differ only in them are one state: the search stays small on histories without revisions.
 *
 * Shared mode (other clients write to the cluster too): the run owns only keys under its prefix; the
 * revision is a lower bound that responses raise, writes must land strictly above it, and keys outside
 * the prefix are ignored. A key written by a request whose revision no response showed has an unknown
 * mod/create revision (-1) until a read shows it; the read then pins it.
 */
import type { Compare, EtcdRequest, EtcdResponse, KeyValue, RangeRequest, RangeResponse, TxnOp, TxnResponse, WatchEvent } from '../domain/index.ts';
import { Draft, keyInRange, makeKey, type KeyState, type ModelOptions, type ModelState, type Why } from './model-state.ts';
import { KeyMap } from './key-map.ts';
import { renderKeyValue, writtenKvsText } from './written-kvs.ts';


function fail(why: Why | undefined, reason: () => string): null {
  if (why) why.reason = reason();
  return null;
}

/** fail() for boolean checks. */
function failed(why: Why | undefined, reason: () => string): false {
  if (why) why.reason = reason();
  return false;
}

/** A step's context: the options, the draft, and the revision the step's writes get. */
interface StepContext {
  opts: ModelOptions;
  draft: Draft;
  why: Why | undefined;
  /** The revision writes of this request get (exclusive: revision + 1; shared: the response's or -1). */
  writeRevision: number;
  /** Whether any key changed (a txn/delete bumps the revision only then). */
  wrote: boolean;
}

function owned(opts: ModelOptions, key: string): boolean {
  return opts.mode === 'exclusive' || key.startsWith(opts.prefix);
}

function applyPut(ctx: StepContext, key: string, value: string, lease: string | undefined): void {
  if (!owned(ctx.opts, key)) return;
  const old = ctx.draft.get(key);
  const rev = ctx.writeRevision;
  const version = ctx.opts.trackVersion ? (old ? old.version + 1 : 1) : 0;
  const next = makeKey(key, { value, mod: rev, create: old ? old.create : rev, version, lease });
  ctx.draft.set(key, next);
  ctx.wrote = true;
  ctx.draft.events?.push({
    type: 'put',
    key,
    value,
    modRevision: rev,
    createRevision: next.create,
    version: old ? old.version + 1 : 1,
    isCreate: !old,
    ...(old ? { prevKV: { key, value: old.value, modRevision: old.mod, createRevision: old.create, version: old.version } } : {}),
  });
}

function applyDelete(ctx: StepContext, key: string, end: string | undefined): number {
  const keys = ctx.draft.keysIn(key, end).filter((k) => owned(ctx.opts, k));
  for (const k of keys) {
    const old = ctx.draft.get(k)!;
    ctx.draft.delete(k);
    ctx.draft.events?.push({
      type: 'delete',
      key: k,
      modRevision: ctx.writeRevision,
      prevKV: { key: k, value: old.value, modRevision: old.mod, createRevision: old.create, version: old.version },
    });
  }
  if (keys.length > 0) ctx.wrote = true;
  return keys.length;
}

/** Compares one observed key-value with the model's; pins unknown revisions (shared mode). */
function kvMatches(ctx: StepContext, observed: KeyValue, key: string, k: KeyState, keysOnly: boolean): boolean {
  const { opts, why } = ctx;
  if (observed.key !== key) return failed(why, () => `expected key ${JSON.stringify(key)}, got ${JSON.stringify(observed.key)}`);
  if (!keysOnly && observed.value !== undefined && observed.value !== k.value) {
    return failed(why, () => `${key}: expected value ${JSON.stringify(k.value)}, got ${JSON.stringify(observed.value)}`);
  }
  if (opts.trackRevision) {
    let pinned = k;
    if (observed.modRevision !== undefined && observed.modRevision !== k.mod) {
      if (k.mod !== -1) return failed(why, () => `${key}: expected modRevision ${k.mod}, got ${observed.modRevision}`);
      pinned = { ...pinned, mod: observed.modRevision };
    }
    if (observed.createRevision !== undefined && observed.createRevision !== k.create) {
      if (k.create !== -1) return failed(why, () => `${key}: expected createRevision ${k.create}, got ${observed.createRevision}`);
      pinned = { ...pinned, create: observed.createRevision };
    }
    if (pinned !== k) ctx.draft.set(key, makeKey(key, pinned));
  }
  if (opts.trackVersion && observed.version !== undefined && observed.version !== k.version) {
    return failed(why, () => `${key}: expected version ${k.version}, got ${observed.version}`);
  }
  if (observed.lease !== undefined && observed.lease !== k.lease) {
    return failed(why, () => `${key}: expected lease ${k.lease ?? 'none'}, got ${observed.lease}`);
  }
  return true;
}

function rangeMatches(ctx: StepContext, request: RangeRequest, observed: RangeResponse): boolean {
  const { opts, draft, why } = ctx;
  const shared = opts.mode === 'shared';
  const expectedKeys = draft.keysIn(request.key, request.end);
  const keysOnly = request.keysOnly === true;
  if (!shared && !request.limit && (observed.count === undefined || observed.count === expectedKeys.length)) {
    // Key-values still as written: equal text is a match (written-kvs.ts); otherwise compare them one by one.
    const text = writtenKvsText(observed);
    if (text !== undefined && textMatches(draft, expectedKeys, text, keysOnly)) return true;
  }
  const kvs = shared ? observed.kvs.filter((kv) => kv.key.startsWith(opts.prefix)) : observed.kvs;
  if (shared && request.limit) {
    // Foreign keys take some of the limit's slots: check what is shown, not what is missing.
    for (const kv of kvs) {
      const k = draft.get(kv.key);
      if (!k || !keyInRange(kv.key, request.key, request.end)) return failed(why, () => `${kv.key} is not in the store`);
      if (!kvMatches(ctx, kv, kv.key, k, keysOnly)) return false;
    }
    return true;
  }
  const limited = request.limit ? expectedKeys.slice(0, request.limit) : expectedKeys;
  if (kvs.length !== limited.length) {
    return failed(why, () => `range ${request.key}: expected ${limited.length} keys [${limited.join(', ')}], got ${kvs.length} [${kvs.map((kv) => kv.key).join(', ')}]`);
  }
  for (let i = 0; i < kvs.length; i++) {
    const key = limited[i]!;
    if (!kvMatches(ctx, kvs[i]!, key, draft.get(key)!, keysOnly)) return false;
  }
  if (!shared && observed.count !== undefined && observed.count !== expectedKeys.length) {
    return failed(why, () => `range ${request.key}: expected count ${expectedKeys.length}, got ${observed.count}`);
  }
  return true;
}

/** A key state in the writer's form (renderKeyValue), with and without its value, for the key it was rendered for. */
interface Rendered {
  key: string;
  /** null: not rendered yet; undefined: no rendering (renderKeyValue). */
  full: string | undefined | null;
  keysOnly: string | undefined | null;
}

/**
 * Key states with their renderings, a cache on the (immutable) state that is no part of its value: not
 * enumerable, so a spread ({ ...k, mod }, makeKey) or a structured clone never carries it to another state.
 */
type RenderedKeyState = KeyState & { rendered?: Rendered };

function renderedKey(key: string, k: RenderedKeyState, keysOnly: boolean): string | undefined {
  let known = k.rendered;
  if (known === undefined || known.key !== key) {
    known = { key, full: null, keysOnly: null };
    if (k.rendered === undefined) Object.defineProperty(k, 'rendered', { value: known, writable: true, enumerable: false, configurable: false });
    else k.rendered = known;
  }
  if (keysOnly) return (known.keysOnly ??= renderKeyValue(key, undefined, k.mod, k.create, k.version, k.lease));
  return (known.full ??= renderKeyValue(key, k.value, k.mod, k.create, k.version, k.lease));
}

/** Whether `text` is exactly the keys' states rendered in the writer's form, comma-separated. */
function textMatches(draft: Draft, keys: readonly string[], text: string, keysOnly: boolean): boolean {
  let at = 0;
  for (let i = 0; i < keys.length; i++) {
    if (i > 0) {
      if (text.charCodeAt(at) !== 0x2c) return false;
      at++;
    }
    const key = keys[i]!;
    const kv = renderedKey(key, draft.get(key)!, keysOnly);
    // A slice compared whole: several times faster than startsWith at an offset.
    if (kv === undefined || text.slice(at, at + kv.length) !== kv) return false;
    at += kv.length;
  }
  return at === text.length;
}

function compareHolds(draft: { get(key: string): KeyState | undefined }, c: Compare): boolean {
  const k = draft.get(c.key);
  if (c.target === 'value' && !k) return false; // etcd: a value compare on a missing key is false
  let actual: string | number;
  switch (c.target) {
    case 'value':
      actual = k!.value;
      break;
    case 'mod':
      actual = k ? k.mod : 0;
      break;
    case 'create':
      actual = k ? k.create : 0;
      break;
    case 'version':
      actual = k ? k.version : 0;
      break;
    case 'lease':
      actual = k?.lease ?? '0';
      break;
  }
  const expected = c.value;
  if (typeof actual === 'string' && c.target === 'lease') {
    // Lease ids are decimal strings: compare them as integers.
    const a = BigInt(actual);
    const b = BigInt(expected);
    return c.result === '=' ? a === b : c.result === '!=' ? a !== b : c.result === '<' ? a < b : a > b;
  }
  switch (c.result) {
    case '=':
      return actual === expected;
    case '!=':
      return actual !== expected;
    case '<':
      return actual < expected;
    case '>':
      return actual > expected;
  }
}

/** Checks the header revision of a read (or any request that does not write). */
function readRevisionMatches(ctx: StepContext, observed: number | undefined): boolean {
  if (observed === undefined || !ctx.opts.trackRevision) return true;
  const { draft } = ctx;
  if (ctx.opts.mode === 'exclusive') {
    return observed === draft.revision || failed(ctx.why, () => `expected revision ${draft.revision}, got ${observed}`);
  }
  if (draft.revision >= 0 && observed < draft.revision) {
    return failed(ctx.why, () => `revision went backwards: ${observed} after ${draft.revision}`);
  }
  draft.revision = observed;
  return true;
}

/** Exclusive: writes get revision + 1. Shared: the response's revision, strictly above the bound. */
function writeRevisionFor(opts: ModelOptions, state: ModelState, observed: number | undefined): number {
  if (!opts.trackRevision) return 0;
  if (opts.mode === 'exclusive') return state.revision + 1;
  return observed ?? -1;
}

/** After a request that may write: move the revision and check the response's. */
function finishWrite(ctx: StepContext, observed: number | undefined): boolean {
  const { opts, draft } = ctx;
  if (!opts.trackRevision) return true;
  if (opts.mode === 'exclusive') {
    if (ctx.wrote) draft.revision = ctx.writeRevision;
    return observed === undefined || observed === draft.revision || failed(ctx.why, () => `expected revision ${draft.revision}, got ${observed}`);
  }
  if (!ctx.wrote) return readRevisionMatches(ctx, observed);
  if (observed === undefined) {
    draft.revision = draft.revision >= 0 ? draft.revision + 1 : -1;
    return true;
  }
  if (draft.revision >= 0 && observed <= draft.revision) {
    return failed(ctx.why, () => `a write got revision ${observed}, not above ${draft.revision}`);
  }
  draft.revision = observed;
  return true;
}

function txnOpStep(ctx: StepContext, op: TxnOp, observed: EtcdResponse | undefined): boolean {
  switch (op.type) {
    case 'range':
      return observed === undefined || rangeMatches(ctx, op, observed as RangeResponse);
    case 'put':
      if (op.lease !== undefined && !ctx.draft.hasLease(op.lease)) return failed(ctx.why, () => `put ${op.key}: lease ${op.lease} does not exist`);
      applyPut(ctx, op.key, op.value, op.lease);
      return true;
    case 'delete': {
      const deleted = applyDelete(ctx, op.key, op.end);
      const seen = (observed as { deleted?: number } | undefined)?.deleted;
      if (ctx.opts.mode === 'exclusive' && seen !== undefined && seen !== deleted) {
        return failed(ctx.why, () => `delete ${op.key}: expected ${deleted} deleted, got ${seen}`);
      }
      return true;
    }
  }
}

/**
 * Applies `request` to `state` and checks `response` against the result. Returns the next state (the
 * same object when nothing changed), or null when the response is impossible in this state.
 * `response` undefined means the outcome is unknown: the request is applied, nothing is checked.
 */
export function step(
  state: ModelState,
  request: EtcdRequest,
  response: EtcdResponse | undefined,
  opts: ModelOptions,
  why?: Why,
  events?: WatchEvent[],
): ModelState | null {
  const observedRevision = (response as { revision?: number } | undefined)?.revision;
  const draft = new Draft(state, events !== undefined);
  const ctx: StepContext = { opts, draft, why, writeRevision: writeRevisionFor(opts, state, observedRevision), wrote: false };
  let ok: boolean;
  switch (request.type) {
    case 'range':
      ok = (response === undefined || rangeMatches(ctx, request, response as RangeResponse)) && readRevisionMatches(ctx, observedRevision);
      break;
    case 'put':
      if (request.lease !== undefined && !draft.hasLease(request.lease)) {
        // etcd refuses a put with an unknown lease; an unknown outcome then changed nothing.
        if (response === undefined) return state;
        return fail(why, () => `put ${request.key}: lease ${request.lease} does not exist`);
      }
      applyPut(ctx, request.key, request.value, request.lease);
      ok = finishWrite(ctx, observedRevision);
      break;
    case 'delete': {
      const deleted = applyDelete(ctx, request.key, request.end);
      const seen = (response as { deleted?: number } | undefined)?.deleted;
      if (opts.mode === 'exclusive' && seen !== undefined && seen !== deleted) {
        return fail(why, () => `delete ${request.key}: expected ${deleted} deleted, got ${seen}`);
      }
      ok = finishWrite(ctx, observedRevision);
      break;
    }
    case 'txn': {
      const succeeded = request.compare.every((c) => compareHolds(draft, c));
      const txnResponse = response as TxnResponse | undefined;
      if (txnResponse !== undefined && txnResponse.succeeded !== succeeded) {
        return fail(why, () => `txn: compares ${succeeded ? 'hold' : 'fail'} in this state but the response says succeeded=${txnResponse.succeeded}`);
      }
      const ops = succeeded ? request.success : request.failure;
      ok = true;
      for (let i = 0; ok && i < ops.length; i++) ok = txnOpStep(ctx, ops[i]!, txnResponse?.results?.[i]);
      ok = ok && finishWrite(ctx, observedRevision);
      break;
    }
    case 'leaseGrant':
      if (draft.hasLease(request.id)) {
        if (response === undefined) return state;
        return fail(why, () => `leaseGrant: lease ${request.id} already exists`);
      }
      draft.addLease(request.id);
      ok = readRevisionMatches(ctx, observedRevision);
      break;
    case 'leaseRevoke': {
      if (!draft.hasLease(request.id)) {
        if (response === undefined) return state;
        return fail(why, () => `leaseRevoke: lease ${request.id} does not exist`);
      }
      draft.removeLease(request.id);
      const attached = [...draft.allKeys()].filter(([, k]) => k.lease === request.id).map(([key]) => key);
      for (const key of attached) applyDelete(ctx, key, undefined);
      ok = finishWrite(ctx, observedRevision);
      break;
    }
    case 'compact':
      if (request.revision <= draft.compact) return response === undefined ? state : fail(why, () => `compact ${request.revision}: already compacted at ${draft.compact}`);
      if (opts.mode === 'exclusive' && opts.trackRevision && request.revision > draft.revision) {
        return response === undefined ? state : fail(why, () => `compact ${request.revision}: above the current revision ${draft.revision}`);
      }
      draft.compact = request.revision;
      ok = readRevisionMatches(ctx, observedRevision);
      break;
    case 'defragment':
      return state;
  }
  if (!ok) return null;
  if (events && draft.events) events.push(...draft.events);
  return draft.finish();
}

/**
 * Whether applying `request` to `state` creates a new revision: true, false, or undefined when only a
 * full step can tell. Cheap: the search uses it to skip steps that revisions already rule out.
 */
export function bumpsRevision(state: ModelState, request: EtcdRequest): boolean | undefined {
  switch (request.type) {
    case 'put':
      return request.lease === undefined || state.leases.has(request.lease) ? true : undefined;
    case 'range':
    case 'leaseGrant':
    case 'compact':
    case 'defragment':
      return false;
    case 'delete':
      return request.end === undefined ? state.keys.has(request.key) : undefined;
    case 'txn': {
      const branch = request.compare.every((c) => compareHolds(state.keys, c)) ? request.success : request.failure;
      if (branch.some((o) => o.type === 'put' && o.lease === undefined)) return true;
      if (branch.every((o) => o.type === 'range')) return false;
      return undefined;
    }
    case 'leaseRevoke':
      return undefined;
  }
}

/**
 * The state with its revisions reduced to what compares against `levels` (sorted ascending, not empty)
 * can tell apart (exclusive mode): a mod or create revision equal to a level stays, one between two
 * levels becomes the lowest value between them, one below every level the level below the first, one
 * above every level the last level + 1; the revision stays exact up to the last level and becomes the
 * last level above it. When nothing still to come observes a revision except such compares, the reduced
 * state behaves exactly like the original (see the revision cap in linearize.ts). Returns the same
 * object when nothing changes.
 */
export function capRevisions(s: ModelState, levels: readonly number[]): ModelState {
  const top = levels[levels.length - 1]!;
  const reduce = (v: number): number => {
    if (v > top) return top + 1;
    let lo = 0;
    let hi = levels.length; // the first level above v
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (levels[mid]! <= v) lo = mid + 1;
      else hi = mid;
    }
    if (lo === 0) return levels[0]! - 1;
    const below = levels[lo - 1]!;
    return below === v ? v : below + 1;
  };
  let keys: Map<string, KeyState> | undefined;
  let contentHash = s.contentHash;
  for (const [key, k] of s.keys) {
    const mod = reduce(k.mod);
    const create = reduce(k.create);
    if (mod === k.mod && create === k.create) continue;
    const next = makeKey(key, { value: k.value, mod, create, version: k.version, lease: k.lease });
    keys ??= new Map(s.keys);
    keys.set(key, next);
    contentHash ^= k.hash ^ next.hash;
  }
  const revision = Math.min(s.revision, top);
  if (keys === undefined && revision === s.revision) return s;
  return { revision, compact: s.compact, keys: keys === undefined ? s.keys : KeyMap.from(keys), leases: s.leases, contentHash };
}

/**
 * The state after the watch events of one revision (live: the store's state is known from a watch that
 * delivered a revision before the response of the write that made it arrived). Keys outside the run's
 * prefix are ignored in shared mode, as writes to them are.
 */
export function applyWatchEvents(state: ModelState, revision: number, events: readonly WatchEvent[], opts: ModelOptions): ModelState {
  const draft = new Draft(state, false);
  for (const e of events) {
    if (!owned(opts, e.key)) continue;
    if (e.type === 'delete') {
      draft.delete(e.key);
      continue;
    }
    const old = draft.get(e.key);
    const version = opts.trackVersion ? (e.version ?? (old ? old.version + 1 : 1)) : 0;
    const create = e.createRevision ?? (old ? old.create : revision);
    draft.set(e.key, makeKey(e.key, { value: e.value ?? '', mod: opts.trackRevision ? revision : 0, create: opts.trackRevision ? create : 0, version, lease: e.lease }));
  }
  if (opts.trackRevision) draft.revision = revision;
  return draft.finish();
}
