/**
 * A TCP proxy in front of one etcd member's peer listener, where the peer network faults happen.
 *
 * The member advertises the proxy's address as its peer URL, so every peer connection to it comes
 * through here. In rafthttp the member that wants to talk opens the connection: on the proxy in front
 * of member B, a connection opened by member A carries A→B bytes upstream (request bodies: pipeline
 * and snapshot POSTs) and B→A bytes downstream (response bodies: the long-lived stream GETs, in which B
 * sends its raft messages for A). The proxy learns who opened a connection from the `X-Server-From`
 * header (the sender's member id in hex) of the connection's first request, then applies the link
 * rules to each direction: blackhole, delay, drop. Keep-alive connections stay with the member that
 * opened them. A connection whose first request has no `X-Server-From` (etcd sends none with
 * `GET /members`, `/version` and `/raft/probing`) or whose head does not come in time is forwarded
 * unidentified, with no rule, until a later request on it carries the header (Go's transport pools
 * connections: the prober and the pipeline share one).
 *
 * Lossy rules corrupt the HTTP streams that go through them. When a link that was blackholed or
 * dropping heals, its connections that lost anything are destroyed so that etcd reconnects with fresh
 * stream state instead of decoding a stream with a hole in it; see {@link DropMode} for drops.
 */
import net from 'node:net';
import type { LinkRule } from '../domain/faults.ts';
import { logger } from '../log.ts';

/** Which way bytes flow on a connection: upstream is remote member → this member (requests). */
export type PeerDirection = 'upstream' | 'downstream';

/** What the rules do to one direction of one connection. */
export interface LinkEffect {
  /** Discard every chunk (connections stay open). */
  blackhole: boolean;
  /** 0..100: the chance that a chunk is discarded. */
  dropPercent: number;
  /** Hold each chunk this long (plus a uniform jitter in ±jitterMs), order kept. */
  delayMs: number;
  jitterMs: number;
}

export const noEffect: Readonly<LinkEffect> = Object.freeze({ blackhole: false, dropPercent: 0, delayMs: 0, jitterMs: 0 });

/** Whether an effect loses bytes (and so corrupts an HTTP stream that goes through it). */
export function isLossy(effect: LinkEffect): boolean {
  return effect.blackhole || effect.dropPercent > 0;
}

/**
 * The rules for the link `from → to`, merged: blackhole if any rule blackholes; drop chances combine
 * as independent losses (1 - Π(1 - p)); delays and jitters add up (two delay faults on one link each
 * add their latency).
 */
export function linkEffect(from: string, to: string, rules: readonly LinkRule[]): LinkEffect {
  let blackhole = false;
  let keep = 1;
  let delayMs = 0;
  let jitterMs = 0;
  for (const rule of rules) {
    if (rule.from !== from || rule.to !== to) continue;
    switch (rule.action) {
      case 'blackhole':
        blackhole = true;
        break;
      case 'drop':
        keep *= 1 - clamp(rule.dropPercent ?? 0, 0, 100) / 100;
        break;
      case 'delay':
        delayMs += Math.max(0, rule.delayMs ?? 0);
        jitterMs += Math.max(0, rule.jitterMs ?? 0);
        break;
    }
  }
  const dropPercent = clamp((1 - keep) * 100, 0, 100);
  return { blackhole, dropPercent: dropPercent < 1e-9 ? 0 : dropPercent, delayMs, jitterMs };
}

/**
 * The effects on a connection to the proxy in front of `proxyMember` that `remoteMember` opened:
 * upstream bytes travel remote → proxy member, downstream bytes proxy member → remote. An unidentified
 * connection (remote undefined) or one from the member itself gets no effect. Rules about other links
 * are ignored.
 */
