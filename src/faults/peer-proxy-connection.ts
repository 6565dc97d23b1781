/**
 * One connection through the peer proxy (src/faults/peer-proxy.ts): the two sockets, identifying the
 * member that opened it from its first request head (or a later one), the two directions that apply
 * the link effects chunk by chunk, and the counters the proxy's stats are made of.
 */
import net from 'node:net';
import type { LinkRule } from '../domain/faults.ts';
import { logger } from '../log.ts';
import { chunkDelayMs, connectionEffects, isLossy, noEffect, normalizeHexId, serverFromHeader, type LinkEffect, type PeerDirection } from './peer-proxy-rules.ts';

/**
 * `discard`: the chunk is discarded and the connection goes on, as etcd's robustness proxy does. The
 * receiver then reads a stream with a hole in it: rafthttp's msgappv2 stream is stateful (entries
 * carry no index, the decoder infers it from the previous message), so a hole at a message boundary
 * is not detected and a follower appends entries at wrong indexes; etcd 3.6.16 panics with
 * "index, N, is out of range [M]" in raft's maybeAppend within a second of a 50% drop (etcd issue
 * #15704). A real network never does that: TCP retransmits or the connection breaks.
 * `reset` (default): the chunk is discarded and the connection is destroyed at once, both ways: the
 * raft messages in flight are lost (raft tolerates that) and etcd reconnects with fresh stream state.
 */
export type DropMode = 'reset' | 'discard';

export const unidentifiedKey = '?';
/** Bytes queued in a delay before the source is paused. */
const delayHighWaterMark = 4 * 1024 * 1024;
/** A header line split across two chunks: how much of the previous chunk to keep when scanning. */
const scanCarryBytes = 256;
const lateHeaderPattern = /\r\nx-server-from:[ \t]*([0-9a-f]+)[ \t]*\r\n/i;

export interface ByteCounters {
  forwardedBytes: number;
  discardedBytes: number;
  droppedChunks: number;
  delayedBytes: number;
}

/** What the proxy counts per remote member id (`?` for unidentified connections). */
export interface RemoteCounters {
  accepted: number;
  open: number;
  upstream: ByteCounters;
  downstream: ByteCounters;
}

export function newCounters(): RemoteCounters {
  const bytes = (): ByteCounters => ({ forwardedBytes: 0, discardedBytes: 0, droppedChunks: 0, delayedBytes: 0 });
  return { accepted: 0, open: 0, upstream: bytes(), downstream: bytes() };
}

/** What a connection needs from the proxy that accepted it (PeerProxy). */
export interface ConnectionOwner {
  readonly member: string;
  /** The member's real peer listener. */
  readonly target: { readonly host: string; readonly port: number };
  readonly identifyMaxBytes: number;
  readonly identifyTimeoutMs: number;
  readonly random: () => number;
  readonly dropMode: DropMode;
  peerNameOrUndefined(id: string): string | undefined;
  /** The rules that concern the proxy's member. */
  currentRules(): readonly LinkRule[];
  countersFor(key: string): RemoteCounters;
  countAccepted(): void;
  countUnidentified(): void;
  countResetByDrop(): void;
  countIdentifiedLate(): void;
  /** The connection closed. */
  forget(conn: ProxiedConnection): void;
}

interface QueuedChunk {
  due: number;
  /** undefined: the end of the stream (FIN). */
  chunk: Buffer | undefined;
}

/** One direction of one connection: applies the effect chunk by chunk, keeps order, forwards the FIN. */
class Pipe {
  readonly direction: PeerDirection;
  private readonly src: net.Socket;
  private readonly dst: net.Socket;
  private readonly conn: ProxiedConnection;
  private readonly queue: QueuedChunk[] = [];
  private queuedBytes = 0;
  private lastDue = 0;
  private timer: NodeJS.Timeout | undefined;
  private ended = false;
  private paused = false;
  /** Whether this direction lost anything (a chunk, or a FIN swallowed by a blackhole): the stream is corrupt. */
  lost = false;

  constructor(direction: PeerDirection, src: net.Socket, dst: net.Socket, conn: ProxiedConnection) {
    this.direction = direction;
    this.src = src;
    this.dst = dst;
    this.conn = conn;
    dst.on('drain', () => this.updateFlow());
  }

