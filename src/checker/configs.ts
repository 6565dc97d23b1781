/**
 * The linearizability search's data: an operation's entry, configurations (a model state and the open
 * operations it linearized, with their path), the set that deduplicates them and applies
 * optional-operation subsumption, and the event queue. Separate from the engine (linearize.ts), which
 * decides how configurations are extended; these only store and order them.
 */
import type { EtcdRequest, EtcdResponse } from '../domain/index.ts';
import { combine } from './hash.ts';
import { statesEqual, type ModelState } from './model-state.ts';
import type { RevisionView } from './roles.ts';

export interface OpEntry {
  index: number;
  request: EtcdRequest;
  response: EtcdResponse | undefined;
  optional: boolean;
  call: number;
  zobrist: number;
  /** The response's header revision, if any. */
  revision: number | undefined;
  /** A known read-only request: it never changes an exclusive-mode state (see saturate). */
  readOnly: boolean;
  /** Unknown-outcome operations with equal keys make identical requests (see symmetry, above). */
  symmetryKey: string | undefined;
  /** How the operation can observe revisions (see the revision cap, above). */
  revisions: RevisionView;
}

export interface PathNode {
  op: number;
  prev: PathNode | null;
  /** Operations on the path up to here (for the common prefix of several paths, takeSettledPrefix). */
  depth: number;
}

export interface Config {
  state: ModelState;
  stateHash: number;
  /** Linearized open operations, sorted by index. */
  lin: number[];
  knownHash: number;
  path: PathNode | null;
  /** Beam only: the latest call among the state-changing operations on the path (see settle). */
  maxCall?: number;
}


/** A set of configurations with memoization and optional-operation subsumption. */
export class ConfigSet {
  /** Configurations grouped by (state, linearized known operations): dominance is only looked for within a group. */
  private readonly buckets = new Map<number, ConfigGroup[]>();
  private count = 0;
  private readonly optional: (op: number) => boolean;
  /** Optional operations that can no longer change anything from a state: they do not count. */
  private readonly dead: (op: number, state: ModelState) => boolean;

  constructor(optional: (op: number) => boolean, dead: (op: number, state: ModelState) => boolean = () => false) {
    this.optional = optional;
    this.dead = dead;
  }

  get size(): number {
    return this.count;
  }

  /** Adds c unless an equal or dominating configuration is present; drops those c dominates. */
  add(c: Config): boolean {
    const key = combine(c.stateHash, c.knownHash);
    let bucket = this.buckets.get(key);
    if (!bucket) this.buckets.set(key, (bucket = []));
    // The states are compared once per group, not once per configuration (many configurations share a
    // state and differ only in the unknown-outcome operations they placed).
    const group = bucket.find((g) => g.knownHash === c.knownHash && statesEqual(g.state, c.state) && this.sameKnown(g.lin, c.lin));
    if (!group) {
      bucket.push({ state: c.state, knownHash: c.knownHash, lin: c.lin, configs: [c] });
      this.count++;
      return true;
    }
    const configs = group.configs;
    for (let i = 0; i < configs.length; i++) {
      const e = configs[i]!;
      if (this.optionalSubset(e.lin, c.lin, c.state)) return false;
      if (this.optionalSubset(c.lin, e.lin, c.state)) {
        configs[i] = configs[configs.length - 1]!;
        configs.pop();
        this.count--;
        i--;
      }
    }
    configs.push(c);
    this.count++;
    return true;
  }

  private sameKnown(a: number[], b: number[]): boolean {
    let i = 0;
    let j = 0;
    for (;;) {
      while (i < a.length && this.optional(a[i]!)) i++;
      while (j < b.length && this.optional(b[j]!)) j++;
      if (i === a.length || j === b.length) return i === a.length && j === b.length;
      if (a[i] !== b[j]) return false;
      i++;
      j++;
    }
  }

  /** Whether the live optional operations in a are a subset of those in b (both sorted). */
  private optionalSubset(a: number[], b: number[], state: ModelState): boolean {
    let j = 0;
    for (const op of a) {
      if (!this.optional(op) || this.dead(op, state)) continue;
      while (j < b.length && b[j]! < op) j++;
      if (j === b.length || b[j] !== op) return false;
    }
    return true;
  }

  values(): Config[] {
    const all: Config[] = [];
    for (const bucket of this.buckets.values()) for (const group of bucket) all.push(...group.configs);
    return all;
  }

  /** The configurations, grouped by (state, linearized known operations). */
  groups(): Config[][] {
    const all: Config[][] = [];
    for (const bucket of this.buckets.values()) for (const group of bucket) all.push(group.configs);
    return all;
  }
}

interface ConfigGroup {
  state: ModelState;
  knownHash: number;
  /** One member's linearized operations (the group's known ones are the same for all). */
  lin: number[];
  configs: Config[];
}

export function insertSorted(list: number[], value: number): number[] {
  let i = list.length;
  while (i > 0 && list[i - 1]! > value) i--;
  const next = list.slice();
  next.splice(i, 0, value);
  return next;
}

/** The operations on a path, after `root` (a node already handed over, see takeSettledPrefix). */
export function pathToList(path: PathNode | null, root: PathNode | null = null): number[] {
  const ops: number[] = [];
  for (let p = path; p && p !== root; p = p.prev) ops.push(p.op);
  return ops.reverse();
}

export function extend(op: number, prev: PathNode | null): PathNode {
  return { op, prev, depth: (prev?.depth ?? 0) + 1 };
}

/** A binary min-heap of (time, kind, index) events. */
export class EventQueue {
  private readonly times: number[] = [];
  private readonly keys: number[] = [];
  private readonly indices: number[] = [];

  get size(): number {
    return this.times.length;
  }

  peekTime(): number {
    return this.times[0]!;
  }

  private less(a: number, b: number): boolean {
    const ta = this.times[a]!;
    const tb = this.times[b]!;
    return ta < tb || (ta === tb && this.keys[a]! < this.keys[b]!);
  }

  private swap(a: number, b: number): void {
    for (const arr of [this.times, this.keys, this.indices]) {
      const t = arr[a]!;
      arr[a] = arr[b]!;
      arr[b] = t;
    }
  }

  /** kind 0 = call, 1 = return; ties broken by kind, then by insertion order via index. */
  push(time: number, kind: number, index: number): void {
    this.times.push(time);
    this.keys.push(kind * 2 ** 40 + index);
    this.indices.push(index);
    let i = this.times.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(i, parent)) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  pop(): { time: number; kind: number; index: number } {
    const time = this.times[0]!;
    const key = this.keys[0]!;
    const index = this.indices[0]!;
    const last = this.times.length - 1;
    this.swap(0, last);
    this.times.pop();
    this.keys.pop();
    this.indices.pop();
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < this.times.length && this.less(l, m)) m = l;
      if (r < this.times.length && this.less(r, m)) m = r;
      if (m === i) break;
      this.swap(i, m);
      i = m;
    }
    return { time, kind: key >= 2 ** 40 ? 1 : 0, index };
  }
}
