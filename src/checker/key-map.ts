/**
 * The model's keys as a persistent map: a state after a write shares all but one bucket with the state
 * before it. Model states are immutable values (model.ts) and the checkers keep many of them (the search's
 * frontier, the revision order's recent states); copying a whole Map of a run's hundreds of keys on every
 * write was most of the cost of a step. 64 buckets by key hash: a write copies the bucket array (64
 * pointers) and one bucket (a few keys).
 */
import { hashString } from './hash.ts';

const bits = 6;
const width = 1 << bits;

/**
 * Buckets of keys seen so far: a Map lookup hashes a string natively (and once per string object), several
 * times faster than hashString in script; a list read looks up every key of its range. Cleared when full,
 * so a history of very many keys costs no more memory than this.
 */
const bucketCache = new Map<string, number>();
const maxCachedKeys = 1 << 18;

function bucketOf(key: string): number {
  let bucket = bucketCache.get(key);
  if (bucket === undefined) {
    bucket = hashString(key) & (width - 1);
    if (bucketCache.size >= maxCachedKeys) bucketCache.clear();
    bucketCache.set(key, bucket);
  }
  return bucket;
}

type Bucket = ReadonlyMap<string, unknown>;

export class KeyMap<V> implements ReadonlyMap<string, V> {
  static empty<V>(): KeyMap<V> {
    return new KeyMap<V>(new Array<Bucket | undefined>(width).fill(undefined), 0);
  }

  static from<V>(map: ReadonlyMap<string, V>): KeyMap<V> {
    if (map instanceof KeyMap) return map as KeyMap<V>;
    const draft = new KeyMapDraft(KeyMap.empty<V>());
    for (const [key, value] of map) draft.set(key, value);
    return draft.finish();
  }

  /** Buckets are shared between maps: never written once a map holds them. */
  readonly buckets: readonly (Bucket | undefined)[];
  readonly size: number;
  /** The keys in order, computed when a range first asks; inherited by a map with the same keys. */
  private sorted: string[] | undefined;
  /**
   * The base's sorted keys and the few keys a draft added or removed: the sorted keys come from them by
   * a merge when a range asks, not from a sort of every key (a write of a new key before each list read
   * made keysIn re-sort hundreds of keys per read). Dropped once used: no chain of older maps is kept.
   */
  private derivation: SortedDerivation | undefined;

  constructor(buckets: readonly (Bucket | undefined)[], size: number, sorted?: string[], derivation?: SortedDerivation) {
    this.buckets = buckets;
    this.size = size;
    this.sorted = sorted;
    this.derivation = sorted === undefined ? derivation : undefined;
  }

  /** The sorted keys if already computed (a draft that adds or removes no key passes them on). */
  get sortedIfKnown(): string[] | undefined {
    return this.sorted;
  }

  /** How to get the sorted keys by a merge, while they are not computed. */
  get derivationIfKnown(): SortedDerivation | undefined {
    return this.sorted === undefined ? this.derivation : undefined;
  }

  /** Keys from `start` up to `end` exclusive ('\u0000': to the end), in order: a binary search, not a scan. */
  keysIn(start: string, end: string): string[] {
    const sorted = (this.sorted ??= this.sortKeys());
    let lo = 0;
    let hi = sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (sorted[mid]! < start) lo = mid + 1;
      else hi = mid;
    }
    const found: string[] = [];
    for (let i = lo; i < sorted.length; i++) {
      const key = sorted[i]!;
      if (end !== '\u0000' && key >= end) break;
      found.push(key);
    }
    return found;
  }

  get(key: string): V | undefined {
    return this.buckets[bucketOf(key)]?.get(key) as V | undefined;
  }

  has(key: string): boolean {
    return this.buckets[bucketOf(key)]?.has(key) ?? false;
  }

  private sortKeys(): string[] {
    const derivation = this.derivation;
    this.derivation = undefined;
    if (derivation !== undefined) return mergeSorted(derivation);
    return [...this.keys()].sort(compareKeys);
  }

  *entries(): MapIterator<[string, V]> {
    for (const bucket of this.buckets) if (bucket) yield* (bucket as ReadonlyMap<string, V>).entries();
  }

  *keys(): MapIterator<string> {
    for (const bucket of this.buckets) if (bucket) yield* bucket.keys();
  }

  *values(): MapIterator<V> {
    for (const bucket of this.buckets) if (bucket) yield* (bucket as ReadonlyMap<string, V>).values();
  }

  [Symbol.iterator](): MapIterator<[string, V]> {
    return this.entries();
  }

  forEach(callback: (value: V, key: string, map: ReadonlyMap<string, V>) => void): void {
    for (const [key, value] of this.entries()) callback(value, key, this);
  }
}

