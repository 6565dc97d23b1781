/**
 * A deliberately simple, sequential etcd store used as an independent oracle in property tests: it
 * answers requests the way etcd does, written separately from src/checker/model.ts so the two can
 * check each other.
 */
import type { Compare, EtcdRequest, EtcdResponse, KeyValue, RangeRequest, RangeResponse, TxnOp, TxnOpResponse } from '../../src/domain/index.ts';

interface Entry {
  value: string;
  mod: number;
  create: number;
  version: number;
  lease?: string;
}

export class EtcdSimulator {
  revision: number;
  private readonly store = new Map<string, Entry>();
  private readonly leases = new Set<string>();

  constructor(initialRevision = 1) {
    this.revision = initialRevision;
  }

  /** The key's current value and revisions, as a range would show it. */
  get(key: string): KeyValue | undefined {
    return this.store.has(key) ? this.kv(key, false) : undefined;
  }

  private keysIn(key: string, end: string | undefined): string[] {
    return [...this.store.keys()]
      .filter((k) => (end === undefined ? k === key : end === '\u0000' ? k >= key : k >= key && k < end))
      .sort();
  }

  private kv(key: string, keysOnly: boolean): KeyValue {
    const e = this.store.get(key)!;
    const kv: KeyValue = { key, modRevision: e.mod, createRevision: e.create, version: e.version };
    if (!keysOnly) kv.value = e.value;
    if (e.lease) kv.lease = e.lease;
    return kv;
  }

  private range(r: RangeRequest): RangeResponse {
    const keys = this.keysIn(r.key, r.end);
    const shown = r.limit ? keys.slice(0, r.limit) : keys;
    return { kvs: shown.map((k) => this.kv(k, r.keysOnly === true)), count: keys.length, revision: this.revision };
  }

  private compare(c: Compare): boolean {
    const e = this.store.get(c.key);
    if (c.target === 'value' && !e) return false;
    const actual =
      c.target === 'value' ? e!.value : c.target === 'mod' ? (e?.mod ?? 0) : c.target === 'create' ? (e?.create ?? 0) : c.target === 'version' ? (e?.version ?? 0) : Number(e?.lease ?? 0);
    const expected = c.target === 'lease' ? Number(c.value) : c.value;
    return c.result === '=' ? actual === expected : c.result === '!=' ? actual !== expected : c.result === '<' ? actual < expected : actual > expected;
  }

  /** Applies the request and returns etcd's answer. */
  apply(request: EtcdRequest): EtcdResponse {
    switch (request.type) {
      case 'range':
        return this.range(request);
      case 'put':
      case 'delete': {
        const [result, wrote] = this.applyOps([request], this.revision + 1);
        if (wrote) this.revision++;
        return { ...result[0], revision: this.revision };
      }
      case 'txn': {
        const succeeded = request.compare.every((c) => this.compare(c));
        const [results, wrote] = this.applyOps(succeeded ? request.success : request.failure, this.revision + 1);
        if (wrote) this.revision++;
        return { succeeded, results, revision: this.revision };
      }
      case 'leaseGrant':
        this.leases.add(request.id);
        return { revision: this.revision };
      case 'leaseRevoke': {
        this.leases.delete(request.id);
        const attached = [...this.store.entries()].filter(([, e]) => e.lease === request.id).map(([k]) => k);
        for (const k of attached) this.store.delete(k);
        if (attached.length > 0) this.revision++;
        return { revision: this.revision };
      }
      case 'compact':
      case 'defragment':
        return { revision: this.revision };
    }
  }

  hasLease(id: string): boolean {
    return this.leases.has(id);
  }

  private applyOps(ops: TxnOp[], rev: number): [TxnOpResponse[], boolean] {
    let wrote = false;
    const results: TxnOpResponse[] = [];
    for (const op of ops) {
      if (op.type === 'range') {
        const { revision: _ignored, ...rest } = this.range(op);
        results.push(rest);
      } else if (op.type === 'put') {
        const old = this.store.get(op.key);
        const entry: Entry = { value: op.value, mod: rev, create: old ? old.create : rev, version: old ? old.version + 1 : 1 };
        if (op.lease) entry.lease = op.lease;
        this.store.set(op.key, entry);
        wrote = true;
        results.push({});
      } else {
        const keys = this.keysIn(op.key, op.end);
        for (const k of keys) this.store.delete(k);
        if (keys.length > 0) wrote = true;
        results.push({ deleted: keys.length });
      }
    }
    return [results, wrote];
  }
}
