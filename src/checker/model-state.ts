/**
 * The etcd model's state (model.ts): its types and options, hashing and equality (the search deduplicates
 * configurations by them), a summary for evidence, and Draft, the copy-on-write builder a step makes the
 * next state with. Separate from step() and the response checks, which read and build states through these.
 */
import type { ClusterMode, KeyValue, WatchEvent } from '../domain/index.ts';
import { combine, hashString, mix32 } from './hash.ts';
import { KeyMap, KeyMapDraft } from './key-map.ts';
import type { StateSummary } from './result.ts';

export interface ModelOptions {
  mode: ClusterMode;
  /** Shared mode: the run's own key prefix ("" = every key). */
  prefix: string;
  /** Whether any response or compare in the history involves revisions. */
  trackRevision: boolean;
  /** Whether any response or compare in the history involves versions. */
  trackVersion: boolean;
}

export interface KeyState {
  value: string;
  /** -1: unknown (shared mode only). */
  mod: number;
  create: number;
  version: number;
  lease: string | undefined;
  hash: number;
}

export interface ModelState {
  /** Exclusive: the exact revision (0 when revisions are not tracked). Shared: a lower bound, -1 unknown. */
  readonly revision: number;
  readonly compact: number;
  readonly keys: ReadonlyMap<string, KeyState>;
  readonly leases: ReadonlySet<string>;
  /** Hash of keys and leases (revision and compact are mixed in by stateHash). */
  readonly contentHash: number;
}

/** Filled with the reason when a step fails and the caller asks why (evidence only: not on the hot path). */
export interface Why {
  reason: string;
}

export function initialState(options: ModelOptions, initialRevision: number): ModelState {
  const revision = options.mode === 'shared' ? -1 : options.trackRevision ? initialRevision : 0;
  return { revision, compact: 0, keys: KeyMap.empty<KeyState>(), leases: new Set(), contentHash: 0 };
}

export function stateHash(s: ModelState): number {
  return combine(combine(s.contentHash, s.revision + 1), s.compact);
}

export function statesEqual(a: ModelState, b: ModelState): boolean {
  if (a === b) return true;
  if (a.revision !== b.revision || a.compact !== b.compact || a.contentHash !== b.contentHash) return false;
  if (a.keys.size !== b.keys.size || a.leases.size !== b.leases.size) return false;
  for (const [key, ka] of a.keys) {
    const kb = b.keys.get(key);
    if (!kb || ka.value !== kb.value || ka.mod !== kb.mod || ka.create !== kb.create || ka.version !== kb.version || ka.lease !== kb.lease) return false;
  }
  for (const lease of a.leases) if (!b.leases.has(lease)) return false;
  return true;
}

export function summarize(s: ModelState): StateSummary {
  const kvs: KeyValue[] = [...s.keys.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([key, k]) => {
      const kv: KeyValue = { key, value: k.value };
      if (k.mod > 0) kv.modRevision = k.mod;
      if (k.create > 0) kv.createRevision = k.create;
      if (k.version > 0) kv.version = k.version;
      if (k.lease !== undefined) kv.lease = k.lease;
      return kv;
    });
  return { revision: s.revision < 0 ? null : s.revision, compactRevision: s.compact, kvs, leases: [...s.leases].sort() };
}

function keyHash(key: string, k: Omit<KeyState, 'hash'>): number {
  let h = combine(hashString(key), hashString(k.value));
  h = combine(h, k.mod + 1);
  h = combine(h, k.create + 1);
  h = combine(h, k.version);
  return k.lease === undefined ? h : combine(h, hashString(k.lease));
}

export function makeKey(key: string, fields: Omit<KeyState, 'hash'>): KeyState {
  return { ...fields, hash: keyHash(key, fields) };
}

export function keyInRange(key: string, start: string, end: string | undefined): boolean {
  if (end === undefined) return key === start;
  if (end === '\u0000') return key >= start;
  return key >= start && key < end;
}

/** Copy-on-write builder for the next state. */
export class Draft {
  revision: number;
  compact: number;
  private readonly keys: KeyMapDraft<KeyState>;
  private leases: Set<string> | ReadonlySet<string>;
  private leasesCopied = false;
  private contentHash: number;
  changed = false;
  /** Watch events of this step, when a replay asks for them. */
  events: WatchEvent[] | undefined;
  private readonly base: ModelState;

  constructor(base: ModelState, events: boolean) {
    this.base = base;
    this.revision = base.revision;
    this.compact = base.compact;
    this.keys = new KeyMapDraft(KeyMap.from(base.keys));
    this.leases = base.leases;
    this.contentHash = base.contentHash;
    this.events = events ? [] : undefined;
  }

  get(key: string): KeyState | undefined {
    return this.keys.get(key);
  }

  keysIn(start: string, end: string | undefined): string[] {
    if (end === undefined) return this.keys.has(start) ? [start] : [];
    return this.keys.view().keysIn(start, end);
  }

  allKeys(): IterableIterator<[string, KeyState]> {
    return this.keys.view().entries();
  }

  hasLease(id: string): boolean {
    return this.leases.has(id);
  }

  private writableLeases(): Set<string> {
    if (!this.leasesCopied) {
      this.leases = new Set(this.leases);
      this.leasesCopied = true;
    }
    return this.leases as Set<string>;
  }

  set(key: string, next: KeyState): void {
    const keys = this.keys;
    const old = keys.get(key);
    if (old) this.contentHash ^= old.hash;
    keys.set(key, next);
    this.contentHash ^= next.hash;
    this.changed = true;
  }

  delete(key: string): void {
    const keys = this.keys;
    const old = keys.get(key);
    if (!old) return;
    this.contentHash ^= old.hash;
    keys.delete(key);
    this.changed = true;
  }

  addLease(id: string): void {
    this.writableLeases().add(id);
    this.contentHash ^= mix32(hashString(id) ^ 0x5bd1e995);
    this.changed = true;
  }

  removeLease(id: string): void {
    this.writableLeases().delete(id);
    this.contentHash ^= mix32(hashString(id) ^ 0x5bd1e995);
    this.changed = true;
  }

  finish(): ModelState {
    if (!this.changed && this.revision === this.base.revision && this.compact === this.base.compact) return this.base;
    return { revision: this.revision, compact: this.compact, keys: this.keys.finish(), leases: this.leases, contentHash: this.contentHash };
  }
}
