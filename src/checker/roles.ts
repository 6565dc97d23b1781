/**
 * How the linearizability search sees one operation: its role (linearize, optional, stale, skip), the
 * revision its response claims, what it can tell about revisions (the revision cap, linearize.ts), and
 * the unknown-outcome lease grants nothing names. Pure functions of operations, separate from the
 * engine so the revision path, the patching and the live checker can classify operations without it.
 */
import { isErrorResponse, isStaleRead, isWriteRequest, type EtcdRequest, type Operation } from '../domain/index.ts';

/** How the engine treats one operation. */
export type Role = 'linearize' | 'optional' | 'stale' | 'skip';

export function roleOf(op: Operation): Role {
  if (op.response !== undefined && isErrorResponse(op.response)) return 'skip'; // definitely not applied
  if (op.request.type === 'defragment') return 'skip';
  if (op.return === null || op.response === undefined) {
    // An unknown read changed nothing and showed nothing.
    const hasEffect = isWriteRequest(op.request) || op.request.type === 'leaseGrant' || op.request.type === 'compact';
    return hasEffect ? 'optional' : 'skip';
  }
  return isStaleRead(op.request) ? 'stale' : 'linearize';
}

/** The revision an acknowledged request certainly created, if its response shows one. */
export function claimedRevision(op: Operation): number | undefined {
  const response = op.response as { revision?: number; deleted?: number; succeeded?: boolean; results?: ({ deleted?: number } | undefined)[] } | undefined;
  if (!response || response.revision === undefined || op.return === null) return undefined;
  const { request } = op;
  switch (request.type) {
    case 'put':
      return response.revision;
    case 'delete':
      return (response.deleted ?? 0) > 0 ? response.revision : undefined;
    case 'txn': {
      const ops = response.succeeded ? request.success : request.failure;
      if (ops.some((o) => o.type === 'put')) return response.revision;
      const deleted = ops.some((o, i) => o.type === 'delete' && (response.results?.[i]?.deleted ?? 0) > 0);
      return deleted ? response.revision : undefined;
    }
    default:
      return undefined;
  }
}

/**
 * What an operation can tell about revisions: `exact` if its response shows one (a header revision, a
 * key's mod or create revision) or its request names one (compact, a read at a revision); otherwise only
 * the constants its compares test mod or create revisions against.
 */
export interface RevisionView {
  exact: boolean;
  constants: number[];
}

export function revisionView(op: Operation): RevisionView {
  const { request, response } = op;
  const constants: number[] = [];
  let exact = request.type === 'compact';
  const rangeAtRevision = (r: EtcdRequest | { type: string; revision?: number }): boolean => r.type === 'range' && (r.revision ?? 0) > 0;
  if (rangeAtRevision(request)) exact = true;
  if (request.type === 'txn') {
    for (const c of request.compare) {
      if (c.target !== 'mod' && c.target !== 'create') continue;
      if (typeof c.value === 'number') constants.push(c.value);
      else exact = true;
    }
    if ([...request.success, ...request.failure].some(rangeAtRevision)) exact = true;
  }
  if (response !== undefined && op.return !== null) {
    const r = response as { revision?: number; kvs?: KeyValueRevisions[]; results?: ({ kvs?: KeyValueRevisions[] } | undefined)[] };
    const showsRevision = (kvs: KeyValueRevisions[] | undefined): boolean => (kvs ?? []).some((kv) => kv.modRevision !== undefined || kv.createRevision !== undefined);
    if (r.revision !== undefined || showsRevision(r.kvs) || (r.results ?? []).some((x) => showsRevision(x?.kvs))) exact = true;
  }
  return { exact, constants };
}

interface KeyValueRevisions {
  modRevision?: number;
  createRevision?: number;
}

/**
 * Unknown-outcome lease grants whose lease nothing else in the history names (no put with it, no revoke,
 * no other grant of it): such a grant changes nothing any response can show, so leaving it out (it never
 * happened, which an unknown outcome allows) loses no linearization, and keeps the search from telling
 * apart states that differ only in it.
 */
export function unreferencedLeaseGrants(ops: readonly { index: number; op: Operation; role: Role }[]): Set<number> {
  const named = new Map<string, number>();
  const name = (id: string | undefined): void => {
    if (id !== undefined) named.set(id, (named.get(id) ?? 0) + 1);
  };
  for (const { op } of ops) {
    const r = op.request;
    if (r.type === 'leaseGrant' || r.type === 'leaseRevoke') name(r.id);
    else if (r.type === 'put') name(r.lease);
    else if (r.type === 'txn') for (const o of [...r.success, ...r.failure]) if (o.type === 'put') name(o.lease);
  }
  const unnamed = new Set<number>();
  for (const { index, op, role } of ops) if (role === 'optional' && op.request.type === 'leaseGrant' && named.get(op.request.id) === 1) unnamed.add(index);
  return unnamed;
}
