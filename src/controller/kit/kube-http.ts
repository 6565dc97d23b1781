/**
 * Raw JSON requests to the Kubernetes API with a KubeConfig's credentials (kubeConfig.applyToHTTPSOptions):
 * objects stay plain JSON (dates as strings, no client-library model classes), and a watch is a stream of
 * lines we control (timeouts, abort, errors).
 */
import http from 'node:http';
import https from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';

/** A non-2xx answer of the API server; `status` is the HTTP status, `reason` the Status object's reason. */
export class KubeApiError extends Error {
  override name = 'KubeApiError';
  readonly status: number;
  readonly reason: string | undefined;
  readonly body: unknown;

  constructor(method: string, path: string, status: number, body: unknown) {
    const statusBody = isStatus(body) ? body : undefined;
    super(`${method} ${path}: HTTP ${status}${statusBody?.message !== undefined ? `: ${statusBody.message}` : ''}`);
    this.status = status;
    this.reason = statusBody?.reason;
    this.body = body;
  }
}

export interface KubeStatus {
  kind: 'Status';
  code?: number;
  reason?: string;
  message?: string;
}

export function isStatus(value: unknown): value is KubeStatus {
  return typeof value === 'object' && value !== null && (value as { kind?: unknown }).kind === 'Status';
}

export interface RequestOptions {
  method?: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  /** Content type of the body (default application/json; patches: application/merge-patch+json). */
  contentType?: string;
  signal?: AbortSignal;
  /** Socket inactivity timeout (default 30 s). */
  timeoutMs?: number;
}

function buildUrl(kubeConfig: KubeConfig, path: string, query: RequestOptions['query']): URL {
  const cluster = kubeConfig.getCurrentCluster();
  if (!cluster) throw new Error('the kubeconfig has no current cluster');
  const url = new URL(cluster.server.replace(/\/+$/, '') + path);
  for (const [name, value] of Object.entries(query ?? {})) {
    if (value !== undefined) url.searchParams.set(name, String(value));
  }
  return url;
}

async function open(
  kubeConfig: KubeConfig,
  path: string,
  options: RequestOptions,
): Promise<{ response: http.IncomingMessage; request: http.ClientRequest; method: string }> {
  const method = options.method ?? 'GET';
  const url = buildUrl(kubeConfig, path, options.query);
  const payload = options.body === undefined ? undefined : Buffer.from(JSON.stringify(options.body));
  const requestOptions: https.RequestOptions = {
    method,
    headers: {
      Accept: 'application/json',
      ...(payload ? { 'Content-Type': options.contentType ?? 'application/json', 'Content-Length': payload.length } : {}),
    },
  };
  await kubeConfig.applyToHTTPSOptions(requestOptions);
  options.signal?.throwIfAborted();
  const transport = url.protocol === 'http:' ? http : https;
  if (url.protocol === 'http:') delete requestOptions.agent;
  return new Promise((resolve, reject) => {
    const request = transport.request(url, { ...requestOptions, signal: options.signal }, (response) => {
      resolve({ response, request, method });
    });
    request.setTimeout(options.timeoutMs ?? 30_000, () => {
      request.destroy(new Error(`${method} ${path}: no answer for ${options.timeoutMs ?? 30_000} ms`));
    });
    request.on('error', reject);
    request.end(payload);
  });
}

async function readBody(response: http.IncomingMessage): Promise<string> {
  response.setEncoding('utf8');
  let text = '';
  for await (const chunk of response) text += chunk as string;
  return text;
}

function parse(text: string): unknown {
  if (text === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

/** One request; resolves with the parsed JSON body of a 2xx answer, rejects with KubeApiError otherwise. */
export async function kubeRequest<T>(kubeConfig: KubeConfig, path: string, options: RequestOptions = {}): Promise<T> {
  const { response, method } = await open(kubeConfig, path, options);
  const body = parse(await readBody(response));
  const status = response.statusCode ?? 0;
  if (status < 200 || status >= 300) throw new KubeApiError(method, path, status, body);
  return body as T;
}

/**
 * A streaming GET (a watch): calls onLine with each parsed JSON line. Resolves when the server ends the
 * stream, rejects on an error answer (KubeApiError), a broken connection or an abort of `signal`.
 */
export async function kubeStream(
  kubeConfig: KubeConfig,
  path: string,
  options: RequestOptions & { onLine: (value: unknown) => void },
): Promise<void> {
  const { response, method } = await open(kubeConfig, path, options);
  const status = response.statusCode ?? 0;
  if (status < 200 || status >= 300) {
    throw new KubeApiError(method, path, status, parse(await readBody(response)));
  }
  response.setEncoding('utf8');
  let buffered = '';
  for await (const chunk of response) {
    buffered += chunk as string;
    let newline: number;
    while ((newline = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, newline).trim();
      buffered = buffered.slice(newline + 1);
      if (line !== '') options.onLine(parse(line));
    }
  }
  const rest = buffered.trim();
  if (rest !== '') options.onLine(parse(rest));
}
