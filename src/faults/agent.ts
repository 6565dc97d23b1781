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
 *
 * Faults are leases: every one but `kill` carries a TTL and the agent heals it by itself when the TTL
 * is up, so a runner that crashes or loses the network never leaves a fault behind. On start the agent
 * heals whatever a previous instance may have left (SIGCONT to etcd, the ballast file, a crash's hold
 * file, active failpoints); close() heals everything it holds.
 *
 * The etcd process is found by its data dir in /proc (its `--data-dir` flag or ETCD_DATA_DIR), which
 * works for a local process and for a container in a pod that shares its process namespace. The agent
 * never restarts etcd: whoever supervises it does (the local cluster, the kubelet). A `crash` fault
 * writes a hold file (`<data-dir>.hold`, src/faults/hold.ts) before its SIGKILL and removes it when it
 * heals; the supervisor must not restart etcd while the hold is in force (LocalEtcdMember honours it),
 * and ignores it once expired, so the hold is a lease too even if no agent is left to remove it.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { accessSync, constants, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { open, statfs } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import type { AgentFault, AgentFaultRequest, AgentStatus, LinkRule } from '../domain/faults.ts';
import { defaultMaxTtlMs } from '../domain/faults.ts';

export { defaultMaxTtlMs };
import { logger } from '../log.ts';
import { isLoopback } from '../loopback.ts';
import { retryWhile } from '../poll.ts';
import { FailpointError, GofailClient, type FailpointState } from './gofail.ts';
import { holdFile, removeHold, writeHold } from './hold.ts';
import { PeerProxy, type PeerProxyAddress } from './peer-proxy.ts';
import { JsonHttpError, readJsonBody, sendJson } from '../http-json.ts';

export const agentFaultTypes = ['kill', 'crash', 'pause', 'failpoint', 'network', 'diskPressure'] as const satisfies readonly AgentFaultRequest['type'][];
/** Request bodies above this are refused with 413. */
export const maxRequestBytes = 64 * 1024;

// ---- request validation (pure) ----

export type ParsedFaultRequest = { ok: true; request: AgentFaultRequest } | { ok: false; error: string };

class FieldError extends Error {}

const fieldsByType: Record<AgentFaultRequest['type'], readonly string[]> = {
  kill: ['type'],
  crash: ['type', 'ttlMs'],
  pause: ['type', 'ttlMs'],
  failpoint: ['type', 'name', 'term', 'ttlMs'],
  network: ['type', 'rules', 'peers', 'ttlMs'],
  diskPressure: ['type', 'bytes', 'ttlMs'],
};

const failpointNamePattern = /^[A-Za-z][A-Za-z0-9_]*$/;
const linkActions = ['blackhole', 'delay', 'drop'] as const;
const maxRules = 256;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isFaultType(value: string): value is AgentFaultRequest['type'] {
  return (agentFaultTypes as readonly string[]).includes(value);
}

function show(value: unknown): string {
  return value === undefined ? 'nothing' : JSON.stringify(value);
}

function numberField(body: Record<string, unknown>, field: string, label: string, range: { min: number; minExclusive?: boolean; max?: number; integer?: boolean }): number | undefined {
  const value = body[field];
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new FieldError(`${label}: must be a number, got ${show(value)}`);
  if (range.integer && !Number.isSafeInteger(value)) throw new FieldError(`${label}: must be a whole number, got ${value}`);
  if (range.minExclusive ? value <= range.min : value < range.min) {
    throw new FieldError(`${label}: must be ${range.minExclusive ? 'greater than' : 'at least'} ${range.min}, got ${value}`);
  }
  if (range.max !== undefined && value > range.max) throw new FieldError(`${label}: must be at most ${range.max}, got ${value}`);
  return value;
}

function stringField(body: Record<string, unknown>, field: string, label: string): string | undefined {
  const value = body[field];
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value.trim() === '') throw new FieldError(`${label}: must be a non-empty string, got ${show(value)}`);
  return value;
}