export function connectionEffects(
  proxyMember: string,
  remoteMember: string | undefined,
  rules: readonly LinkRule[],
): { upstream: LinkEffect; downstream: LinkEffect } {
  if (remoteMember === undefined || remoteMember === proxyMember) return { upstream: { ...noEffect }, downstream: { ...noEffect } };
  return {
    upstream: linkEffect(remoteMember, proxyMember, rules),
    downstream: linkEffect(proxyMember, remoteMember, rules),
  };
}

/** A chunk's hold time under an effect: delayMs plus a uniform jitter in [-jitterMs, +jitterMs], never negative. */
export function chunkDelayMs(effect: LinkEffect, random: () => number): number {
  if (effect.delayMs <= 0 && effect.jitterMs <= 0) return 0;
  const jitter = effect.jitterMs > 0 ? (random() * 2 - 1) * effect.jitterMs : 0;
  return Math.max(0, effect.delayMs + jitter);
}

/** Member id as etcd prints it (types.ID.String(): lowercase hex, no leading zeros) from a decimal or hex id. */
export function memberIdHex(id: string | bigint): string {
  if (typeof id === 'bigint') return id.toString(16);
  const trimmed = id.trim();
  if (/^\d+$/.test(trimmed)) return BigInt(trimmed).toString(16);
  return normalizeHexId(trimmed);
}

function normalizeHexId(hex: string): string {
  const lower = hex.trim().toLowerCase().replace(/^0x/, '');
  if (!/^[0-9a-f]+$/.test(lower)) return lower;
  return BigInt(`0x${lower}`).toString(16);
}

/**
 * The `X-Server-From` value of an HTTP request head (everything before the blank line), normalized to
 * etcd's id form; undefined when the head has no such header.
 */
export function serverFromHeader(head: string): string | undefined {
  const lines = head.split('\r\n');
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    if (line.slice(0, colon).trim().toLowerCase() !== 'x-server-from') continue;
    const value = line.slice(colon + 1).trim();
    return value === '' ? undefined : normalizeHexId(value);
  }
  return undefined;
}

function clamp(value: number, min: number, max: number): number {
  if (!Number.isFinite(value)) return min;
  return Math.min(max, Math.max(min, value));
}

// ---- the proxy ----

export interface PeerProxyAddress {
  host: string;
  port: number;
}

export interface PeerProxyOptions {
  /** The member behind this proxy (its name, as in link rules). */
  member: string;
  /** Where the proxy listens: the member's advertised peer URL. Port 0 picks a free port (see `listen` on the proxy). */
  listen: PeerProxyAddress;
  /** The member's real peer listener. */
  target: PeerProxyAddress;
  /** Bytes held while looking for the first request head before the connection is forwarded unidentified. Default 64 KiB. */
  identifyMaxBytes?: number;
  /** How long to wait for the first request head before forwarding unidentified. Default 2000 ms. */
  identifyTimeoutMs?: number;
  /** Random source in [0, 1) for drops and jitter (tests pass a seeded one). */
  random?: () => number;
  /** What a dropped chunk does to its connection; see {@link DropMode}. Default `reset`. */
  dropMode?: DropMode;
}

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

export interface PeerLinkStats {
  /** Member names; `?` for connections not identified, `id:<hex>` for an id missing from setPeers. */
  from: string;
  to: string;
  /** Bytes written to the other side. */
  forwardedBytes: number;
  /** Bytes discarded by blackhole or drop. */
  discardedBytes: number;
  /** Chunks discarded by drop (blackholed chunks are not counted here). */
  droppedChunks: number;
  /** Bytes that went through a delay (counted when queued). */
  delayedBytes: number;
}

export interface PeerConnectionStats {
  accepted: number;
  open: number;
}

