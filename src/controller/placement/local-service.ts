/**
 * The local placement's stand-in for a cluster's client Service: one loopback TCP address that forwards
 * each new connection to a ready member, round robin. Clients that must outlive membership changes
 * (a two-node failover replaces a member, so its client URL goes away) connect here, as they would to
 * the Service in Kubernetes. Ready is what a readiness probe on etcd's /readyz says (quorum, not a
 * learner), polled every 250 ms; with no member ready, any running one takes the connection (its
 * client then gets etcd's own error). A connection stays with the member it reached; when that member
 * dies the client reconnects and lands on another.
 */
import net from 'node:net';
import { logger } from '../../log.ts';

export interface ServiceBackend {
  name: string;
  /** host:port of the member's client listener. */
  host: string;
  port: number;
}

export class LocalServiceProxy {
  private readonly server: net.Server;
  private readonly backends: () => ServiceBackend[];
  private readonly sockets = new Set<net.Socket>();
  private next = 0;
  private closed = false;
  /** Names of the members whose /readyz answered 200 at the last poll. */
  private ready = new Set<string>();
  private readonly poller: NodeJS.Timeout;
  private polling = false;

  private constructor(server: net.Server, backends: () => ServiceBackend[]) {
    this.server = server;
    this.backends = backends;
    this.poller = setInterval(() => void this.pollReadiness(), 250);
    this.poller.unref();
  }

  private async pollReadiness(): Promise<void> {
    if (this.polling || this.closed) return;
    this.polling = true;
    try {
      const results = await Promise.all(
        this.backends().map(async (b) => {
          const ready = await fetch(`http://${b.host}:${b.port}/readyz`, { signal: AbortSignal.timeout(1000) })
            .then((r) => r.status === 200)
            .catch(() => false);
          return ready ? b.name : undefined;
        }),
      );
      this.ready = new Set(results.filter((n): n is string => n !== undefined));
    } finally {
      this.polling = false;
    }
  }

  /** Listens on 127.0.0.1:`port` (0: any free port). */
  static async start(port: number, backends: () => ServiceBackend[]): Promise<LocalServiceProxy> {
    const server = net.createServer();
    const proxy = new LocalServiceProxy(server, backends);
    server.on('connection', (socket) => proxy.accept(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    return proxy;
  }

  get port(): number {
    const address = this.server.address();
    if (address === null || typeof address === 'string') throw new Error('the service proxy is not listening');
    return address.port;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  private accept(client: net.Socket): void {
    this.sockets.add(client);
    client.on('close', () => this.sockets.delete(client));
    client.on('error', () => client.destroy());
    client.pause();
    const running = this.backends();
    const ready = running.filter((b) => this.ready.has(b.name));
    const candidates = ready.length > 0 ? ready : running;
    if (candidates.length === 0 || this.closed) {
      client.destroy();
      return;
    }
    const start = this.next++ % candidates.length;
    this.connect(client, [...candidates.slice(start), ...candidates.slice(0, start)]);
  }

  /** Tries the backends in order; a refused connection moves on to the next (the member just died). */
  private connect(client: net.Socket, candidates: ServiceBackend[]): void {
    const backend = candidates[0];
    if (!backend || client.destroyed) {
      client.destroy();
      return;
    }
    const upstream = net.connect({ host: backend.host, port: backend.port });
    this.sockets.add(upstream);
    upstream.on('close', () => this.sockets.delete(upstream));
    let connected = false;
    upstream.once('connect', () => {
      connected = true;
      client.pipe(upstream);
      upstream.pipe(client);
      client.resume();
    });
    upstream.on('error', (error) => {
      if (!connected) {
        upstream.destroy();
        this.connect(client, candidates.slice(1));
        return;
      }
      logger.debug('service proxy: upstream error', { member: backend.name, error: error.message });
      client.destroy();
    });
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => {
      if (connected) client.destroy();
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.poller);
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
