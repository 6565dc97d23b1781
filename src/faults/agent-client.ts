/**
 * The runner's side of the fault agent's API (src/faults/agent.ts): HTTPS verified against the CA that
 * signed the agent's certificate (`ca`), or plain HTTP to an agent on loopback (the local runtimes).
 */
import http from 'node:http';
import https from 'node:https';
import type { AgentFault, AgentFaultRequest, AgentStatus } from '../domain/faults.ts';
import type { FailpointState } from './gofail.ts';

/**
 * A request the agent refused (`status` is its HTTP status and `agentMessage` its `error`), or one
 * that got no answer (`status` undefined: connection refused, timeout; `timedOut` tells which).
 */
export class AgentRequestError extends Error {
  override name = 'AgentRequestError';
  readonly url: string;
  readonly method: string;
  readonly status: number | undefined;
  readonly agentMessage: string;
  readonly timedOut: boolean;
  constructor(method: string, url: string, status: number | undefined, agentMessage: string, timedOut = false) {
    super(`agent ${method} ${url}: ${status === undefined ? '' : `HTTP ${status}: `}${agentMessage}`);
    this.method = method;
    this.url = url;
    this.status = status;
    this.agentMessage = agentMessage;
    this.timedOut = timedOut;
  }
}

export interface AgentClientOptions {
  /** Per-call timeout for status, failpoints and heals (default 5 s). */
  timeoutMs?: number;
  /** Per-call timeout for inject (default 30 s: a large diskPressure ballast takes a while to write). */
  injectTimeoutMs?: number;
  /** The CA (PEM) an https agent's certificate must chain to (absent: the system's CAs). */
  ca?: string | Buffer | undefined;
  /** The name the agent's certificate must hold when the URL names an address (default: the URL's host). */
  serverName?: string | undefined;
}

interface RawAnswer {
  status: number;
  statusText: string;
  text: string;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isAgentFault(value: unknown): value is AgentFault {
  return isRecord(value) && typeof value['id'] === 'string' && typeof value['type'] === 'string' && typeof value['expiresAt'] === 'string' && isRecord(value['request']);
}

export class AgentClient {
  readonly baseUrl: string;
  private readonly token: string;
  private readonly timeoutMs: number;
  private readonly injectTimeoutMs: number;
  private readonly ca: string | Buffer | undefined;
  private readonly serverName: string | undefined;

  constructor(baseUrl: string, token: string, options: AgentClientOptions = {}) {
    this.baseUrl = baseUrl.replace(/\/+$/, '');
    this.token = token;
    this.timeoutMs = options.timeoutMs ?? 5000;
    this.injectTimeoutMs = options.injectTimeoutMs ?? 30_000;
    this.ca = options.ca;
    this.serverName = options.serverName;
  }

  async status(): Promise<AgentStatus> {
    const body = await this.request('GET', '/v1/status');
    if (!isRecord(body) || typeof body['member'] !== 'string' || !Array.isArray(body['faults'])) throw this.malformed('GET', '/v1/status', body);
    const pid = body['pid'];
    return { member: body['member'], pid: typeof pid === 'number' ? pid : undefined, faults: body['faults'].filter(isAgentFault) };
  }

  /** The member's gofail failpoints (term "" when inactive). */
  async failpoints(): Promise<FailpointState[]> {
    const body = await this.request('GET', '/v1/failpoints');
    const list = isRecord(body) ? body['failpoints'] : undefined;
    if (!Array.isArray(list)) throw this.malformed('GET', '/v1/failpoints', body);
    return list.filter(isRecord).map((f) => ({ name: typeof f['name'] === 'string' ? f['name'] : '', term: typeof f['term'] === 'string' ? f['term'] : '' }));
  }

  /** The faults active on the agent. */
  async faults(): Promise<AgentFault[]> {
    const body = await this.request('GET', '/v1/faults');
    const list = isRecord(body) ? body['faults'] : undefined;
    if (!Array.isArray(list)) throw this.malformed('GET', '/v1/faults', body);
    return list.filter(isAgentFault);
  }

  async inject(request: AgentFaultRequest): Promise<AgentFault> {
    const body = await this.request('POST', '/v1/faults', request, this.injectTimeoutMs);
    if (!isAgentFault(body)) throw this.malformed('POST', '/v1/faults', body);
    return body;
  }

  /**
   * Heals one fault now. A 404 (AgentRequestError) means this agent does not know the id: it was
   * restarted since (and healed everything when it started) or the id is wrong.
   */
  async heal(id: string): Promise<AgentFault> {
    const route = `/v1/faults/${encodeURIComponent(id)}`;
    const body = await this.request('DELETE', route);
    if (!isAgentFault(body)) throw this.malformed('DELETE', route, body);
    return body;
  }

