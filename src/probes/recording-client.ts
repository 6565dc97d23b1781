/**
 * An etcd client whose every request becomes an operation in the history. The etcd3 client retries
 * recoverable errors by default and sets no deadline; a silently retried write would make the history
 * lie, so retries are off and every call carries a deadline. After an ambiguous failure the client
 * continues under a new stream id, leaving the unknown operation open in the history.
 */
import { Etcd3, type IOptions } from 'etcd3';
import { noop } from 'cockatiel';
import type { EtcdRequest, EtcdResponse, Operation } from '../domain/index.ts';
import { isWriteRequest } from '../domain/index.ts';
import { rangeFromWire, rangeToWire, txnFromWire, txnToWire } from './etcd-wire.ts';
import type { HistoryRecorder } from './recorder.ts';

/** Errors that prove etcd did not apply the request. */
const definiteErrors = [
  // grpc-js fails the call in its load-balancer picker, before any byte is sent, when no connection
  // to the member is ready (waitForReady is off): the request never reached etcd.
  /UNAVAILABLE: No connection established/,
  /required revision has been compacted/,
  /required revision is a future revision/,
  /requested lease not found/,
  /lease not found/,
  /duplicate key given in txn request/,
  /too many operations in txn request/,
  /permission denied/,
  /request is too large/,
];

export function isDefiniteError(message: string): boolean {
  return definiteErrors.some((re) => re.test(message));
}

/** An etcd3 client for recorded traffic: no retries, no circuit breaker. */
export function recordingEtcdClient(endpoints: string[], options: Partial<IOptions> = {}): Etcd3 {
  return new Etcd3({
    hosts: endpoints,
    dialTimeout: 2000,
    ...options,
    faultHandling: { host: () => noop, global: noop },
  });
}

export type Outcome = { kind: 'ok'; response: EtcdResponse } | { kind: 'failed'; error: string } | { kind: 'unknown'; error: string };

export class RecordingClient {
  private clientId: number;
  private readonly etcd: Etcd3;
  private readonly recorder: HistoryRecorder;
  private readonly timeoutMs: number;
  private readonly member: string | undefined;

  constructor(etcd: Etcd3, recorder: HistoryRecorder, options: { timeoutMs: number; member?: string }) {
    this.etcd = etcd;
    this.recorder = recorder;
    this.timeoutMs = options.timeoutMs;
    this.member = options.member;
    this.clientId = recorder.newClientId();
  }

  get streamId(): number {
    return this.clientId;
  }

  async execute(request: EtcdRequest): Promise<Outcome> {
    const { token, call } = this.recorder.begin();
    const op: Operation = { client: this.clientId, call, return: null, request };
    if (this.member !== undefined) op.member = this.member;
    try {
      const response = await this.send(request, { deadline: Date.now() + this.timeoutMs });
      op.return = this.recorder.clock();
      op.response = response;
      this.recorder.end(token, op);
      return { kind: 'ok', response };
    } catch (error) {
      const message = (error as Error).message;
      op.error = message;
      if (isDefiniteError(message)) {
        op.return = this.recorder.clock();
        op.response = { error: message };
        this.recorder.end(token, op);
        return { kind: 'failed', error: message };
      }
      // Unknown outcome: the operation stays open; this client continues as a new stream.
      this.recorder.end(token, op);
      this.clientId = this.recorder.newClientId();
      return isWriteRequest(request) ? { kind: 'unknown', error: message } : { kind: 'failed', error: message };
    }
  }

  private async send(request: EtcdRequest, callOptions: { deadline: number }): Promise<EtcdResponse> {
    const { kv } = this.etcd;
    switch (request.type) {
      case 'range':
        return rangeFromWire(await kv.range(rangeToWire(request), callOptions), request.keysOnly === true);
      case 'put': {
        const r = await kv.put({ key: Buffer.from(request.key), value: Buffer.from(request.value), ...(request.lease ? { lease: request.lease } : {}) }, callOptions);
        return { revision: Number(r.header.revision) };
      }
      case 'delete': {
        const r = await kv.deleteRange({ key: Buffer.from(request.key), ...(request.end !== undefined ? { range_end: Buffer.from(request.end) } : {}) }, callOptions);
        return { revision: Number(r.header.revision), deleted: Number(r.deleted) };
      }
      case 'txn':
        return txnFromWire(request, await kv.txn(txnToWire(request), callOptions));
      case 'leaseGrant': {
        const r = await this.etcd.leaseClient.leaseGrant({ ID: request.id, TTL: request.ttl }, callOptions);
        return { revision: Number(r.header.revision) };
      }
      case 'leaseRevoke': {
        const r = await this.etcd.leaseClient.leaseRevoke({ ID: request.id }, callOptions);
        return { revision: Number(r.header.revision) };
      }
      case 'compact': {
        const r = await kv.compact({ revision: request.revision, physical: false }, callOptions);
        return { revision: Number(r.header.revision) };
      }
      case 'defragment':
        await this.etcd.maintenance.defragment(callOptions);
        return {};
    }
  }
}