const compareKeys = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/**
 * A map's sorted keys as an older map's and the keys added and removed since (disjoint: an added key is
 * not in base, a removed one is). The older map may be several writes back: the states between two list
 * reads are never ranged themselves.
 */
interface SortedDerivation {
  base: readonly string[];
  added: ReadonlySet<string>;
  removed: ReadonlySet<string>;
}

/** Derivations above this many changed keys sort afresh instead. */
const maxDerivedChanges = 64;

/** `from` followed by a draft's own additions and removals, if still few enough to merge. */
function extendDerivation(from: SortedDerivation, added: ReadonlySet<string>, removed: ReadonlySet<string>): SortedDerivation | undefined {
  if (from.added.size + from.removed.size + added.size + removed.size > maxDerivedChanges) return undefined;
  const nextAdded = new Set(from.added);
  const nextRemoved = new Set(from.removed);
  for (const key of removed) if (!nextAdded.delete(key)) nextRemoved.add(key);
  for (const key of added) if (!nextRemoved.delete(key)) nextAdded.add(key);
  return { base: from.base, added: nextAdded, removed: nextRemoved };
}

/** The base's sorted keys without the removed ones and with the added ones in place. */
function mergeSorted({ base, added, removed }: SortedDerivation): string[] {
  const insert = [...added].sort(compareKeys);
  const merged: string[] = [];
  let j = 0;
  for (const key of base) {
    while (j < insert.length && insert[j]! < key) merged.push(insert[j++]!);
    if (!removed.has(key)) merged.push(key);
  }
  while (j < insert.length) merged.push(insert[j++]!);
  return merged;
}

/** Changes to a KeyMap, copying the bucket array and each bucket it writes once; finish() gives the new map. */
export class KeyMapDraft<V> {
  private readonly base: KeyMap<V>;
  private buckets: (Bucket | undefined)[] | undefined;
  private readonly copied = new Set<number>();
  private size: number;
  /** Whether a key was added or removed (the sorted keys then change). */
  private membership = false;
  /** Keys this draft added that the base lacks, and base keys it removed (while few: see maxDerivedChanges). */
  private readonly added = new Set<string>();
  private readonly removed = new Set<string>();

  constructor(base: KeyMap<V>) {
    this.base = base;
    this.size = base.size;
  }

  get(key: string): V | undefined {
    return (this.buckets ?? this.base.buckets)[bucketOf(key)]?.get(key) as V | undefined;
  }

  has(key: string): boolean {
    return (this.buckets ?? this.base.buckets)[bucketOf(key)]?.has(key) ?? false;
  }

  /** The map so far (the base while nothing changed). */
  view(): KeyMap<V> {
    return this.finish();
  }

  set(key: string, value: V): void {
    const bucket = this.writable(bucketOf(key));
    if (!bucket.has(key)) {
      this.size++;
      this.membership = true;
      if (!this.removed.delete(key)) this.added.add(key);
    }
    bucket.set(key, value);
  }

  delete(key: string): void {
    const i = bucketOf(key);
    if (!(this.buckets ?? this.base.buckets)[i]?.has(key)) return;
    this.writable(i).delete(key);
    this.size--;
    this.membership = true;
    if (!this.added.delete(key)) this.removed.add(key);
  }

  finish(): KeyMap<V> {
    if (this.buckets === undefined) return this.base;
    const base = this.base.sortedIfKnown;
    if (!this.membership) return new KeyMap<V>(this.buckets, this.size, base, this.base.derivationIfKnown);
    const from = base !== undefined ? { base, added: new Set<string>(), removed: new Set<string>() } : this.base.derivationIfKnown;
    return new KeyMap<V>(this.buckets, this.size, undefined, from === undefined ? undefined : extendDerivation(from, this.added, this.removed));
  }

  private writable(i: number): Map<string, V> {
    this.buckets ??= this.base.buckets.slice();
    if (!this.copied.has(i)) {
      this.buckets[i] = new Map(this.buckets[i] as ReadonlyMap<string, V> | undefined);
      this.copied.add(i);
    }
    return this.buckets[i] as Map<string, V>;
  }
}
