/** Serves a prom-client registry on /metrics (and /healthz) over plain HTTP. */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

export class MetricsServer {
  private readonly server: Server;
  readonly url: string;

  private constructor(server: Server, url: string) {
    this.server = server;
    this.url = url;
  }

  /** Port 0 picks a free port; the URL says which. */
  static async start(registry: Registry, options: { host: string; port: number }): Promise<MetricsServer> {
    const server = createServer((request, response) => {
      if (request.url === '/metrics') {
        registry.metrics().then(
          (body) => {
            response.writeHead(200, { 'Content-Type': registry.contentType });
            response.end(body);
          },
          (error: unknown) => {
            response.writeHead(500).end(String(error));
          },
        );
      } else if (request.url === '/healthz') {
        response.writeHead(200).end('ok\n');
      } else {
        response.writeHead(404).end('not found: try /metrics\n');
      }
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (error: NodeJS.ErrnoException) => {
        reject(new Error(`cannot serve metrics on ${options.host}:${options.port}: ${error.message}`));
      });
      server.listen(options.port, options.host, resolve);
    });
    const { address, port } = server.address() as AddressInfo;
    const host = address.includes(':') ? `[${address}]` : address;
    return new MetricsServer(server, `http://${host}:${port}/metrics`);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
