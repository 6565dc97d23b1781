/**
 * The operator's HTTP endpoints: /metrics (Prometheus text from a prom-client Registry), /healthz (200
 * while the process runs) and /readyz (200 when every readiness check returns true, else 503; the body
 * lists each check as `[+]name ok` or `[-]name failed`, like the API server's). One server, or two when
 * the metrics and health ports differ (each then serves only its own paths).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { logger } from '../../log.ts';

export interface ProbeServerOptions {
  host: string;
  /** 0 picks a free port. */
  metricsPort: number;
  healthPort: number;
  registry: Registry;
  readiness: Record<string, () => boolean>;
  /** Served on the metrics port under /gates/ (the upgrade and run gates for Argo Rollouts and Flagger). */
  gates?: Handler;
}

export type Handler = (request: http.IncomingMessage, response: http.ServerResponse) => Promise<void> | void;

function listen(host: string, port: number, routes: Record<string, Handler>): Promise<http.Server> {
  const server = http.createServer((request, response) => {
    const path = new URL(request.url ?? '/', 'http://localhost').pathname;
    // A route ending in / serves every path under it.
    const handler = routes[path] ?? Object.entries(routes).find(([route]) => route.endsWith('/') && path.startsWith(route))?.[1];
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain' }).end('method not allowed\n');
      return;
    }
    if (!handler) {
      response.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n');
      return;
    }
    Promise.resolve()
      .then(() => handler(request, response))
      .catch((error: unknown) => {
        logger.error('probe server: handler failed', { path, error: error instanceof Error ? error.message : String(error) });
        if (!response.headersSent) response.writeHead(500, { 'Content-Type': 'text/plain' });
        response.end('internal error\n');
      });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}

function baseUrl(host: string, server: http.Server): string {
  const { port } = server.address() as AddressInfo;
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

export class ProbeServer {
  /** The full URL of the metrics endpoint, e.g. `http://127.0.0.1:8080/metrics`. */
  readonly metricsUrl: string;
  /** The base URL of the health endpoints (append `/healthz` or `/readyz`), e.g. `http://127.0.0.1:8081`. */
  readonly healthUrl: string;
  private readonly servers: http.Server[];

  private constructor(metricsUrl: string, healthUrl: string, servers: http.Server[]) {
    this.metricsUrl = metricsUrl;
    this.healthUrl = healthUrl;
    this.servers = servers;
  }

  static async start(options: ProbeServerOptions): Promise<ProbeServer> {
    const { host, registry, readiness } = options;
    const metrics: Handler = async (_request, response) => {
      const text = await registry.metrics();
      response.writeHead(200, { 'Content-Type': registry.contentType }).end(text);
    };
    const healthz: Handler = (_request, response) => {
      response.writeHead(200, { 'Content-Type': 'text/plain' }).end('ok\n');
    };
    const readyz: Handler = (_request, response) => {
      const lines: string[] = [];
      let ready = true;
      for (const [name, check] of Object.entries(readiness)) {
        let ok: boolean;
        try {
          ok = check();
        } catch {
          ok = false;
        }
        ready &&= ok;
        lines.push(ok ? `[+]${name} ok` : `[-]${name} failed`);
      }
      lines.push(ready ? 'readyz check passed' : 'readyz check failed');
      response.writeHead(ready ? 200 : 503, { 'Content-Type': 'text/plain' }).end(`${lines.join('\n')}\n`);
    };

    const gates: Record<string, Handler> = options.gates === undefined ? {} : { '/gates/': options.gates };
    if (options.metricsPort === options.healthPort) {
      const server = await listen(host, options.metricsPort, { '/metrics': metrics, '/healthz': healthz, '/readyz': readyz, ...gates });
      const url = baseUrl(host, server);
      return new ProbeServer(`${url}/metrics`, url, [server]);
    }
    const metricsServer = await listen(host, options.metricsPort, { '/metrics': metrics, ...gates });
    try {
      const healthServer = await listen(host, options.healthPort, { '/healthz': healthz, '/readyz': readyz });
      return new ProbeServer(`${baseUrl(host, metricsServer)}/metrics`, baseUrl(host, healthServer), [metricsServer, healthServer]);
    } catch (error) {
      metricsServer.close();
      throw error;
    }
  }

  async close(): Promise<void> {
    await Promise.all(
      this.servers.map(
        (server) =>
          new Promise<void>((resolve) => {
            server.close(() => resolve());
            server.closeAllConnections();
          }),
      ),
    );
  }
}