export interface PeerProxyStats {
  member: string;
  listen: PeerProxyAddress;
  connections: {
    accepted: number;
    open: number;
    /**
     * Connections whose first request carried no `X-Server-From` (etcd's `/members`, `/version` and
     * `/raft/probing` requests), or whose head did not come in time; they go unfiltered.
     */
    unidentified: number;
    /** Unidentified connections that later carried a request with `X-Server-From` (keep-alive reuse). */
    identifiedLate: number;
    /** Connections destroyed because their link healed after losing bytes. */
    destroyedOnHeal: number;
    /** Connections destroyed because a chunk was dropped (drop mode `reset`). */
    resetByDrop: number;
    /** By remote member name (`?` when unidentified). */
    byPeer: Record<string, PeerConnectionStats>;
  };
  /** Keyed `from->to`, e.g. `m1->m2`. */
  links: Record<string, PeerLinkStats>;
}

const unidentifiedKey = '?';
/** Bytes queued in a delay before the source is paused. */
const delayHighWaterMark = 4 * 1024 * 1024;
/** A header line split across two chunks: how much of the previous chunk to keep when scanning. */
const scanCarryBytes = 256;
const lateHeaderPattern = /\r\nx-server-from:[ \t]*([0-9a-f]+)[ \t]*\r\n/i;

interface ByteCounters {
  forwardedBytes: number;
  discardedBytes: number;
  droppedChunks: number;
  delayedBytes: number;
}

/** What the proxy counts per remote member id (`?` for unidentified connections). */
interface RemoteCounters {
  accepted: number;
  open: number;
  upstream: ByteCounters;
  downstream: ByteCounters;
}

