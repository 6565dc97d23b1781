/**
 * The fault agent: runs beside one etcd member, with no extra privileges, and injects faults into it
 * on request over a small authenticated API (JSON, `Authorization: Bearer <token>`): HTTPS with the
 * certificate it is given (a member Pod's), or plain HTTP on a loopback address only (the local runtime),
 * so the token never crosses a network in clear:
 *
 *   GET    /v1/status         AgentStatus
 *   GET    /v1/failpoints     { failpoints: [{ name, term }] } from the member's gofail API
 *   GET    /v1/faults         { faults: AgentFault[] } (the active ones)
 *   POST   /v1/faults         AgentFaultRequest -> 201 AgentFault
 *   GET    /v1/faults/<id>    AgentFault
 *   DELETE /v1/faults/<id>    heals one -> AgentFault (with healedAt)
 *   DELETE /v1/faults         heals all -> { healed: AgentFault[] }
 *   GET    /v1/recovery       { epoch? }: the two-node survivor's force file (agent-recovery.ts)
 *   PUT    /v1/recovery       { epoch } -> { epoch, recovered, commit? }: bring etcd back alone
 *   DELETE /v1/recovery       { removed }: the failover is over, etcd starts plainly
 *
 * Faults are leases: every one but `kill` carries a TTL and the agent heals it by itself when the TTL
 * is up, so a runner that crashes or loses the network never leaves a fault behind. On start the agent
 * heals whatever a previous instance may have left (SIGCONT to etcd, the ballast file, a crash's hold
 * file, active failpoints); close() heals everything it holds.
 *
 * The etcd process is found by its data dir in /proc (src/faults/agent-process.ts). The agent never
 * restarts etcd: whoever supervises it does (the local cluster, the kubelet). A `crash` fault
 * writes a hold file (`<data-dir>.hold`, src/faults/hold.ts) before its SIGKILL and removes it when it
 * heals; the supervisor must not restart etcd while the hold is in force (LocalEtcdMember honours it),
 * and ignores it once expired, so the hold is a lease too even if no agent is left to remove it.
 *
 * This module holds the agent's lifecycle and its HTTP API; the requests are validated in
 * agent-request.ts, the leases kept in agent-leases.ts and the faults applied in agent-actions.ts.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { AgentFault, AgentFaultRequest, AgentStatus } from '../domain/faults.ts';
import { defaultMaxTtlMs } from '../domain/faults.ts';
import { logger } from '../log.ts';
import { isLoopback } from '../loopback.ts';
import { FaultActions } from './agent-actions.ts';
import { FaultLeases } from './agent-leases.ts';
import { SurvivorRecovery, type CommitLog } from './agent-recovery.ts';
import { AgentHttpError, errorMessage, parseFaultRequest, parseRecoveryRequest, readFaultRequestBody } from './agent-request.ts';
import { GofailClient, type FailpointState } from './gofail.ts';
import { PeerProxy, type PeerProxyAddress } from './peer-proxy.ts';
import { sendJson } from '../http-json.ts';

export { defaultMaxTtlMs };

/** A plain-HTTP listen address that is not loopback. */
export class AgentInsecureListenError extends Error {
  override name = 'AgentInsecureListenError';
}

export interface HostPort {
  host: string;
  port: number;
}

