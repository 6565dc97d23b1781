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
import { newCounters, ProxiedConnection, unidentifiedKey, type ByteCounters, type ConnectionOwner, type DropMode, type RemoteCounters } from './peer-proxy-connection.ts';
import { memberIdHex } from './peer-proxy-rules.ts';

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

/**
 * A fault-injecting TCP proxy in front of one member's peer listener. It starts with no rules (a
 * transparent proxy); setPeers tells it which member id is which name, setRules what to do.
 */
export class PeerProxy implements ConnectionOwner {
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