  async healAll(): Promise<AgentFault[]> {
    const body = await this.request('DELETE', '/v1/faults');
    const list = isRecord(body) ? body['healed'] : undefined;
    if (!Array.isArray(list)) throw this.malformed('DELETE', '/v1/faults', body);
    return list.filter(isAgentFault);
  }

  /** The survivor recovery's force file: its failover epoch, undefined when there is none. */
  async recoveryEpoch(): Promise<number | undefined> {
    const body = await this.request('GET', '/v1/recovery');
    if (!isRecord(body)) throw this.malformed('GET', '/v1/recovery', body);
    return typeof body['epoch'] === 'number' ? body['epoch'] : undefined;
  }

  /**
   * Brings the member back alone for the failover `epoch` (agent-recovery.ts): etcd killed and held, its
   * log committed, started with --force-new-cluster. recovered false: already done for this epoch.
   */
  async recover(epoch: number): Promise<{ epoch: number; recovered: boolean }> {
    // The agent kills etcd and runs etcd-wal-commit on its WAL: minutes for a large one.
    const body = await this.request('PUT', '/v1/recovery', { epoch }, this.injectTimeoutMs * 5);
    if (!isRecord(body) || typeof body['epoch'] !== 'number' || typeof body['recovered'] !== 'boolean') throw this.malformed('PUT', '/v1/recovery', body);
    return { epoch: body['epoch'], recovered: body['recovered'] };
  }

  /** The failover is over: the member's next starts are plain ones. removed false: there was no force file. */
  async finishRecovery(): Promise<boolean> {
    const body = await this.request('DELETE', '/v1/recovery');
    if (!isRecord(body) || typeof body['removed'] !== 'boolean') throw this.malformed('DELETE', '/v1/recovery', body);
    return body['removed'];
  }

  private malformed(method: string, route: string, body: unknown): AgentRequestError {
    return new AgentRequestError(method, `${this.baseUrl}${route}`, undefined, `unexpected answer ${JSON.stringify(body ?? null).slice(0, 200)}`);
  }

  private async request(method: string, route: string, body?: unknown, timeoutMs = this.timeoutMs): Promise<unknown> {
    const url = `${this.baseUrl}${route}`;
    let answer: RawAnswer;
    try {
      answer = await this.send(method, new URL(url), body === undefined ? undefined : JSON.stringify(body), timeoutMs);
    } catch (error) {
      const timedOut = error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError');
      const cause = error instanceof Error && error.cause instanceof Error ? ` (${error.cause.message})` : '';
      const message = timedOut ? `no answer within ${timeoutMs} ms` : `${error instanceof Error ? error.message : String(error)}${cause}`;
      throw new AgentRequestError(method, url, undefined, message, timedOut);
    }
    const { status, statusText, text } = answer;
    let parsed: unknown;
    try {
      parsed = text.trim() === '' ? undefined : (JSON.parse(text) as unknown);
    } catch {
      parsed = undefined;
    }
    if (status < 200 || status >= 300) {
      const message = isRecord(parsed) && typeof parsed['error'] === 'string' ? parsed['error'] : text.trim() || statusText;
      throw new AgentRequestError(method, url, status, message);
    }
    if (parsed === undefined) throw new AgentRequestError(method, url, status, `the answer is not JSON: ${text.slice(0, 200)}`);
    return parsed;
  }

  /** One request over node:http(s) (fetch takes no CA): the whole answer, or a TimeoutError after timeoutMs. */
  private send(method: string, url: URL, payload: string | undefined, timeoutMs: number): Promise<RawAnswer> {
    const headers: Record<string, string | number> = { Authorization: `Bearer ${this.token}` };
    if (payload !== undefined) {
      headers['Content-Type'] = 'application/json';
      headers['Content-Length'] = Buffer.byteLength(payload);
    }
    const signal = AbortSignal.timeout(timeoutMs);
    const options: https.RequestOptions = { method, headers, signal, agent: false };
    if (url.protocol === 'https:' && this.ca !== undefined) options.ca = this.ca;
    if (url.protocol === 'https:' && this.serverName !== undefined) options.servername = this.serverName;
    const transport = url.protocol === 'https:' ? https : http;
    return new Promise<RawAnswer>((resolve, reject) => {
      const request = transport.request(url, options, (response) => {
        response.setEncoding('utf8');
        let text = '';
        response.on('data', (chunk: string) => (text += chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, statusText: response.statusMessage ?? '', text }));
        response.on('error', reject);
      });
      request.on('error', (error) => reject(signal.aborted ? (signal.reason as Error) : error));
      request.end(payload);
    });
  }
}
