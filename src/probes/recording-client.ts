/**
 * An etcd client whose every request becomes an operation in the history. The etcd3 client retries
 * recoverable errors by default and sets no deadline; a silently retried write would make the history
 * lie, so retries are off and every call carries a deadline. After an ambiguous failure the client
 * continues under a new stream id, leaving the unknown operation open in the history.
 */
import { Etcd3, type IOptions } from 'etcd3';
import { noop } from 'cockatiel';
import type { EtcdClientTls, EtcdRequest, EtcdResponse, Operation } from '../domain/index.ts';
import { isWriteRequest } from '../domain/index.ts';
import { etcdTlsOptions } from './etcd-transport.ts';
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

/** gRPC channel settings of every probe client: reconnect attempts every 100 ms to 500 ms. */
export const probeChannelOptions = { 'grpc.initial_reconnect_backoff_ms': 100, 'grpc.max_reconnect_backoff_ms': 500 } as const;

export interface RecordingEtcdClientOptions extends Partial<Omit<IOptions, 'credentials'>> {
  /** The cluster's client TLS (MemberRuntime.clientTls): absent for plain http members. */
  tls?: EtcdClientTls | undefined;
}

/** An etcd3 client for recorded traffic: no retries, no circuit breaker. */
export function recordingEtcdClient(endpoints: string[], options: RecordingEtcdClientOptions = {}): Etcd3 {
  const { tls, ...etcdOptions } = options;
  return new Etcd3({
    hosts: endpoints,
    dialTimeout: 2000,
    // A probe measures the cluster, not gRPC's reconnect back-off (1 s growing to 120 s by default): a
    // member that comes back (a failover's survivor, a restarted member) is reached within 0.5 s.
    grpcOptions: probeChannelOptions,
    ...etcdOptions,
    ...etcdTlsOptions(tls),
    faultHandling: { host: () => noop, global: noop },
  });
}

export type Outcome = { kind: 'ok'; response: EtcdResponse } | { kind: 'failed'; error: string } | { kind: 'unknown'; error: string };

export interface RecordingClientOptions {
  timeoutMs: number;
  /** The member a pinned client talks to; otherwise the answering member is named from the response header. */
  member?: string;
  /** etcd member id (decimal string, as in response headers) to member name. */
  memberNames?: ReadonlyMap<string, string>;
  /**
   * Deliberate breakage for self-tests only: the request actually sent, when it differs from the one
   * recorded (e.g. a linearizable read sent as serializable). Never set in a real run.
   */
  sendAs?: (request: EtcdRequest) => EtcdRequest;
}

export class RecordingClient {
  private clientId: number;
  /** Whether an operation of `clientId` is in flight (a stream's operations never overlap). */
  private busy = false;
  private readonly etcd: Etcd3;
  private readonly recorder: HistoryRecorder;
  private readonly timeoutMs: number;
  private readonly member: string | undefined;
  private readonly memberNames: ReadonlyMap<string, string> | undefined;
  private readonly sendAs: ((request: EtcdRequest) => EtcdRequest) | undefined;

  constructor(etcd: Etcd3, recorder: HistoryRecorder, options: RecordingClientOptions) {
    this.etcd = etcd;
    this.recorder = recorder;
    this.timeoutMs = options.timeoutMs;
    this.member = options.member;
    this.memberNames = options.memberNames;
    this.sendAs = options.sendAs;
    this.clientId = recorder.newClientId();
  }

  get streamId(): number {
    return this.clientId;
  }

  /**
   * Sends a request and records it. Calls may overlap (two faults' triggers share a client): one made while
   * another is in flight goes under a stream id of its own, since a stream's operations never overlap.
   */
  async execute(request: EtcdRequest): Promise<Outcome> {
    if (this.busy) return this.record(this.recorder.newClientId(), request);
    this.busy = true;
    try {
      return await this.record(this.clientId, request);
    } finally {
      this.busy = false;
    }
  }

  private async record(clientId: number, request: EtcdRequest): Promise<Outcome> {
    // Recorded before it is sent: no watch event or read can show its effect before the history has it.
    const { token, call } = this.recorder.begin(clientId, request, this.member);
    const op: Operation = { client: clientId, call, return: null, request };
    if (this.member !== undefined) op.member = this.member;
    try {
      const wire = this.sendAs ? this.sendAs(request) : request;
      const { response, memberId } = await this.send(wire, { deadline: Date.now() + this.timeoutMs });
      op.return = this.recorder.clock();
      op.response = response;
      const answeredBy = memberId === undefined ? undefined : this.memberNames?.get(memberId);
      if (answeredBy !== undefined) op.member = answeredBy;
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
      if (clientId === this.clientId) this.clientId = this.recorder.newClientId();
      return isWriteRequest(request) ? { kind: 'unknown', error: message } : { kind: 'failed', error: message };
    }
  }

  private async send(request: EtcdRequest, callOptions: { deadline: number }): Promise<{ response: EtcdResponse; memberId: string | undefined }> {
    const { kv } = this.etcd;
    const answer = (response: EtcdResponse, header: { member_id: string } | undefined): { response: EtcdResponse; memberId: string | undefined } => ({
      response,
      memberId: header?.member_id,
    });
    switch (request.type) {
      case 'range': {
        const r = await kv.range(rangeToWire(request), callOptions);
        return answer(rangeFromWire(r, request.keysOnly === true), r.header);
      }
      case 'put': {
        const r = await kv.put({ key: Buffer.from(request.key), value: Buffer.from(request.value), ...(request.lease ? { lease: request.lease } : {}) }, callOptions);
        return answer({ revision: Number(r.header.revision) }, r.header);
      }
      case 'delete': {
        const r = await kv.deleteRange({ key: Buffer.from(request.key), ...(request.end !== undefined ? { range_end: Buffer.from(request.end) } : {}) }, callOptions);
        return answer({ revision: Number(r.header.revision), deleted: Number(r.deleted) }, r.header);
      }
      case 'txn': {
        const r = await kv.txn(txnToWire(request), callOptions);
        return answer(txnFromWire(request, r), r.header);
      }
      case 'leaseGrant': {
        const r = await this.etcd.leaseClient.leaseGrant({ ID: request.id, TTL: request.ttl }, callOptions);
        return answer({ revision: Number(r.header.revision) }, r.header);
      }
      case 'leaseRevoke': {
        const r = await this.etcd.leaseClient.leaseRevoke({ ID: request.id }, callOptions);
        return answer({ revision: Number(r.header.revision) }, r.header);
      }
      case 'compact': {
        const r = await kv.compact({ revision: request.revision, physical: false }, callOptions);
        return answer({ revision: Number(r.header.revision) }, r.header);
      }
      case 'defragment': {
        const r = await this.etcd.maintenance.defragment(callOptions);
        return answer({}, r.header);
      }
    }
  }
}