  push(chunk: Buffer): void {
    if (this.ended || this.dst.destroyed) return;
    const effect = this.conn.effect(this.direction);
    const counters = this.conn.bytes(this.direction);
    if (effect.blackhole) {
      this.lost = true;
      counters.discardedBytes += chunk.length;
      return;
    }
    if (effect.dropPercent > 0 && this.conn.proxy.random() * 100 < effect.dropPercent) {
      this.lost = true;
      counters.discardedBytes += chunk.length;
      counters.droppedChunks += 1;
      if (this.conn.proxy.dropMode === 'reset') {
        this.conn.proxy.countResetByDrop();
        this.conn.destroy(`dropped a ${this.direction} chunk: reset`);
      }
      return;
    }
    const delay = chunkDelayMs(effect, this.conn.proxy.random);
    if (delay <= 0 && this.queue.length === 0) {
      this.write(chunk);
      return;
    }
    counters.delayedBytes += chunk.length;
    this.enqueue(delay, chunk);
  }

  /** The source half-closed: forward the FIN after what is queued (but not through a blackhole). */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    const effect = this.conn.effect(this.direction);
    if (effect.blackhole) {
      // A blackholed network does not carry the FIN either; the connection ends when a side closes
      // it, or when the link heals (connections that lost something are then destroyed).
      this.lost = true;
      return;
    }
    const delay = chunkDelayMs(effect, this.conn.proxy.random);
    if (delay <= 0 && this.queue.length === 0) {
      if (!this.dst.destroyed) this.dst.end();
      return;
    }
    this.enqueue(delay, undefined);
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.queue.length = 0;
    this.queuedBytes = 0;
  }

  private enqueue(delay: number, chunk: Buffer | undefined): void {
    const due = Math.max(Date.now() + delay, this.lastDue);
    this.lastDue = due;
    this.queue.push({ due, chunk });
    if (chunk) this.queuedBytes += chunk.length;
    this.schedule();
    this.updateFlow();
  }

  private schedule(): void {
    if (this.timer || this.queue.length === 0) return;
    const wait = Math.max(0, this.queue[0]!.due - Date.now());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.flush();
    }, wait);
  }

  private flush(): void {
    const now = Date.now();
    while (this.queue.length > 0 && this.queue[0]!.due <= now) {
      const { chunk } = this.queue.shift()!;
      if (chunk === undefined) {
        if (!this.dst.destroyed) this.dst.end();
      } else {
        this.queuedBytes -= chunk.length;
        this.write(chunk);
      }
    }
    this.schedule();
    this.updateFlow();
  }

  private write(chunk: Buffer): void {
    if (this.dst.destroyed || this.dst.writableEnded) return;
    this.conn.bytes(this.direction).forwardedBytes += chunk.length;
    this.dst.write(chunk);
    this.updateFlow();
  }

  /** Pauses the source while the destination or the delay queue is full. */
  private updateFlow(): void {
    const full = this.dst.writableNeedDrain || this.queuedBytes > delayHighWaterMark;
    if (full && !this.paused) {
      this.paused = true;
      this.src.pause();
    } else if (!full && this.paused) {
      this.paused = false;
      if (!this.src.destroyed) this.src.resume();
    }
  }
}

type IdentifyState = 'identifying' | 'identified' | 'anonymous';

/** One accepted connection and its own connection to the member. */
export class ProxiedConnection {
  readonly proxy: ConnectionOwner;
  readonly client: net.Socket;
  readonly member: net.Socket;
  readonly upstream: Pipe;
  readonly downstream: Pipe;
  state: IdentifyState = 'identifying';
  /** The remote member's id (hex), once identified. */
  remoteId: string | undefined;
  closed = false;
  private head: Buffer = Buffer.alloc(0);
  private scanCarry = '';
  private identifyTimer: NodeJS.Timeout | undefined;
  private clientEnded = false;
  private effects: { upstream: LinkEffect; downstream: LinkEffect } = { upstream: { ...noEffect }, downstream: { ...noEffect } };
  /** Where this connection's bytes are counted. */
  private counters: RemoteCounters;
  /** Where this connection counts as open. */
  private counted: RemoteCounters | undefined;

  constructor(proxy: ConnectionOwner, client: net.Socket) {
    this.proxy = proxy;
    this.client = client;
    this.member = net.connect({ host: proxy.target.host, port: proxy.target.port, allowHalfOpen: true });
    this.member.setNoDelay(true);
    client.setNoDelay(true);
    this.upstream = new Pipe('upstream', client, this.member, this);
    this.downstream = new Pipe('downstream', this.member, client, this);
    this.counters = proxy.countersFor(unidentifiedKey);
    proxy.countAccepted();

    client.on('error', (error) => this.destroy(`peer side: ${error.message}`));
    this.member.on('error', (error) => this.destroy(`member side: ${error.message}`));
    client.on('close', () => this.destroy());
    this.member.on('close', () => this.destroy());

    // The member speaks only after a request; hold its side anyway until the connection is identified.
    this.member.pause();
    this.member.on('data', (chunk: Buffer) => this.downstream.push(chunk));
    this.member.on('end', () => this.downstream.end());

    client.on('data', (chunk: Buffer) => this.fromClient(chunk));
    client.on('end', () => {
      this.clientEnded = true;
      if (this.state === 'identifying') this.identify(undefined, 'peer half-closed before a request head');
      else this.upstream.end();
    });
    this.identifyTimer = setTimeout(() => this.identify(undefined, 'no request head in time'), proxy.identifyTimeoutMs);
  }

