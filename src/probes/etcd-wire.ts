/**
 * Translation between the domain's requests/responses (src/domain) and etcd's gRPC messages as the
 * etcd3 client exposes them (bytes as Buffers, int64s as decimal strings).
 */
import type { IDeleteRangeResponse, IKeyValue, IRangeResponse, IRequestOp, IResponseOp, ITxnRequest, ITxnResponse } from 'etcd3';
import type { Compare, KeyValue, RangeRequest, RangeResponse, TxnOp, TxnOpResponse, TxnRequest } from '../domain/index.ts';

const buf = (s: string): Buffer => Buffer.from(s, 'utf8');

export function rangeToWire(r: RangeRequest): { key: Buffer; range_end?: Buffer; limit?: number; revision?: number; keys_only?: boolean; serializable?: boolean } {
  const wire: ReturnType<typeof rangeToWire> = { key: buf(r.key) };
  if (r.end !== undefined) wire.range_end = buf(r.end);
  if (r.limit !== undefined) wire.limit = r.limit;
  if (r.revision !== undefined) wire.revision = r.revision;
  if (r.keysOnly) wire.keys_only = true;
  if (r.serializable) wire.serializable = true;
  return wire;
}

export function kvFromWire(kv: IKeyValue, keysOnly: boolean): KeyValue {
  const out: KeyValue = {
    key: kv.key.toString('utf8'),
    modRevision: Number(kv.mod_revision),
    createRevision: Number(kv.create_revision),
    version: Number(kv.version),
  };
  if (!keysOnly) out.value = kv.value.toString('utf8');
  if (kv.lease && kv.lease !== '0') out.lease = kv.lease;
  return out;
}

export function rangeFromWire(r: IRangeResponse, keysOnly: boolean, withRevision = true): RangeResponse {
  const out: RangeResponse = { kvs: r.kvs.map((kv) => kvFromWire(kv, keysOnly)), count: Number(r.count) };
  if (withRevision) out.revision = Number(r.header.revision);
  return out;
}

const targets = { value: 'Value', mod: 'Mod', create: 'Create', version: 'Version', lease: 'Lease' } as const;
const results = { '=': 'Equal', '!=': 'NotEqual', '<': 'Less', '>': 'Greater' } as const;

function compareToWire(c: Compare): Record<string, unknown> {
  const wire: Record<string, unknown> = { key: buf(c.key), target: targets[c.target], result: results[c.result] };
  switch (c.target) {
    case 'value':
      wire['value'] = buf(String(c.value));
      break;
    case 'mod':
      wire['mod_revision'] = c.value;
      break;
    case 'create':
      wire['create_revision'] = c.value;
      break;
    case 'version':
      wire['version'] = c.value;
      break;
    case 'lease':
      wire['lease'] = String(c.value);
      break;
  }
  return wire;
}

function opToWire(op: TxnOp): IRequestOp {
  switch (op.type) {
    case 'range':
      return { request_range: rangeToWire(op) };
    case 'put':
      return { request_put: { key: buf(op.key), value: buf(op.value), ...(op.lease ? { lease: op.lease } : {}) } };
    case 'delete':
      return { request_delete_range: { key: buf(op.key), ...(op.end !== undefined ? { range_end: buf(op.end) } : {}) } };
  }
}

export function txnToWire(t: TxnRequest): ITxnRequest {
  return { compare: t.compare.map(compareToWire), success: t.success.map(opToWire), failure: t.failure.map(opToWire) };
}

function opResponseFromWire(op: TxnOp, r: IResponseOp): TxnOpResponse {
  switch (op.type) {
    case 'range':
      return rangeFromWire(r.response_range, op.keysOnly === true, false);
    case 'put':
      return {};
    case 'delete':
      return { deleted: Number((r.response_delete_range as IDeleteRangeResponse | undefined)?.deleted ?? 0) };
  }
}

export function txnFromWire(t: TxnRequest, r: ITxnResponse): { revision: number; succeeded: boolean; results: TxnOpResponse[] } {
  const ops = r.succeeded ? t.success : t.failure;
  return { revision: Number(r.header.revision), succeeded: r.succeeded, results: r.responses.map((resp, i) => opResponseFromWire(ops[i]!, resp)) };
}
