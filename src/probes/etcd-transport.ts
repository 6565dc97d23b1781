/**
 * How this project's clients reach an etcd member's client URL, plain or over TLS: the gRPC credentials
 * of an etcd3 client, and HTTP requests to the member's own endpoints (/health, /metrics, the JSON
 * gateway). With an EtcdClientTls the server certificate is verified against its CA (never skipped);
 * without one an https URL is verified against the system's CAs, as any client would.
 */
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { IOptions } from 'etcd3';
import type { EtcdClientTls } from '../domain/index.ts';

/** The etcd3 options that make its gRPC channels use `tls` (none for a plain cluster). */
export function etcdTlsOptions(tls: EtcdClientTls | undefined): Pick<IOptions, 'credentials'> {
  if (tls === undefined) return {};
  const { clientCertificate } = tls;
  return {
    credentials: {
      rootCertificate: tls.ca,
      ...(clientCertificate === undefined ? {} : { privateKey: clientCertificate.key, certChain: clientCertificate.cert }),
    },
  };
}

export interface EtcdHttpRequest {
  method?: 'GET' | 'POST';
  body?: string;
  tls?: EtcdClientTls | undefined;
  timeoutMs: number;
}

export interface EtcdHttpResponse {
  status: number;
  text: string;
}

/**
 * One HTTP request to a member's client URL. Node's fetch cannot be given a CA per request, hence
 * node:http(s); the timeout covers the whole exchange, body included.
 */
export function etcdHttp(url: string, request: EtcdHttpRequest): Promise<EtcdHttpResponse> {
  const target = new URL(url);
  const secure = target.protocol === 'https:';
  const { tls } = request;
  const options: https.RequestOptions = { method: request.method ?? 'GET', signal: AbortSignal.timeout(request.timeoutMs) };
  if (request.body !== undefined) options.headers = { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(request.body) };
  // SNI carries host names only (RFC 6066): none for a member addressed by its IP.
  if (secure && net.isIP(target.hostname.replace(/^\[|\]$/g, '')) !== 0) options.servername = '';
  if (secure && tls !== undefined) {
    options.ca = tls.ca;
    if (tls.clientCertificate) {
      options.cert = tls.clientCertificate.cert;
      options.key = tls.clientCertificate.key;
    }
  }
  return new Promise((resolve, reject) => {
    const req = (secure ? https : http).request(target, options, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(request.body);
  });
}