function ttlField(body: Record<string, unknown>, maxTtlMs: number): number {
  const value = body['ttlMs'];
  if (value === undefined) throw new FieldError(`ttlMs: required (milliseconds until the agent heals the fault itself, at most ${maxTtlMs})`);
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new FieldError(`ttlMs: must be a number of milliseconds, got ${show(value)}`);
  if (value <= 0) throw new FieldError(`ttlMs: must be greater than 0, got ${value}`);
  if (value > maxTtlMs) throw new FieldError(`ttlMs: ${value} is above this agent's maximum of ${maxTtlMs} ms (--max-ttl)`);
  return value;
}

function parseLinkRule(raw: unknown, index: number): LinkRule {
  const at = `rules[${index}]`;
  if (!isRecord(raw)) throw new FieldError(`${at}: must be an object with from, to and action`);
  const allowed = ['from', 'to', 'action', 'delayMs', 'jitterMs', 'dropPercent'];
  for (const key of Object.keys(raw)) {
    if (!allowed.includes(key)) throw new FieldError(`${at}.${key}: unknown field (fields: ${allowed.join(', ')})`);
  }
  const from = stringField(raw, 'from', `${at}.from`);
  const to = stringField(raw, 'to', `${at}.to`);
  if (from === undefined) throw new FieldError(`${at}.from: required (the sending member's name)`);
  if (to === undefined) throw new FieldError(`${at}.to: required (the receiving member's name)`);
  if (from === to) throw new FieldError(`${at}: from and to are the same member (${from})`);
  const action = raw['action'];
  if (typeof action !== 'string' || !(linkActions as readonly string[]).includes(action)) {
    throw new FieldError(`${at}.action: must be one of ${linkActions.join(', ')}, got ${show(action)}`);
  }
  const rule: LinkRule = { from, to, action: action as LinkRule['action'] };
  const delayMs = numberField(raw, 'delayMs', `${at}.delayMs`, { min: 0, max: 60_000 });
  const jitterMs = numberField(raw, 'jitterMs', `${at}.jitterMs`, { min: 0, max: 60_000 });
  const dropPercent = numberField(raw, 'dropPercent', `${at}.dropPercent`, { min: 0, max: 100 });
  if (action === 'delay') {
    if (delayMs === undefined) throw new FieldError(`${at}.delayMs: required for a delay rule`);
    rule.delayMs = delayMs;
    if (jitterMs !== undefined) rule.jitterMs = jitterMs;
  } else if (delayMs !== undefined || jitterMs !== undefined) {
    throw new FieldError(`${at}.${delayMs !== undefined ? 'delayMs' : 'jitterMs'}: only for a delay rule`);
  }
  if (action === 'drop') {
    if (dropPercent === undefined) throw new FieldError(`${at}.dropPercent: required for a drop rule (0..100)`);
    rule.dropPercent = dropPercent;
  } else if (dropPercent !== undefined) {
    throw new FieldError(`${at}.dropPercent: only for a drop rule`);
  }
  return rule;
}

function parsePeers(raw: unknown): Record<string, string> {
  if (!isRecord(raw)) throw new FieldError(`peers: must be an object of member id (hex) to member name, got ${show(raw)}`);
  const peers: Record<string, string> = {};
  for (const [id, name] of Object.entries(raw)) {
    if (!/^(0x)?[0-9a-fA-F]{1,16}$/.test(id)) throw new FieldError(`peers: ${JSON.stringify(id)} is not a member id in hex`);
    if (typeof name !== 'string' || name.trim() === '') throw new FieldError(`peers.${id}: must be a member name, got ${show(name)}`);
    peers[id] = name;
  }
  return peers;
}