function newCounters(): RemoteCounters {
  const bytes = (): ByteCounters => ({ forwardedBytes: 0, discardedBytes: 0, droppedChunks: 0, delayedBytes: 0 });
  return { accepted: 0, open: 0, upstream: bytes(), downstream: bytes() };
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
class ProxiedConnection {
  readonly proxy: PeerProxy;
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

  constructor(proxy: PeerProxy, client: net.Socket) {
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

/**
 * A fault-injecting TCP proxy in front of one member's peer listener. It starts with no rules (a
 * transparent proxy); setPeers tells it which member id is which name, setRules what to do.
 */
export class PeerProxy {
  readonly member: string;
  readonly listen: PeerProxyAddress;
  readonly target: PeerProxyAddress;
  readonly identifyMaxBytes: number;
  readonly identifyTimeoutMs: number;
  readonly random: () => number;
  readonly dropMode: DropMode;
  private readonly server: net.Server;
  private readonly connections = new Set<ProxiedConnection>();
  private peers: ReadonlyMap<string, string> = new Map();
  private rules: readonly LinkRule[] = [];
  private readonly remotes = new Map<string, RemoteCounters>();
  private accepted = 0;
  private unidentified = 0;
  private identifiedLate = 0;
  private destroyedOnHeal = 0;
  private resetByDrop = 0;
  private closing: Promise<void> | undefined;

  private constructor(options: PeerProxyOptions, server: net.Server) {
    this.member = options.member;
    this.listen = { ...options.listen };
    this.target = { ...options.target };
    this.identifyMaxBytes = options.identifyMaxBytes ?? 64 * 1024;
    this.identifyTimeoutMs = options.identifyTimeoutMs ?? 2000;
    this.random = options.random ?? Math.random;
    this.dropMode = options.dropMode ?? 'reset';
    this.server = server;
  }

  static async start(options: PeerProxyOptions): Promise<PeerProxy> {
    const server = net.createServer({ allowHalfOpen: true });
    const proxy = new PeerProxy(options, server);
    server.on('connection', (socket) => proxy.accept(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.listen.port, options.listen.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (error) => logger.warn('peer proxy: server error', { member: proxy.member, error: error.message }));
    const address = server.address();
    if (address !== null && typeof address !== 'string') proxy.listen.port = address.port;
    return proxy;
  }

  /**
   * Who is who: member id → member name. Ids as etcd prints them (lowercase hex, the `X-Server-From`
   * form) or as decimal strings (the etcd3 client's member list); both are normalized. Applies to
   * connections already open.
   */
  setPeers(peers: ReadonlyMap<string, string>): void {
    this.peers = new Map([...peers].map(([id, name]) => [memberIdHex(id), name]));
    this.applyRules();
  }

  /**
   * Replaces the rules. Rules whose `to` is this member act on bytes the `from` member sends on its
   * connections; rules whose `from` is this member act on bytes this member answers on connections
   * that `to` opened; other rules are ignored. A link that healed after losing bytes has its
   * connections destroyed, so etcd reconnects instead of reading a corrupt stream.
   */
  setRules(rules: readonly LinkRule[]): void {
    this.rules = rules.map((r) => ({ ...r }));
    this.applyRules();
  }

  clearRules(): void {
    this.setRules([]);
  }

  /** The rules that concern this proxy's member. */
  currentRules(): readonly LinkRule[] {
    return this.rules.filter((r) => r.from === this.member || r.to === this.member);
  }

  stats(): PeerProxyStats {
    const byPeer: Record<string, PeerConnectionStats> = {};
    const links: Record<string, PeerLinkStats> = {};
    const addBytes = (from: string, to: string, bytes: ByteCounters): void => {
      const key = `${from}->${to}`;
      const entry = (links[key] ??= { from, to, forwardedBytes: 0, discardedBytes: 0, droppedChunks: 0, delayedBytes: 0 });
      entry.forwardedBytes += bytes.forwardedBytes;
      entry.discardedBytes += bytes.discardedBytes;
      entry.droppedChunks += bytes.droppedChunks;
      entry.delayedBytes += bytes.delayedBytes;
    };
    for (const [key, counters] of this.remotes) {
      const name = key === unidentifiedKey ? unidentifiedKey : this.peerName(key);
      const peer = (byPeer[name] ??= { accepted: 0, open: 0 });
      peer.accepted += counters.accepted;
      peer.open += counters.open;
      addBytes(name, this.member, counters.upstream);
      addBytes(this.member, name, counters.downstream);
    }
    return {
      member: this.member,
      listen: { ...this.listen },
      connections: {
        accepted: this.accepted,
        open: this.connections.size,
        unidentified: this.unidentified,
        identifiedLate: this.identifiedLate,
        destroyedOnHeal: this.destroyedOnHeal,
        resetByDrop: this.resetByDrop,
        byPeer,
      },
      links,
    };
  }

  /** Stops listening and destroys every connection. */
  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      for (const conn of [...this.connections]) conn.destroy();
    });
    return this.closing;
  }

  // ---- for the connections (not part of the API) ----

  peerNameOrUndefined(id: string): string | undefined {
    return this.peers.get(id);
  }

  peerName(id: string): string {
    return this.peers.get(id) ?? `id:${id}`;
  }

  countersFor(key: string): RemoteCounters {
    let entry = this.remotes.get(key);
    if (!entry) {
      entry = newCounters();
      this.remotes.set(key, entry);
    }
    return entry;
  }

  countAccepted(): void {
    this.accepted += 1;
  }

  countUnidentified(): void {
    this.unidentified += 1;
  }

  countResetByDrop(): void {
    this.resetByDrop += 1;
  }

  countIdentifiedLate(): void {
    this.identifiedLate += 1;
  }

  forget(conn: ProxiedConnection): void {
    this.connections.delete(conn);
  }

  private accept(socket: net.Socket): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    this.connections.add(new ProxiedConnection(this, socket));
  }

  private applyRules(): void {
    const healed: ProxiedConnection[] = [];
    for (const conn of this.connections) {
      if (conn.refreshEffects()) healed.push(conn);
    }
    for (const conn of healed) {
      this.destroyedOnHeal += 1;
      conn.destroy('link healed after losing bytes: reconnect cleanly');
    }
    if (healed.length > 0) logger.debug('peer proxy: destroyed connections on healed links', { member: this.member, count: healed.length });
  }
}