export interface FaultAgentOptions {
  /** The member's name (as in link rules and the ballast file's name). */
  member: string;
  /** The member's etcd data dir: finds its process, and where the ballast goes. */
  dataDir: string;
  /** Where the API listens (port 0: any free port; see FaultAgent.url). */
  listen: HostPort;
  /** The bearer token every request must carry. */
  token: string;
  /**
   * Serve HTTPS with this certificate and key (PEM). Without it the API is plain HTTP, which the agent
   * serves on a loopback address only: elsewhere the token would cross the network in clear.
   */
  tls?: { cert: string; key: string };
  /** The member's gofail HTTP API; without it failpoint faults answer 409. */
  gofailUrl?: string;
  /** Run a peer proxy (network faults): it listens on the member's advertised peer address and forwards to etcd's. */
  peerProxy?: { listen: PeerProxyAddress; target: PeerProxyAddress };
  /** The longest TTL a fault may ask for (default 10 minutes). */
  maxTtlMs?: number;
  /** For tests: where to look for processes (default /proc). */
  procRoot?: string;
  /** etcd-wal-commit on the member's data dir: without it PUT /v1/recovery answers 409. */
  commitLog?: CommitLog;
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

export class FaultAgent {
  readonly member: string;
  readonly dataDir: string;
  readonly maxTtlMs: number;
  private readonly tokenDigest: Buffer;
  private readonly leases: FaultLeases;
  private readonly actions: FaultActions;
  private readonly recovery: SurvivorRecovery;
  private proxy: PeerProxy | undefined;
  private server: http.Server | https.Server | undefined;
  private closing: Promise<AgentFault[]> | undefined;

  private constructor(options: FaultAgentOptions) {
    if (options.token === '') throw new Error('the agent token must not be empty');
    if (options.tls === undefined && !isLoopback(options.listen.host)) {
      throw new AgentInsecureListenError(`agent ${options.member}: listen address ${options.listen.host}:${options.listen.port} is not loopback: serve TLS there (--tls-cert-file, --tls-key-file), or listen on 127.0.0.1`);
    }
    this.member = options.member;
    this.dataDir = path.resolve(options.dataDir);
    this.maxTtlMs = options.maxTtlMs ?? defaultMaxTtlMs;
    this.tokenDigest = digest(options.token);
    this.leases = new FaultLeases(this.member);
    this.actions = new FaultActions({
      member: this.member,
      dataDir: this.dataDir,
      procRoot: options.procRoot ?? '/proc',
      gofail: options.gofailUrl === undefined ? undefined : new GofailClient(options.gofailUrl, { timeoutMs: 2000 }),
      leases: this.leases,
      proxy: () => this.proxy,
    });
    this.recovery = new SurvivorRecovery({ member: this.member, dataDir: this.dataDir, procRoot: options.procRoot ?? '/proc', commitLog: options.commitLog });
  }

  /** Starts the peer proxy (if asked), heals what a previous agent may have left, then serves the API. */
  static async start(options: FaultAgentOptions): Promise<FaultAgent> {
    const agent = new FaultAgent(options);
    try {
      if (options.peerProxy) {
        agent.proxy = await PeerProxy.start({ member: options.member, listen: options.peerProxy.listen, target: options.peerProxy.target });
      }
      await agent.actions.healLeftovers();
      await agent.listen(options.listen, options.tls);
    } catch (error) {
      await agent.proxy?.close();
      throw error;
    }
    return agent;
  }

  /** The API's base URL. */
  get url(): string {
    const address = this.server?.address() as AddressInfo | null | undefined;
    if (!address) throw new Error('the agent is not listening');
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    return `${this.server instanceof https.Server ? 'https' : 'http'}://${host}:${address.port}`;
  }

  /** The etcd process of this member, if one runs. */
  etcdPid(): number | undefined {
    return this.actions.etcdPid();
  }

  status(): AgentStatus {
    return { member: this.member, pid: this.etcdPid(), faults: this.activeFaults() };
  }

  activeFaults(): AgentFault[] {
    return this.leases.list();
  }

  async failpoints(): Promise<FailpointState[]> {
    return this.actions.failpoints();
  }

  /** Injects a validated fault; the AgentFault says when the agent heals it by itself. */
  async inject(request: AgentFaultRequest): Promise<AgentFault> {
    if (this.closing) throw new AgentHttpError(503, 'the agent is shutting down');
    return this.leases.inject(request, (r, expiresAtMs) => this.actions.apply(r, expiresAtMs));
  }

  /** Heals one fault now. A fault this agent already healed is returned again; an unknown id is a 404. */
  async heal(id: string): Promise<AgentFault> {
    return this.leases.heal(id);
  }

  async healAll(): Promise<AgentFault[]> {
    return this.leases.healAll();
  }

