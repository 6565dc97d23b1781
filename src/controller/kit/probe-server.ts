/**
 * The operator's HTTP endpoints: /metrics (Prometheus text from a prom-client Registry), /healthz (200
 * while the process runs) and /readyz (200 when every readiness check returns true, else 503; the body
 * lists each check as `[+]name ok` or `[-]name failed`, like the API server's). One server, or two when
 * the metrics and health ports differ (each then serves only its own paths).
 *
 * With `secure` the metrics server (/metrics and the gates) is HTTPS and every request is authenticated
 * and authorized (./http-auth.ts): /metrics needs `get` on the non-resource URL /metrics, a gate what
 * `gateAttributes` says. The health server stays plain HTTP without authentication (the kubelet's probes
 * carry no token; it tells only up or not), so it must have a port of its own then.
 */
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { logger } from '../../log.ts';
import type { ServingCertificate } from './certificates.ts';
import { withAuth, verbOf, type Handler, type RequestAttributes, type Reviewer } from './http-auth.ts';

export interface ProbeServerOptions {
  host: string;
  /** 0 picks a free port. */
  metricsPort: number;
  healthPort: number;
  registry: Registry;
  readiness: Record<string, () => boolean>;
  /** Served on the metrics port under /gates/ (the upgrade and run gates for Argo Rollouts and Flagger). */
  gates?: Handler;
  /** With `secure`: what a request under /gates/ asks for (default: `get` on its path as a non-resource URL). */
  gateAttributes?: (request: http.IncomingMessage) => RequestAttributes;
  /** HTTPS with this certificate, and every metrics-port request reviewed by `reviewer`. */
  secure?: { tls: ServingCertificate; reviewer: Reviewer };
}

export type { Handler };
type AnyServer = http.Server | https.Server;

/** Secure serving asked for with one port for metrics and health. */
export class ProbeServerConfigError extends Error {
  override name = 'ProbeServerConfigError';
}

function listen(host: string, port: number, routes: Record<string, Handler>, tls?: ServingCertificate): Promise<AnyServer> {
  const route = (request: http.IncomingMessage, response: http.ServerResponse): void => {
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
  };
  const server: AnyServer = tls === undefined ? http.createServer(route) : https.createServer({ cert: tls.cert, key: tls.key }, route);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}

function baseUrl(host: string, server: AnyServer): string {
  const { port } = server.address() as AddressInfo;
  const scheme = server instanceof https.Server ? 'https' : 'http';
  return `${scheme}://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

const nonResource = (request: http.IncomingMessage): RequestAttributes => ({
  kind: 'nonResource',
  verb: verbOf(request.method),
  path: new URL(request.url ?? '/', 'http://localhost').pathname,
});

export class ProbeServer {
  /** The full URL of the metrics endpoint, e.g. `http://127.0.0.1:8080/metrics`. */
  readonly metricsUrl: string;
  /** The base URL of the health endpoints (append `/healthz` or `/readyz`), e.g. `http://127.0.0.1:8081`. */
  readonly healthUrl: string;
  private readonly servers: AnyServer[];

  private constructor(metricsUrl: string, healthUrl: string, servers: AnyServer[]) {
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

    const { secure } = options;
    if (secure !== undefined && options.metricsPort === options.healthPort && options.metricsPort !== 0) {
      throw new ProbeServerConfigError(`secure metrics serving needs a health port of its own (both are ${options.metricsPort}): the kubelet's probes carry no token`);
    }
    if (secure !== undefined) {
      const metricsRoutes: Record<string, Handler> = { '/metrics': withAuth(secure.reviewer, nonResource, metrics) };
      if (options.gates !== undefined) metricsRoutes['/gates/'] = withAuth(secure.reviewer, options.gateAttributes ?? nonResource, options.gates);
      return ProbeServer.startTwo(host, options, metricsRoutes, { '/healthz': healthz, '/readyz': readyz }, secure.tls);
    }
    const gates: Record<string, Handler> = options.gates === undefined ? {} : { '/gates/': options.gates };
    if (options.metricsPort === options.healthPort) {
      const server = await listen(host, options.metricsPort, { '/metrics': metrics, '/healthz': healthz, '/readyz': readyz, ...gates });
      const url = baseUrl(host, server);
      return new ProbeServer(`${url}/metrics`, url, [server]);
    }
    return ProbeServer.startTwo(host, options, { '/metrics': metrics, ...gates }, { '/healthz': healthz, '/readyz': readyz });
  }

  private static async startTwo(host: string, options: ProbeServerOptions, metricsRoutes: Record<string, Handler>, healthRoutes: Record<string, Handler>, tls?: ServingCertificate): Promise<ProbeServer> {
    const metricsServer = await listen(host, options.metricsPort, metricsRoutes, tls);
    try {
      const healthServer = await listen(host, options.healthPort, healthRoutes);
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