function parseOrThrow(raw: unknown, maxTtlMs: number): AgentFaultRequest {
  if (!isRecord(raw)) throw new FieldError(`the request body must be a JSON object with a "type", got ${show(raw)}`);
  const type = raw['type'];
  if (type === undefined) throw new FieldError(`type: required, one of ${agentFaultTypes.join(', ')}`);
  if (typeof type !== 'string' || !isFaultType(type)) {
    throw new FieldError(`type: unknown fault type ${show(type)} (types: ${agentFaultTypes.join(', ')})`);
  }
  const allowed = fieldsByType[type];
  for (const key of Object.keys(raw)) {
    if (!allowed.includes(key)) throw new FieldError(`${key}: unknown field for a ${type} fault (fields: ${allowed.join(', ')})`);
  }
  switch (type) {
    case 'kill':
      return { type };
    case 'crash':
    case 'pause':
      return { type, ttlMs: ttlField(raw, maxTtlMs) };
    case 'failpoint': {
      const name = stringField(raw, 'name', 'name');
      if (name === undefined) throw new FieldError('name: required (a gofail failpoint name, e.g. raftBeforeSave)');
      if (!failpointNamePattern.test(name)) throw new FieldError(`name: ${JSON.stringify(name)} is not a failpoint name`);
      const term = stringField(raw, 'term', 'term');
      if (term === undefined) throw new FieldError('term: required (a gofail term, e.g. panic or sleep("100ms"))');
      // eslint-disable-next-line no-control-regex
      if (term.length > 256 || /[\u0000-\u001f]/.test(term)) throw new FieldError('term: must be one line of at most 256 characters');
      return { type, name, term, ttlMs: ttlField(raw, maxTtlMs) };
    }
    case 'network': {
      const rules = raw['rules'];
      if (!Array.isArray(rules) || rules.length === 0) throw new FieldError(`rules: required, a non-empty array of link rules, got ${show(rules)}`);
      if (rules.length > maxRules) throw new FieldError(`rules: at most ${maxRules} rules, got ${rules.length}`);
      const request: AgentFaultRequest = { type, rules: rules.map((r: unknown, i) => parseLinkRule(r, i)), ttlMs: ttlField(raw, maxTtlMs) };
      if (raw['peers'] !== undefined) request.peers = parsePeers(raw['peers']);
      return request;
    }
    case 'diskPressure': {
      const bytes = numberField(raw, 'bytes', 'bytes', { min: 0, minExclusive: true, integer: true });
      if (bytes === undefined) throw new FieldError('bytes: required (the ballast file size in bytes)');
      return { type, bytes, ttlMs: ttlField(raw, maxTtlMs) };
    }
  }
}

/** Validates a decoded request body: the request, or a message for a 400 that names the bad field. */
export function parseFaultRequest(raw: unknown, maxTtlMs: number = defaultMaxTtlMs): ParsedFaultRequest {
  try {
    return { ok: true, request: parseOrThrow(raw, maxTtlMs) };
  } catch (error) {
    if (error instanceof FieldError) return { ok: false, error: error.message };
    throw error;
  }
}

// ---- finding the etcd process ----

function isEtcdExecutable(argv0: string | undefined): boolean {
  if (argv0 === undefined) return false;
  const base = path.basename(argv0);
  return base === 'etcd' || /^etcd[-_]v?\d/.test(base);
}

/** The data dir a command line gives etcd (`--data-dir=X`, `--data-dir X`, one dash too), if any. */
export function dataDirArgument(args: readonly string[]): string | undefined {
  for (let i = 1; i < args.length; i++) {
    const arg = args[i]!;
    const match = /^--?data-dir(?:=(.*))?$/.exec(arg);
    if (!match) continue;
    return match[1] ?? args[i + 1];
  }
  return undefined;
}

function readProcFile(procRoot: string, pid: number, file: string): string | undefined {
  try {
    return readFileSync(path.join(procRoot, String(pid), file), 'latin1');
  } catch {
    return undefined;
  }
}