  effect(direction: PeerDirection): LinkEffect {
    return this.effects[direction];
  }

  bytes(direction: PeerDirection): ByteCounters {
    return this.counters[direction];
  }

  /** Recomputes the effects from the proxy's rules and peers; true when a lossy direction healed after losing something. */
  refreshEffects(): boolean {
    const before = this.effects;
    const name = this.remoteId === undefined ? undefined : this.proxy.peerNameOrUndefined(this.remoteId);
    this.effects = connectionEffects(this.proxy.member, name, this.proxy.currentRules());
    const healed = (direction: PeerDirection, pipe: Pipe): boolean =>
      isLossy(before[direction]) && !isLossy(this.effects[direction]) && pipe.lost;
    return healed('upstream', this.upstream) || healed('downstream', this.downstream);
  }

  private fromClient(chunk: Buffer): void {
    if (this.state === 'identifying') {
      this.holdHead(chunk);
      return;
    }
    if (this.state === 'anonymous') this.scanForSender(chunk);
    this.upstream.push(chunk);
  }

  private holdHead(chunk: Buffer): void {
    this.head = this.head.length === 0 ? chunk : Buffer.concat([this.head, chunk]);
    const end = this.head.indexOf('\r\n\r\n');
    if (end !== -1) {
      const head = this.head.subarray(0, end).toString('latin1');
      const id = serverFromHeader(head);
      this.identify(id, id === undefined ? `first request has no X-Server-From (${head.slice(0, head.indexOf('\r\n'))})` : undefined);
    } else if (this.head.length >= this.proxy.identifyMaxBytes) {
      this.identify(undefined, `no request head in the first ${this.head.length} bytes`);
    }
  }

  /**
   * A keep-alive connection opened by a request without `X-Server-From` (Go's transport pools them:
   * the prober and the pipeline share one) may later carry rafthttp requests: identify it then.
   */
  private scanForSender(chunk: Buffer): void {
    const text = this.scanCarry + chunk.toString('latin1');
    const match = lateHeaderPattern.exec(text);
    this.scanCarry = text.slice(-scanCarryBytes);
    if (!match?.[1]) return;
    this.proxy.countIdentifiedLate();
    this.setRemote(normalizeHexId(match[1]));
  }

  private identify(id: string | undefined, why: string | undefined): void {
    if (this.state !== 'identifying' || this.closed) return;
    if (this.identifyTimer) clearTimeout(this.identifyTimer);
    this.identifyTimer = undefined;
    this.state = 'anonymous';
    if (id === undefined) {
      this.proxy.countUnidentified();
      this.countAsOpen(this.proxy.countersFor(unidentifiedKey));
      logger.debug('peer proxy: forwarding an unidentified connection', { member: this.proxy.member, why });
    } else {
      this.setRemote(id);
    }
    const held = this.head;
    this.head = Buffer.alloc(0);
    if (held.length > 0) this.upstream.push(held);
    if (this.clientEnded) this.upstream.end();
    this.member.resume();
  }

  private setRemote(id: string): void {
    this.state = 'identified';
    this.remoteId = id;
    this.countAsOpen(this.proxy.countersFor(id));
    this.refreshEffects();
  }

  /** Counts this connection (accepted, open) under a remote; moves it when it is identified late. */
  private countAsOpen(counters: RemoteCounters): void {
    if (this.counted) this.counted.open -= 1;
    this.counters = counters;
    counters.accepted += 1;
    counters.open += 1;
    this.counted = counters;
  }

  destroy(reason?: string): void {
    if (this.closed) return;
    this.closed = true;
    if (reason) logger.debug('peer proxy: connection closed', { member: this.proxy.member, remote: this.remoteId ?? unidentifiedKey, reason });
    if (this.identifyTimer) clearTimeout(this.identifyTimer);
    this.upstream.stop();
    this.downstream.stop();
    this.client.destroy();
    this.member.destroy();
    if (this.counted) this.counted.open -= 1;
    this.proxy.forget(this);
  }
}
