/**
 * What the fault agent does to its member, fault type by fault type: applying a fault and returning how
 * to heal it (kill, crash with its hold file, pause, failpoint, network rules on the peer proxy,
 * diskPressure's ballast), and healing what a previous agent instance may have left. The agent never
 * restarts etcd: whoever supervises it does. Which faults are active is the leases' (agent-leases.ts).
 */
import { statfs } from 'node:fs/promises';
import path from 'node:path';
import type { AgentFaultRequest, LinkRule } from '../domain/faults.ts';
import { logger } from '../log.ts';
import { retryWhile } from '../poll.ts';
import { ballastCandidates, ballastFile, writeBallast } from './agent-ballast.ts';
import type { FaultLeases, HealFault } from './agent-leases.ts';
import { etcdDataDirOf, findEtcdProcess, signalProcess } from './agent-process.ts';
import { AgentHttpError, errorMessage } from './agent-request.ts';
import { FailpointError, type FailpointState, type GofailClient } from './gofail.ts';
import { holdFile, removeHold, writeHold } from './hold.ts';
import type { PeerProxy } from './peer-proxy.ts';

export interface FaultActionsOptions {
  member: string;
  /** Absolute. */
  dataDir: string;
  procRoot: string;
  gofail: GofailClient | undefined;
  leases: FaultLeases;
  /** The agent's peer proxy, if it runs one. */
  proxy: () => PeerProxy | undefined;
}

/** gofail answers 400 when asked to deactivate a failpoint that is not active: nothing to heal then. */
function alreadyInactive(error: unknown): boolean {
  return error instanceof FailpointError && /failpoint is disabled|HTTP 404/.test(error.message);
}

function gofailError(error: unknown): AgentHttpError {
  if (!(error instanceof FailpointError)) return new AgentHttpError(500, errorMessage(error));
  const status = /answered HTTP (\d+)/.exec(error.message)?.[1];
  if (status !== undefined && status.startsWith('4')) return new AgentHttpError(400, error.message);
  if (status !== undefined) return new AgentHttpError(502, error.message);
  return new AgentHttpError(409, `${error.message} (is etcd running, gofail-enabled and started with GOFAIL_HTTP?)`);
}

export class FaultActions {
  private readonly member: string;
  private readonly dataDir: string;
  private readonly procRoot: string;
  private readonly gofail: GofailClient | undefined;
  private readonly leases: FaultLeases;
  private readonly proxy: () => PeerProxy | undefined;

  constructor(options: FaultActionsOptions) {
    this.member = options.member;
    this.dataDir = options.dataDir;
    this.procRoot = options.procRoot;
    this.gofail = options.gofail;
    this.leases = options.leases;
    this.proxy = options.proxy;
  }

  /** The etcd process of this member, if one runs. */
  etcdPid(): number | undefined {
    return findEtcdProcess(this.dataDir, this.procRoot);
  }

  async failpoints(): Promise<FailpointState[]> {
    const gofail = this.requireGofail();
    try {
      return await gofail.list();
    } catch (error) {
      throw gofailError(error);
    }
  }

  /** Applies a fault that lasts until `expiresAtMs` (ms since the epoch); returns how to heal it (undefined for instantaneous faults). */
  async apply(request: AgentFaultRequest, expiresAtMs: number): Promise<HealFault | undefined> {
    switch (request.type) {
      case 'kill': {
        const pid = this.requirePid('kill etcd');
        signalProcess(pid, 'SIGKILL');
        return undefined;
      }
      case 'crash': {
        this.refuseSecond('crash');
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
        this.refuseSecond('pause');
        const pid = this.requirePid('pause etcd');
        signalProcess(pid, 'SIGSTOP');
        return () => Promise.resolve(this.resume(pid));
      }
      case 'failpoint': {
        const gofail = this.requireGofail();
        const other = this.leases.findActive((f) => f.request.type === 'failpoint' && f.request.name === request.name);
        if (other) throw new AgentHttpError(409, `failpoint ${request.name} is already set by fault ${other.id}`);
        try {
          await gofail.activate(request.name, request.term);
        } catch (error) {
          throw gofailError(error);
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
        const proxy = this.proxy();
        if (!proxy) throw new AgentHttpError(409, `member ${this.member}'s agent runs no peer proxy (start it with --peer-listen and --peer-target)`);
        if (request.peers) proxy.setPeers(new Map(Object.entries(request.peers)));
        // The active faults' rules and this one's (it is registered once this returns).
        this.applyNetworkRules(request.rules);
        return () => Promise.resolve(this.applyNetworkRules());
      }
      case 'diskPressure': {
        this.refuseSecond('diskPressure');
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

  /** Heals what a previous agent instance may have left: a stopped etcd, the ballast, a crash's hold file, active failpoints. */
  async healLeftovers(): Promise<void> {
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

  /** 409 when a fault of this type is already active (one crash, pause or ballast at a time). */
  private refuseSecond(type: 'crash' | 'pause' | 'diskPressure'): void {
    const other = this.leases.findActive((f) => f.type === type);
    if (other) throw new AgentHttpError(409, `a ${type} fault is already active (${other.id}, until ${other.expiresAt})`);
  }

  /** The proxy's rules: every active network fault's rules together (and `adding`). */
  private applyNetworkRules(adding: readonly LinkRule[] = []): void {
    const proxy = this.proxy();
    if (!proxy) return;
    const rules = this.leases.activeRequests().flatMap((r) => (r.type === 'network' ? r.rules : []));
    rules.push(...adding);
    if (rules.length === 0) proxy.clearRules();
    else proxy.setRules(rules);
  }

  /** SIGCONT to the paused process, if it is still this member's etcd (it may have been killed and replaced). */
  private resume(pid: number): void {
    if (etcdDataDirOf(pid, this.procRoot) !== this.dataDir) return;
    signalProcess(pid, 'SIGCONT');
  }
}