/** The data dir of the etcd process `pid` (absolute), or undefined when it is not an etcd process. */
export function etcdDataDirOf(pid: number, procRoot = '/proc'): string | undefined {
  const cmdline = readProcFile(procRoot, pid, 'cmdline');
  if (!cmdline) return undefined; // gone, a kernel thread or a zombie
  const args = cmdline.split('\0');
  if (args.at(-1) === '') args.pop();
  if (!isEtcdExecutable(args[0])) return undefined;
  let dir = dataDirArgument(args);
  if (dir === undefined) {
    const environ = readProcFile(procRoot, pid, 'environ') ?? '';
    dir = environ.split('\0').find((e) => e.startsWith('ETCD_DATA_DIR='))?.slice('ETCD_DATA_DIR='.length);
  }
  if (dir === undefined || dir === '') return undefined;
  if (path.isAbsolute(dir)) return path.resolve(dir);
  try {
    return path.resolve(readlinkSync(path.join(procRoot, String(pid), 'cwd')), dir);
  } catch {
    return undefined;
  }
}

/** The pid of the etcd process that serves `dataDir`, found by scanning /proc; undefined if none runs. */
export function findEtcdProcess(dataDir: string, procRoot = '/proc'): number | undefined {
  const wanted = path.resolve(dataDir);
  let entries: string[];
  try {
    entries = readdirSync(procRoot);
  } catch {
    return undefined;
  }
  const pids = entries.filter((e) => /^\d+$/.test(e)).map(Number).sort((a, b) => a - b);
  return pids.find((pid) => pid !== process.pid && etcdDataDirOf(pid, procRoot) === wanted);
}

// ---- the ballast file ----

/**
 * Where a diskPressure fault puts its ballast: beside the data dir (`<data-dir>/../.etcd-robustness-
 * ballast-<member>`), so etcd never sees it, when that folder is on the same filesystem as the data
 * dir; otherwise (the data dir is a mount point, as in a pod with a volume) inside the data dir, where
 * etcd ignores unknown files.
 */
export function ballastFile(dataDir: string, member: string): string {
  const name = `.etcd-robustness-ballast-${member}`;
  const dir = path.resolve(dataDir);
  const parent = path.dirname(dir);
  try {
    const parentStat = statSync(parent);
    let sameDevice = true;
    try {
      sameDevice = statSync(dir).dev === parentStat.dev;
    } catch {
      // No data dir yet: it will be created in the parent.
    }
    accessSync(parent, constants.W_OK);
    if (sameDevice) return path.join(parent, name);
  } catch {
    // Parent not writable: fall back to the data dir.
  }
  return path.join(dir, name);
}

/** Both places a ballast may be (removed on start-up whatever the layout was then). */
function ballastCandidates(dataDir: string, member: string): string[] {
  const name = `.etcd-robustness-ballast-${member}`;
  const dir = path.resolve(dataDir);
  return [path.join(path.dirname(dir), name), path.join(dir, name)];
}


function onPath(program: string): string | undefined {
  const dirs = [...(process.env['PATH'] ?? '').split(path.delimiter).filter((d) => d !== ''), '/usr/bin', '/bin'];
  for (const dir of dirs) {
    const candidate = path.join(dir, program);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not here.
    }
  }
  return undefined;
}

/**
 * Creates `file` with `bytes` of allocated blocks: fallocate(1) when it is installed and the
 * filesystem supports it (instant), else zeros written in 1 MiB chunks and fsynced.
 */
