/**
 * etcd requests and responses as the history format records them (docs/history-format.md).
 * One place for these types: probes produce them, the checker consumes them, reports show them.
 *
 * Every response field marked optional may be missing (histories imported from other tools carry no
 * revisions); the checker then leaves it unconstrained. Lease ids are decimal strings because etcd's
 * int64 ids do not fit a JavaScript number.
 */

export interface RangeRequest {
  type: 'range';
  key: string;
  /** Exclusive range end; "\0" means every key >= key; absent means the single key. */
  end?: string;
  /** Read at this past revision (a stale read); 0 or absent means the latest. */
  revision?: number;
  limit?: number;
  keysOnly?: boolean;
  /** Served by the member alone, without a quorum round (may be stale). */
  serializable?: boolean;
}

export interface PutRequest {
  type: 'put';
  key: string;
  value: string;
  lease?: string;
}

export interface DeleteRequest {
  type: 'delete';
  key: string;
  end?: string;
}

export type CompareTarget = 'value' | 'mod' | 'create' | 'version' | 'lease';
export type CompareResult = '=' | '!=' | '<' | '>';

export interface Compare {
  key: string;
  target: CompareTarget;
  result: CompareResult;
  /** A string for `value` and `lease` targets, a number for the revision and version targets. */
  value: string | number;
}

export type TxnOp = RangeRequest | PutRequest | DeleteRequest;

export interface TxnRequest {
  type: 'txn';
  compare: Compare[];
  success: TxnOp[];
  failure: TxnOp[];
}

export interface LeaseGrantRequest {
  type: 'leaseGrant';
  id: string;
  ttl: number;
}

export interface LeaseRevokeRequest {
  type: 'leaseRevoke';
  id: string;
}

export interface CompactRequest {
  type: 'compact';
  revision: number;
}

export interface DefragmentRequest {
  type: 'defragment';
}

export type EtcdRequest =
  | RangeRequest
  | PutRequest
  | DeleteRequest
  | TxnRequest
  | LeaseGrantRequest
  | LeaseRevokeRequest
  | CompactRequest
  | DefragmentRequest;

export type RequestType = EtcdRequest['type'];

export interface KeyValue {
  key: string;
  /** Absent in keys-only answers. */
  value?: string;
  modRevision?: number;
  createRevision?: number;
  version?: number;
  lease?: string;
}

export interface RangeResponse {
  revision?: number;
  kvs: KeyValue[];
  count?: number;
}

export interface PutResponse {
  revision?: number;
}

export interface DeleteResponse {
  revision?: number;
  deleted?: number;
}

/** The answer to one operation inside a txn: which kind depends on the request op at that position. */
export type TxnOpResponse = RangeResponse | PutResponse | DeleteResponse;

export interface TxnResponse {
  revision?: number;
  succeeded: boolean;
  /**
   * One per op of the branch taken. An entry is undefined only in an outcome the checker inferred (a txn
   * whose delete a watch showed): what its reads returned nobody saw, so they are not checked.
   */
  results?: (TxnOpResponse | undefined)[];
}

/** leaseGrant, leaseRevoke, compact and defragment answers carry at most the header revision. */
export interface HeaderResponse {
  revision?: number;
}

/** An error that proves the request was not applied (compacted or future revision, lease not found...). */
export interface ErrorResponse {
  error: string;
}

export type EtcdResponse = RangeResponse | PutResponse | DeleteResponse | TxnResponse | HeaderResponse | ErrorResponse;

export function isErrorResponse(response: EtcdResponse): response is ErrorResponse {
  return typeof (response as Partial<ErrorResponse>).error === 'string';
}

/** True for requests that can change the store (and so the revision). */
export function isWriteRequest(request: EtcdRequest): boolean {
  switch (request.type) {
    case 'put':
    case 'delete':
    case 'leaseRevoke':
      return true;
    case 'txn':
      return [...request.success, ...request.failure].some((op) => op.type !== 'range');
    case 'range':
    case 'leaseGrant':
    case 'compact':
    case 'defragment':
      return false;
  }
}

/** A read that may legitimately return old data and so is not linearized: serializable or at a past revision. */
export function isStaleRead(request: EtcdRequest): request is RangeRequest {
  return request.type === 'range' && (request.serializable === true || (request.revision ?? 0) > 0);
}

/** The exclusive range end covering every key that starts with `prefix` (etcd's clientv3.GetPrefixRangeEnd). */
export function prefixEnd(prefix: string): string {
  for (let i = prefix.length - 1; i >= 0; i--) {
    const code = prefix.charCodeAt(i);
    if (code < 0xffff) return prefix.slice(0, i) + String.fromCharCode(code + 1);
  }
  return '\u0000';
}