  /** Heals every fault, stops the proxy and the API. */
  async close(): Promise<AgentFault[]> {
    this.closing ??= (async () => {
      const healed = await this.healAll();
      const server = this.server;
      if (server) {
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        });
      }
      await this.proxy?.close();
      return healed;
    })();
    return this.closing;
  }

  // ---- HTTP ----

  private async listen(address: HostPort, tls: FaultAgentOptions['tls']): Promise<void> {
    const serve = (req: http.IncomingMessage, res: http.ServerResponse): void => void this.serve(req, res);
    const server = tls === undefined ? http.createServer(serve) : https.createServer({ cert: tls.cert, key: tls.key, minVersion: 'TLSv1.2' }, serve);
    server.keepAliveTimeout = 5000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(address.port, address.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
  }

  private authorized(header: string | undefined): boolean {
    const match = /^Bearer (.+)$/.exec(header ?? '');
    if (!match) return false;
    return timingSafeEqual(digest(match[1]!.trim()), this.tokenDigest);
  }

  private async serve(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    try {
      if (!this.authorized(req.headers.authorization)) {
        throw new AgentHttpError(401, 'missing or wrong bearer token (Authorization: Bearer <token>)', { 'WWW-Authenticate': 'Bearer' });
      }
      const { pathname } = new URL(req.url ?? '/', 'http://agent');
      const method = req.method ?? 'GET';
      const allow = (methods: string[]): void => {
        if (!methods.includes(method)) throw new AgentHttpError(405, `${method} ${pathname}: use ${methods.join(' or ')}`, { Allow: methods.join(', ') });
      };
      if (pathname === '/v1/status') {
        allow(['GET']);
        return sendJson(res, 200, this.status());
      }
      if (pathname === '/v1/failpoints') {
        allow(['GET']);
        return sendJson(res, 200, { failpoints: await this.failpoints() });
      }
      if (pathname === '/v1/faults') {
        allow(['GET', 'POST', 'DELETE']);
        if (method === 'GET') return sendJson(res, 200, { faults: this.activeFaults() });
        if (method === 'DELETE') return sendJson(res, 200, { healed: await this.healAll() });
        const parsed = parseFaultRequest(await readFaultRequestBody(req), this.maxTtlMs);
        if (!parsed.ok) throw new AgentHttpError(400, parsed.error);
        return sendJson(res, 201, await this.inject(parsed.request));
      }
      if (pathname === '/v1/recovery') {
        allow(['GET', 'PUT', 'DELETE']);
        if (method === 'GET') return sendJson(res, 200, this.recovery.state());
        if (method === 'DELETE') return sendJson(res, 200, { removed: await this.recovery.finish() });
        if (this.closing) throw new AgentHttpError(503, 'the agent is shutting down');
        const epoch = parseRecoveryRequest(await readFaultRequestBody(req));
        return sendJson(res, 200, await this.recovery.recover(epoch));
      }
      const one = /^\/v1\/faults\/([^/]+)$/.exec(pathname);
      if (one) {
        allow(['GET', 'DELETE']);
        const id = decodeURIComponent(one[1]!);
        if (method === 'DELETE') return sendJson(res, 200, await this.heal(id));
        const found = this.leases.get(id);
        if (!found) throw new AgentHttpError(404, `no fault with id ${id} on this agent`);
        return sendJson(res, 200, found);
      }
      throw new AgentHttpError(404, `no such path: ${pathname} (paths: /v1/status, /v1/failpoints, /v1/faults, /v1/faults/<id>, /v1/recovery)`);
    } catch (error) {
      if (!req.readableEnded) res.setHeader('Connection', 'close');
      if (error instanceof AgentHttpError) {
        for (const [name, value] of Object.entries(error.headers)) res.setHeader(name, value);
        sendJson(res, error.status, { error: error.message });
        return;
      }
      logger.error(`agent ${this.member}: ${req.method ?? '?'} ${req.url ?? '?'} failed`, { error: errorMessage(error) });
      sendJson(res, 500, { error: errorMessage(error) });
    }
  }
}