export async function writeBallast(file: string, bytes: number): Promise<'fallocate' | 'zeros'> {
  const fallocate = onPath('fallocate');
  if (fallocate !== undefined) {
    try {
      await promisify(execFile)(fallocate, ['-l', String(bytes), file]);
      return 'fallocate';
    } catch (error) {
      await removeHold(file).catch(() => false);
      const { stderr } = error as { stderr?: unknown };
      if (typeof stderr === 'string' && /No space left/i.test(stderr)) throw new Error(`fallocate ${file}: no space left on the device`, { cause: error });
      // Unsupported by this filesystem (or fallocate failed otherwise): write the zeros ourselves.
    }
  }
  const handle = await open(file, 'w', 0o600);
  try {
    const chunk = Buffer.alloc(Math.min(bytes, 1 << 20));
    let left = bytes;
    while (left > 0) {
      const { bytesWritten } = await handle.write(chunk, 0, Math.min(left, chunk.length));
      left -= bytesWritten;
    }
    await handle.sync();
  } catch (error) {
    await handle.close();
    await removeHold(file).catch(() => false);
    throw error;
  }
  await handle.close();
  return 'zeros';
}

// ---- the agent ----

/** An error the API answers with this status and `{ "error": message }`. */
export class AgentHttpError extends JsonHttpError {
  override name = 'AgentHttpError';
}

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
}

interface ActiveFault {
  fault: AgentFault;
  timer: NodeJS.Timeout;
  heal: () => Promise<void>;
}

const recentHealedLimit = 500;

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Signals a process; ESRCH (already gone) is not an error. */
function signalProcess(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(pid, signal);
    return true;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ESRCH') return false;
    if (code === 'EPERM') throw new AgentHttpError(409, `not permitted to send ${signal} to etcd process ${pid} (the agent must run as etcd's user, sharing its process namespace)`);
    throw error;
  }
}

/** gofail answers 400 when asked to deactivate a failpoint that is not active: nothing to heal then. */
function alreadyInactive(error: unknown): boolean {
  return error instanceof FailpointError && /failpoint is disabled|HTTP 404/.test(error.message);
}

export class FaultAgent {
  readonly member: string;
  readonly dataDir: string;
  readonly maxTtlMs: number;
  private readonly tokenDigest: Buffer;
  private readonly gofail: GofailClient | undefined;
  private readonly procRoot: string;
  private readonly instance = randomBytes(4).toString('hex');
  private sequence = 0;
  private readonly active = new Map<string, ActiveFault>();
  private readonly healed = new Map<string, AgentFault>();
  private readonly injecting = new Set<string>();
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
    this.gofail = options.gofailUrl === undefined ? undefined : new GofailClient(options.gofailUrl, { timeoutMs: 2000 });
    this.procRoot = options.procRoot ?? '/proc';
  }

  /** Starts the peer proxy (if asked), heals what a previous agent may have left, then serves the API. */
  static async start(options: FaultAgentOptions): Promise<FaultAgent> {
    const agent = new FaultAgent(options);
    try {
      if (options.peerProxy) {
        agent.proxy = await PeerProxy.start({ member: options.member, listen: options.peerProxy.listen, target: options.peerProxy.target });
      }
      await agent.healLeftovers();
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
    return findEtcdProcess(this.dataDir, this.procRoot);
  }

  status(): AgentStatus {
    return { member: this.member, pid: this.etcdPid(), faults: this.activeFaults() };
  }

  activeFaults(): AgentFault[] {
    return [...this.active.values()].map((a) => ({ ...a.fault }));
  }

  async failpoints(): Promise<FailpointState[]> {
    const gofail = this.requireGofail();
    try {
      return await gofail.list();
    } catch (error) {
      throw this.gofailError(error);
    }
  }

  /** Injects a validated fault; the AgentFault says when the agent heals it by itself. */
  async inject(request: AgentFaultRequest): Promise<AgentFault> {
    if (this.closing) throw new AgentHttpError(503, 'the agent is shutting down');
    const id = `${this.instance}-${++this.sequence}`;
    const ttlMs = request.type === 'kill' ? 0 : request.ttlMs;
    const expiresAtMs = Date.now() + ttlMs;
    const fault: AgentFault = { id, type: request.type, request, expiresAt: new Date(expiresAtMs).toISOString() };
    // One crash, one pause, one ballast and one fault per failpoint at a time: held until the fault is registered.
    const key = request.type === 'failpoint' ? `failpoint ${request.name}` : request.type === 'crash' || request.type === 'pause' || request.type === 'diskPressure' ? request.type : undefined;
    const release = key === undefined ? () => undefined : this.reserve(key);
    let heal: (() => Promise<void>) | undefined;
    try {
      heal = await this.apply(request, expiresAtMs);
    } catch (error) {
      release();
      throw error;
    }
    if (heal === undefined) {
      // Instantaneous (kill): nothing stays to heal.
      const done: AgentFault = { ...fault, healedAt: fault.expiresAt };
      this.remember(done);
      logger.info(`agent ${this.member}: injected ${request.type}`, { id });
      return done;
    }
    const timer = setTimeout(() => {
      logger.info(`agent ${this.member}: ${request.type} fault ${id} reached its TTL`);
      void this.heal(id).catch((error: unknown) => logger.warn(`agent ${this.member}: healing ${id} failed`, { error: errorMessage(error) }));
    }, ttlMs);
    this.active.set(id, { fault, timer, heal });
    release();
    logger.info(`agent ${this.member}: injected ${request.type}`, { id, expiresAt: fault.expiresAt });
    return { ...fault };
  }

  /** Heals one fault now. A fault this agent already healed is returned again; an unknown id is a 404. */
  async heal(id: string): Promise<AgentFault> {
    const entry = this.active.get(id);
    if (!entry) {
      const done = this.healed.get(id);
      if (done) return { ...done };
      throw new AgentHttpError(404, `no fault with id ${id} on this agent (an agent heals everything when it restarts)`);
    }
    this.active.delete(id);
    clearTimeout(entry.timer);
    const fault: AgentFault = { ...entry.fault, healedAt: new Date().toISOString() };
    try {
      await entry.heal();
    } catch (error) {
      fault.healError = errorMessage(error);
      logger.warn(`agent ${this.member}: healing ${fault.type} fault ${id} failed`, { error: fault.healError });
    }
    this.remember(fault);
    logger.info(`agent ${this.member}: healed ${fault.type}`, { id });
    return { ...fault };
  }

  async healAll(): Promise<AgentFault[]> {
    return Promise.all([...this.active.keys()].map((id) => this.heal(id)));
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

  private remember(fault: AgentFault): void {
    this.healed.set(fault.id, fault);
    if (this.healed.size > recentHealedLimit) this.healed.delete(this.healed.keys().next().value!);
  }

  private requirePid(what: string): number {
    const pid = this.etcdPid();
    if (pid === undefined) throw new AgentHttpError(409, `cannot ${what}: no etcd process with --data-dir=${this.dataDir} is running`);
    return pid;
  }

  private requireGofail(): GofailClient {
    if (!this.gofail) {
      throw new AgentHttpError(409, `member ${this.member} has no gofail API: start the agent with --gofail-url, and etcd (a gofail-enabled build) with GOFAIL_HTTP`);
    }
    return this.gofail;
  }

  private gofailError(error: unknown): AgentHttpError {
    if (!(error instanceof FailpointError)) return new AgentHttpError(500, errorMessage(error));
    const status = /answered HTTP (\d+)/.exec(error.message)?.[1];
    if (status !== undefined && status.startsWith('4')) return new AgentHttpError(400, error.message);
    if (status !== undefined) return new AgentHttpError(502, error.message);
    return new AgentHttpError(409, `${error.message} (is etcd running, gofail-enabled and started with GOFAIL_HTTP?)`);
  }

  /** Applies a fault that lasts until `expiresAtMs` (ms since the epoch); returns how to heal it (undefined for instantaneous faults). */
  private async apply(request: AgentFaultRequest, expiresAtMs: number): Promise<(() => Promise<void>) | undefined> {
    switch (request.type) {
      case 'kill': {
        const pid = this.requirePid('kill etcd');
        signalProcess(pid, 'SIGKILL');
        return undefined;
      }
      case 'crash': {
        const other = this.activeOfType('crash');
        if (other) throw new AgentHttpError(409, `a crash fault is already active (${other.id}, until ${other.expiresAt})`);
        const pid = this.requirePid('crash etcd');
        const file = holdFile(this.dataDir);
        // The hold first: the supervisor must find it when it sees etcd exit.
        try {
          await writeHold(file, expiresAtMs);
        } catch (error) {
          throw new AgentHttpError(500, `could not write the hold file ${file}: ${errorMessage(error)}`);
        }
        try {
          signalProcess(pid, 'SIGKILL');
        } catch (error) {
          await removeHold(file).catch(() => false);
          throw error;
        }
        logger.info(`agent ${this.member}: etcd ${pid} killed and held down by ${file} until ${new Date(expiresAtMs).toISOString()}`);
        return async () => {
          await removeHold(file);
        };
      }
      case 'pause': {
        const other = this.activeOfType('pause');
        if (other) throw new AgentHttpError(409, `a pause fault is already active (${other.id}, until ${other.expiresAt})`);
        const pid = this.requirePid('pause etcd');
        signalProcess(pid, 'SIGSTOP');
        return () => Promise.resolve(this.resume(pid));
      }
      case 'failpoint': {
        const gofail = this.requireGofail();
        const other = [...this.active.values()].find((a) => a.fault.request.type === 'failpoint' && a.fault.request.name === request.name);
        if (other) throw new AgentHttpError(409, `failpoint ${request.name} is already set by fault ${other.fault.id}`);
        try {
          await gofail.activate(request.name, request.term);
        } catch (error) {
          throw this.gofailError(error);
        }
        return async () => {
          try {
            await gofail.deactivate(request.name);
          } catch (error) {
            // Not active any more: the process that had it is gone (a panic) or someone cleared it.
            if (alreadyInactive(error)) return;
            if (this.etcdPid() === undefined) return; // no etcd: the failpoint went with its process
            throw error;
          }
        };
      }
      case 'network': {
        const proxy = this.proxy;
        if (!proxy) throw new AgentHttpError(409, `member ${this.member}'s agent runs no peer proxy (start it with --peer-listen and --peer-target)`);
        if (request.peers) proxy.setPeers(new Map(Object.entries(request.peers)));
        // The active faults' rules and this one's (it is registered once this returns).
        this.applyNetworkRules(request.rules);
        return () => Promise.resolve(this.applyNetworkRules());
      }
      case 'diskPressure': {
        const other = this.activeOfType('diskPressure');
        if (other) throw new AgentHttpError(409, `a diskPressure fault is already active (${other.id}, until ${other.expiresAt})`);
        const file = ballastFile(this.dataDir, this.member);
        try {
          const fs = await statfs(path.dirname(file));
          const free = fs.bavail * fs.bsize;
          if (request.bytes > free) throw new AgentHttpError(507, `bytes: ${request.bytes} is more than the ${free} bytes free on the filesystem of ${path.dirname(file)}`);
          const how = await writeBallast(file, request.bytes);
          logger.info(`agent ${this.member}: ballast ${file} of ${request.bytes} bytes (${how})`);
        } catch (error) {
          if (error instanceof AgentHttpError) throw error;
          throw new AgentHttpError(507, `could not write the ballast ${file}: ${errorMessage(error)}`);
        }
        return async () => {
          await removeHold(file);
        };
      }
    }
  }

  /** Marks an injection in progress (409 for a second one at the same time); call the result when done. */
  private reserve(key: string): () => void {
    if (this.injecting.has(key)) throw new AgentHttpError(409, `another ${key} fault is being injected right now`);
    this.injecting.add(key);
    return () => this.injecting.delete(key);
  }

  private activeOfType(type: AgentFaultRequest['type']): AgentFault | undefined {
    return [...this.active.values()].find((a) => a.fault.type === type)?.fault;
  }

  /** The proxy's rules: every active network fault's rules together (and `adding`). */
  private applyNetworkRules(adding: readonly LinkRule[] = []): void {
    if (!this.proxy) return;
    const rules = [...this.active.values()].flatMap((a) => (a.fault.request.type === 'network' ? a.fault.request.rules : []));
    rules.push(...adding);
    if (rules.length === 0) this.proxy.clearRules();
    else this.proxy.setRules(rules);
  }

  /** SIGCONT to the paused process, if it is still this member's etcd (it may have been killed and replaced). */
  private resume(pid: number): void {
    if (etcdDataDirOf(pid, this.procRoot) !== this.dataDir) return;
    signalProcess(pid, 'SIGCONT');
  }

  /** Heals what a previous agent instance may have left: a stopped etcd, the ballast, a crash's hold file, active failpoints. */
  private async healLeftovers(): Promise<void> {
    const hold = holdFile(this.dataDir);
    if (await removeHold(hold).catch(() => false)) logger.info(`agent ${this.member}: removed a leftover hold file ${hold} (etcd may be restarted)`);
    const pid = this.etcdPid();
    if (pid !== undefined) {
      try {
        signalProcess(pid, 'SIGCONT');
      } catch (error) {
        logger.warn(`agent ${this.member}: could not SIGCONT etcd ${pid} on start`, { error: errorMessage(error) });
      }
    }
    for (const file of ballastCandidates(this.dataDir, this.member)) {
      if (await removeHold(file).catch(() => false)) logger.info(`agent ${this.member}: removed a leftover ballast ${file}`);
    }
    if (!this.gofail) return;
    // A failpoint set over HTTP lives as long as its process: if no etcd runs, there is none to clear.
    // A just-continued or just-started etcd may need a moment before gofail answers.
    const gofail = this.gofail;
    const list = await retryWhile(() => gofail.list(), () => true, { timeoutMs: pid === undefined ? 0 : 3000, intervalMs: 200 }).catch((error: unknown) => {
      logger.info(`agent ${this.member}: no failpoint check on start (${errorMessage(error)})`);
      return undefined;
    });
    if (list === undefined) return;
    for (const failpoint of list.filter((f) => f.term !== '')) {
      try {
        await this.gofail.deactivate(failpoint.name);
        logger.info(`agent ${this.member}: deactivated leftover failpoint ${failpoint.name}=${failpoint.term}`);
      } catch (error) {
        if (!alreadyInactive(error)) logger.warn(`agent ${this.member}: could not deactivate ${failpoint.name}`, { error: errorMessage(error) });
      }
    }
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
        const parsed = parseFaultRequest(await readJson(req), this.maxTtlMs);
        if (!parsed.ok) throw new AgentHttpError(400, parsed.error);
        return sendJson(res, 201, await this.inject(parsed.request));
      }
      const one = /^\/v1\/faults\/([^/]+)$/.exec(pathname);
      if (one) {
        allow(['GET', 'DELETE']);
        const id = decodeURIComponent(one[1]!);
        if (method === 'DELETE') return sendJson(res, 200, await this.heal(id));
        const found = this.active.get(id)?.fault ?? this.healed.get(id);
        if (!found) throw new AgentHttpError(404, `no fault with id ${id} on this agent`);
        return sendJson(res, 200, found);
      }
      throw new AgentHttpError(404, `no such path: ${pathname} (paths: /v1/status, /v1/failpoints, /v1/faults, /v1/faults/<id>)`);
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

async function readJson(req: http.IncomingMessage): Promise<unknown> {
  return readJsonBody(req, { maxBytes: maxRequestBytes, expected: 'a JSON fault request', error: (status, message) => new AgentHttpError(status, message) });
}
