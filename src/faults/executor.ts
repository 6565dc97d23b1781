/**
 * Carries out a fault plan against a cluster: at each planned time it resolves the targets, injects the
 * faults of the round (through the members' agents, the member runtime or the etcd API), checks that
 * each took effect, heals them when their duration is up, and waits for the cluster to recover before
 * the next round. Every step is reported as a FaultEvent for the history's timeline.
 *
 * Healing never depends on this process alone: every agent fault carries a TTL a little longer than its
 * planned duration, so the agents heal it themselves if the runner dies or cannot reach them.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Etcd3 } from 'etcd3';
import type { AgentFaultRequest, EtcdClientTls, FaultEvent, FaultName, FaultPhase, LinkRule, MemberRuntime, PlannedFault, RuntimeMember } from '../domain/index.ts';
import { logger } from '../log.ts';
import { etcdHttp } from '../probes/etcd-transport.ts';
import { isHealthy } from '../probes/health.ts';
import { recordingEtcdClient } from '../probes/recording-client.ts';
import { AgentClient, AgentRequestError } from './agent-client.ts';
import { faultDefinition } from './catalog.ts';
import { linksBetween, resolveTargets } from './targets.ts';

/** The compact faults' `revision` parameter. */
export type CompactAt = 'trailing' | 'latest';

/**
 * The revision a fault's compaction asks for, given the newest revision the run has seen. trailing stays
 * 10 behind, clear of writes in flight; latest compacts the newest revision itself, so a delete there is
 * compacted away (etcd issue 17780's case).
 */
export function compactionRevision(at: CompactAt, newest: number): number {
  return Math.max(1, at === 'latest' ? newest : newest - 10);
}

/** Requests that must be recorded in the history (they change what clients can read). */
export interface FaultTriggers {
  /** A recorded write, so a failpoint on the write path fires; sent through a member not in `avoid`. */
  write(avoid?: readonly string[]): Promise<void>;
  /** A recorded defragment of one member. */
  defragment(member: string): Promise<void>;
  /** A recorded compaction at the newest revision seen (`latest`) or 10 below it (`trailing`). */
  compact(at: CompactAt): Promise<void>;
}

export interface FaultExecutorOptions {
  runtime: MemberRuntime;
  agentToken: string | undefined;
  triggers: FaultTriggers;
  clock: () => number;
  onEvent: (event: FaultEvent) => void;
  recoveryTimeoutMs: number;
  /** Extra time agents keep a fault past its planned duration before healing it themselves. */
  ttlSlackMs?: number;
  /**
   * The moment a fault is in place, on `clock` (called synchronously as the time is taken, between its
   * `inject` and `verified` events): for faults through agents, when every agent has answered (the
   * signal sent, the rules or the failpoint set); for cluster faults, as their operation starts.
   */
  onApplied?: (applied: { id: number; fault: FaultName; targets: string[]; time: number }) => void;
}

interface ActiveFault {
  id: number;
  planned: PlannedFault;
  targets: string[];
  heal: () => Promise<string>;
  /** performance.now() past which the agents heal it themselves (its TTL from when it was in place). */
  ttlDeadlineMs: number;
}

export class FaultUnavailableError extends Error {
  override name = 'FaultUnavailableError';
}

/** leaderTransfer tries this many times (a second apart) before the fault counts as failed. */
const leaderTransferAttempts = 3;
/** How long a process fault waits for its member to come back (a kill restarts it in 200 ms, a held crash later). */
const memberDownRetryMs = 15_000;
/**
 * The agent's answers while the member's etcd is down or paused: no process to signal, or its gofail
 * endpoint refuses or does not answer in time.
 */
const memberDownAnswer = /no etcd process with .* is running|fetch failed|ECONNREFUSED|aborted due to timeout/;
const idHex = (decimal: string): string => BigInt(decimal).toString(16);

async function hashKv(endpoint: string, revision: number, tls: EtcdClientTls | undefined): Promise<{ hash: string; compactRevision: string }> {
  const post = (route: string): Promise<{ status: number; text: string }> => etcdHttp(`${endpoint}${route}`, { method: 'POST', body: JSON.stringify({ revision }), tls, timeoutMs: 5000 });
  // etcd 3.6 serves HashKV at /v3/maintenance/hashkv; 3.5's gateway routes it at /v3/maintenance/hash.
  let response = await post('/v3/maintenance/hashkv');
  if (response.status === 404) response = await post('/v3/maintenance/hash');
  const body = JSON.parse(response.text) as { hash?: number | string; compact_revision?: string; error?: string; message?: string };
  const ok = response.status >= 200 && response.status < 300;
  if (!ok || body.hash === undefined) throw new Error(`HashKV at ${endpoint}: ${body.message ?? body.error ?? response.status}`);
  return { hash: String(body.hash), compactRevision: body.compact_revision ?? '0' };
}

/** Read through a call so TypeScript does not keep an earlier narrowing of `aborted` across awaits. */
const isAborted = (signal: AbortSignal): boolean => signal.aborted;

export class FaultExecutor {
  private readonly options: FaultExecutorOptions;
  private readonly active = new Map<number, ActiveFault>();
  private readonly clients = new Map<string, Etcd3>();
  private nextId = 1;
  private injected = 0;

  constructor(options: FaultExecutorOptions) {
    this.options = options;
  }

  get activeFaults(): number {
    return this.active.size;
  }

  /**
   * Faults still held past their TTL (planned duration + slack, from when they were in place): the heal
   * should have started long before, so a non-zero count means the executor is stuck. Cluster faults
   * (no agent) are held to the same deadline.
   */
  faultsPastTtl(nowMs = performance.now()): number {
    let count = 0;
    for (const active of this.active.values()) if (nowMs > active.ttlDeadlineMs) count++;
    return count;
  }

  get injections(): number {
    return this.injected;
  }

  private members(): RuntimeMember[] {
    return this.options.runtime.members();
  }

  /** The cluster's client TLS, from the runtime: every request of the executor to etcd uses it. */
  private get tls(): EtcdClientTls | undefined {
    return this.options.runtime.clientTls;
  }

  private member(name: string): RuntimeMember {
    const found = this.members().find((m) => m.name === name);
    if (!found) throw new FaultUnavailableError(`no member named ${name}`);
    return found;
  }

  /** An unrecorded client pinned to one member, for status, member list and maintenance calls. */
  private etcd(name: string): Etcd3 {
    const endpoint = this.member(name).endpoint;
    let client = this.clients.get(endpoint);
    if (!client) {
      client = recordingEtcdClient([endpoint], { tls: this.tls });
      this.clients.set(endpoint, client);
    }
    return client;
  }

  private agent(name: string): AgentClient {
    const { agentUrl, agentCa } = this.member(name);
    if (agentUrl === undefined || this.options.agentToken === undefined) throw new FaultUnavailableError(`member ${name} has no fault agent`);
    return new AgentClient(agentUrl, this.options.agentToken, { ca: agentCa });
  }

  private record(id: number, phase: FaultPhase, fault: FaultName, targets: string[], detail?: string, params?: Record<string, number | string>): void {
    const event: FaultEvent = { kind: 'fault', id, time: this.options.clock(), phase, fault, targets };
    if (params && Object.keys(params).length > 0) event.params = params;
    if (detail !== undefined) event.detail = detail;
    this.options.onEvent(event);
    const log = phase === 'failed' ? logger.warn.bind(logger) : logger.info.bind(logger);
    log(`fault ${fault} ${phase}`, { id, targets, ...(detail === undefined ? {} : { detail }) });
  }

  /** Member ids (decimal) to names, and who leads, as the first of `askable` members that answers sees it. */
  async clusterView(askable: readonly string[] = this.members().map((m) => m.name)): Promise<{ ids: Map<string, string>; leader: string | undefined }> {
    const ids = new Map<string, string>();
    for (const m of askable) {
      try {
        const deadline = { deadline: Date.now() + 1000 };
        const list = await this.etcd(m).cluster.memberList({ linearizable: false }, deadline);
        for (const member of list.members) ids.set(member.ID, member.name);
        const status = await this.etcd(m).maintenance.status(deadline);
        const leader = ids.get(status.leader);
        if (leader !== undefined) return { ids, leader };
      } catch {
        // This member is down or isolated: ask the next one.
      }
    }
    return { ids, leader: undefined };
  }

  private async leaderNow(): Promise<string | undefined> {
    return (await this.clusterView()).leader;
  }

  /** Runs a whole plan; stops early (healing what is active) when the signal aborts. */
  async runPlan(plan: readonly PlannedFault[], startedAt: number, signal: AbortSignal): Promise<void> {
    const rounds = new Map<number, PlannedFault[]>();
    for (const p of plan) rounds.set(p.round, [...(rounds.get(p.round) ?? []), p]);
    try {
      for (const faults of rounds.values()) {
        const at = Math.min(...faults.map((f) => f.atMs));
        const wait = startedAt + at - performance.now();
        if (wait > 0) await sleep(wait, undefined, { signal });
        if (signal.aborted) return;
        // Each fault of the round lives for its own duration from its own injection.
        await Promise.all(
          faults.map(async (f) => {
            const active = await this.inject(f);
            if (!active) return;
            if (f.durationMs > 0) await sleep(f.durationMs, undefined, { signal }).catch(() => undefined);
            await this.heal(active);
          }),
        );
        if (isAborted(signal)) return;
        await this.waitRecovery(this.options.recoveryTimeoutMs);
      }
    } catch (error) {
      if (!signal.aborted) throw error;
    } finally {
      await this.healAll();
    }
  }

  /** Injects one planned fault; undefined when it could not be applied (recorded as failed). */
  async inject(planned: PlannedFault): Promise<ActiveFault | undefined> {
    const id = this.nextId++;
    let targets: string[] = [];
    try {
      const view = await this.clusterView();
      const running = this.members()
        .filter((m) => m.running)
        .map((m) => m.name);
      targets = resolveTargets(planned.target, { members: running, leader: view.leader, pick: planned.pick, ...(planned.member === undefined ? {} : { member: planned.member }) });
      this.record(id, 'inject', planned.fault, targets, undefined, planned.params);
      this.injected++;
      // A stacked fault may have just taken a target down (a kill, a panic): acting on a member that is
      // restarting tests nothing, so give it a moment to come back first.
      const throughAgents = faultDefinition(planned.fault).needsAgent;
      if (throughAgents) await this.waitHealthy(targets, 10_000);
      let appliedAt: number | undefined;
      let appliedMs = performance.now();
      const applied = (): void => {
        if (appliedAt !== undefined) return;
        appliedAt = this.options.clock();
        appliedMs = performance.now();
        this.options.onApplied?.({ id, fault: planned.fault, targets, time: appliedAt });
      };
      if (!throughAgents) applied();
      const { heal, verified } = await this.apply(planned, targets, view.ids, applied);
      applied(); // every agent fault marks it itself, as its agents answer: this is only a safety net
      this.record(id, 'verified', planned.fault, targets, verified);
      const active: ActiveFault = { id, planned, targets, heal, ttlDeadlineMs: appliedMs + this.ttl(planned) };
      this.active.set(id, active);
      return active;
    } catch (error) {
      this.record(id, 'failed', planned.fault, targets, (error as Error).message);
      return undefined;
    }
  }

  async heal(active: ActiveFault): Promise<void> {
    if (!this.active.delete(active.id)) return;
    try {
      const detail = await active.heal();
      this.record(active.id, 'heal', active.planned.fault, active.targets, detail);
    } catch (error) {
      this.record(active.id, 'failed', active.planned.fault, active.targets, `heal: ${(error as Error).message} (the agents' TTL heals it)`);
    }
  }

  async healAll(): Promise<void> {
    await Promise.all([...this.active.values()].map((a) => this.heal(a)));
  }

  private async waitHealthy(members: readonly string[], timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const states = await Promise.all(members.map((m) => isHealthy(this.member(m).endpoint, 1000, this.tls)));
      if (states.every(Boolean)) return true;
      await sleep(200);
    }
    return false;
  }

  /** Waits until every member is running and healthy; false on timeout. */
  async waitRecovery(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const members = this.members();
      const states = await Promise.all(members.map((m) => isHealthy(m.endpoint, 1000, this.tls)));
      if (states.every(Boolean)) return true;
      await sleep(200);
    }
    logger.warn('the cluster did not recover in time', { timeoutMs });
    return false;
  }

  /**
   * Every member's HashKV at one revision they have all applied must agree (etcd's robustness suite ends
   * each run this way): a member that diverged after a crash or a snapshot shows here.
   */
  async hashKvCheck(timeoutMs = 10_000): Promise<{ equal: boolean; detail: string }> {
    const deadline = Date.now() + timeoutMs;
    let last = 'no answer';
    while (Date.now() < deadline) {
      try {
        const members = this.members();
        const statuses = await Promise.all(members.map((m) => this.etcd(m.name).kv.range({ key: Buffer.from('\0'), count_only: true, serializable: true }, { deadline: Date.now() + 2000 })));
        const revision = Math.min(...statuses.map((s) => Number(s.header.revision)));
        // etcd3 1.1.2 has no HashKV binding: etcd's JSON gateway serves the same RPC.
        const hashes = await Promise.all(members.map((m) => hashKv(m.endpoint, revision, this.tls)));
        const summary = members.map((m, i) => `${m.name}=${hashes[i]!.hash}@compact ${hashes[i]!.compactRevision}`).join(' ');
        last = `revision ${revision}: ${summary}`;
        if (hashes.every((h) => h.hash === hashes[0]!.hash && h.compactRevision === hashes[0]!.compactRevision)) return { equal: true, detail: last };
      } catch (error) {
        last = (error as Error).message;
      }
      await sleep(500);
    }
    return { equal: false, detail: last };
  }

  close(): void {
    for (const client of this.clients.values()) client.close();
    this.clients.clear();
  }

  private ttl(planned: PlannedFault): number {
    return planned.durationMs + (this.options.ttlSlackMs ?? 10_000);
  }

  /** Sends one request to several agents; heals what it started if one fails. */
  private async injectAgents(members: readonly string[], request: AgentFaultRequest): Promise<() => Promise<string>> {
    const started: { member: string; id: string }[] = [];
    try {
      for (const m of members) started.push({ member: m, id: (await this.agent(m).inject(request)).id });
    } catch (error) {
      await Promise.all(started.map((s) => this.agent(s.member).heal(s.id).catch(() => undefined)));
      throw error;
    }
    return async () => {
      // 404: the agent restarted since (and healed everything when it started) or healed it at its TTL.
      // A member removed meanwhile (a two-node failover replaces one) took its agent and its rules with it.
      const removed: string[] = [];
      const healOne = async (s: { member: string; id: string }): Promise<unknown> => {
        if (!this.members().some((m) => m.name === s.member)) {
          removed.push(s.member);
          return undefined;
        }
        return this.agent(s.member)
          .heal(s.id)
          .catch((error: unknown) => {
            if (error instanceof AgentRequestError && error.status === 404) return undefined;
            throw error;
          });
      };
      await Promise.all(started.map(healOne));
      const healed = started.map((s) => s.member).filter((m) => !removed.includes(m));
      return `healed on ${healed.join(', ') || 'no member'}${removed.length > 0 ? ` (${removed.join(', ')} removed from the cluster since: gone with its agent)` : ''}`;
    };
  }

  /**
   * Injects a fault on a member's process. The faults of a round start together: another may have just
   * killed, crashed or paused the member, so while the agent answers that its etcd is down the injection is tried
   * again as the member restarts, for up to memberDownRetryMs. (injectAgents undoes a partial injection.)
   */
  private async whenUp<T>(inject: () => Promise<T>): Promise<T> {
    const deadline = Date.now() + memberDownRetryMs;
    for (;;) {
      try {
        return await inject();
      } catch (error) {
        const memberDown = error instanceof AgentRequestError && error.status === 409 && memberDownAnswer.test(error.agentMessage);
        if (!memberDown || Date.now() >= deadline) throw error;
        await sleep(250);
      }
    }
  }

  private async pidOf(member: string): Promise<number | undefined> {
    return (await this.agent(member).status()).pid;
  }

  /** Waits until the member's etcd process is a different one (it exited; the supervisor may restart it). */
  private async waitExit(member: string, before: number | undefined, timeoutMs: number, poke?: () => Promise<void>): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const pid = await this.pidOf(member).catch(() => undefined);
      if (pid !== before) return true;
      if (poke) await poke().catch(() => undefined);
      await sleep(200);
    }
    return false;
  }

  /** Waits until the member's agent sees no etcd process of its member; false on timeout. */
  private async waitDown(member: string, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if ((await this.pidOf(member).catch(() => -1)) === undefined) return true;
      await sleep(50);
    }
    return false;
  }

  /** Applies a fault; calls `applied` the moment it is in place (see FaultExecutorOptions.onApplied). */
  private async apply(planned: PlannedFault, targets: string[], ids: Map<string, string>, applied: () => void): Promise<{ heal: () => Promise<string>; verified: string }> {
    const definition = faultDefinition(planned.fault);
    const all = this.members().map((m) => m.name);
    const others = all.filter((m) => !targets.includes(m));
    const nothingToHeal = (): Promise<string> => Promise.resolve('nothing to heal');
    const num = (key: string): number => Number(planned.params[key]);
    const compactAt: CompactAt = planned.params['revision'] === 'latest' ? 'latest' : 'trailing';
    switch (planned.fault) {
      case 'kill': {
        const pids = await Promise.all(
          targets.map((t) =>
            this.whenUp(async () => {
              const pid = await this.pidOf(t);
              await this.agent(t).inject({ type: 'kill' });
              return pid;
            }),
          ),
        );
        applied();
        const exited = await Promise.all(targets.map((t, i) => this.waitExit(t, pids[i], 5000)));
        if (!exited.every(Boolean)) throw new Error(`the killed process of ${targets.join(', ')} is still running`);
        return { heal: nothingToHeal, verified: `etcd process ${pids.join(', ')} exited` };
      }
      case 'crash': {
        const { pids, heal } = await this.whenUp(async () => ({
          pids: await Promise.all(targets.map((t) => this.pidOf(t))),
          heal: await this.injectAgents(targets, { type: 'crash', ttlMs: this.ttl(planned) }),
        }));
        applied();
        // Down, and still down a moment later: a supervisor that ignores the hold file (the local one
        // restarts after 200 ms) would have started etcd again by then.
        let stayedDown = (await Promise.all(targets.map((t) => this.waitDown(t, 5000)))).every(Boolean);
        if (stayedDown) {
          await sleep(Math.min(500, planned.durationMs / 2));
          stayedDown = (await Promise.all(targets.map(async (t) => (await this.pidOf(t).catch(() => -1)) === undefined))).every(Boolean);
        }
        if (!stayedDown) {
          await heal().catch(() => undefined);
          throw new Error(`the crashed etcd of ${targets.join(', ')} did not stay down (does its supervisor honour the hold file <data-dir>.hold?)`);
        }
        return { heal, verified: `etcd process ${pids.join(', ')} exited and stays down` };
      }
      case 'pause': {
        const heal = await this.whenUp(() => this.injectAgents(targets, { type: 'pause', ttlMs: this.ttl(planned) }));
        applied();
        const answering = await Promise.all(targets.map((t) => isHealthy(this.member(t).endpoint, 1000, this.tls)));
        if (answering.some(Boolean)) {
          await heal();
          throw new Error(`paused member ${targets.join(', ')} still answers /health`);
        }
        return { heal, verified: `${targets.join(', ')} stopped answering` };
      }
      case 'blackhole':
      case 'delay':
      case 'drop':
      case 'partition': {
        const mode = planned.fault === 'partition' ? String(planned.params['mode'] ?? 'isolate') : 'isolate';
        const links = linksBetween(targets, others, mode === 'asymmetric');
        const action = planned.fault === 'delay' ? 'delay' : planned.fault === 'drop' ? 'drop' : 'blackhole';
        const rules: LinkRule[] = links.map((l) => ({
          ...l,
          action,
          ...(action === 'delay' ? { delayMs: num('delayMs'), jitterMs: num('jitterMs') } : {}),
          ...(action === 'drop' ? { dropPercent: num('percent') } : {}),
        }));
        const peers = Object.fromEntries([...ids].map(([id, name]) => [idHex(id), name]));
        const heal = await this.injectAgents(all, { type: 'network', rules, ttlMs: this.ttl(planned), peers });
        applied();
        let verified = `${rules.length} link rules (${action}) on ${all.length} proxies`;
        if (action === 'blackhole' && mode !== 'asymmetric') {
          // An isolated minority cannot keep (or win) leadership: wait for the majority's leader.
          const deadline = Date.now() + 6000;
          let leader: string | undefined;
          while (Date.now() < deadline) {
            leader = await this.leaderAmong(others);
            if (leader !== undefined && !targets.includes(leader)) break;
            await sleep(250);
          }
          if (leader === undefined || targets.includes(leader)) {
            verified += `; warning: no leader outside ${targets.join(', ')} within 6 s`;
          } else verified += `; leader ${leader} outside the isolated ${targets.join(', ')}`;
        }
        return { heal, verified };
      }
      case 'diskPressure': {
        const heal = await this.injectAgents(targets, { type: 'diskPressure', bytes: num('bytes'), ttlMs: this.ttl(planned) });
        applied();
        return { heal, verified: `${num('bytes')} bytes of ballast beside ${targets.join(', ')}` };
      }
      case 'leaderTransfer': {
        const [target] = targets;
        const targetId = [...ids].find(([, name]) => name === target)?.[0];
        if (targetId === undefined) throw new Error(`no member id for ${target}`);
        // A stacked fault (a kill, a pause, a partition) can take the leader away mid-transfer ("Connection
        // dropped"): a fault that fails counts against the run, so try again with whoever leads then.
        let failure: Error | undefined;
        for (let attempt = 1; attempt <= leaderTransferAttempts; attempt++) {
          if (attempt > 1) await sleep(1000);
          try {
            const leader = await this.leaderNow();
            if (leader === undefined) throw new Error('no leader to transfer from');
            if (leader === target) return { heal: nothingToHeal, verified: `${target} already leads` };
            await this.etcd(leader).maintenance.moveLeader({ targetID: targetId }, { deadline: Date.now() + 5000 });
            const now = await this.leaderNow();
            if (now !== target) throw new Error(`leader is ${now ?? 'none'} after moving it to ${target}`);
            return { heal: nothingToHeal, verified: `leadership moved from ${leader} to ${target}${attempt > 1 ? ` (attempt ${attempt})` : ''}` };
          } catch (error) {
            failure = error as Error;
          }
        }
        throw new Error(`${failure?.message ?? 'unknown error'} (after ${leaderTransferAttempts} attempts)`, { cause: failure });
      }
      case 'defragment': {
        await Promise.all(targets.map((t) => this.options.triggers.defragment(t)));
        return { heal: nothingToHeal, verified: `defragmented ${targets.join(', ')} under load` };
      }
      case 'compact': {
        await this.options.triggers.compact(compactAt);
        return { heal: nothingToHeal, verified: `compacted (${compactAt})` };
      }
      case 'rollingRestart': {
        for (const m of all) {
          await this.options.runtime.restart(m);
          if (!(await this.waitRecovery(this.options.recoveryTimeoutMs))) throw new Error(`the cluster did not recover after restarting ${m}`);
        }
        return { heal: nothingToHeal, verified: `restarted ${all.join(', ')} one by one` };
      }
      case 'memberReplace':
        return { heal: nothingToHeal, verified: await this.replaceMember(targets[0]!, ids) };
      default: {
        const failpoint = definition.failpoint;
        if (!failpoint) throw new FaultUnavailableError(`fault ${planned.fault} has no implementation`);
        const [target] = targets as [string];
        const { before, heal } = await this.whenUp(async () => ({
          before: await this.pidOf(target),
          heal: await this.injectAgents([target], { type: 'failpoint', name: failpoint.name, term: failpoint.term, ttlMs: this.ttl(planned) }),
        }));
        applied();
        const panicked = { heal: () => heal().catch(() => 'the failpoint went with the panicked process'), verified: `${target} panicked at ${failpoint.name} (pid ${before ?? '?'} exited)` };
        if (failpoint.trigger === 'snapshot') {
          // Whether the leader needs a snapshot depends on where its raft log was last compacted: retry.
          for (let attempt = 0; attempt < 3; attempt++) {
            await this.makeLeaderSendSnapshot(target, others, ids, planned);
            if (await this.waitExit(target, before, 5000)) {
              return panicked;
            }
          }
        }
        const poke = async (): Promise<void> => {
          if (failpoint.trigger === 'write' || failpoint.trigger === 'snapshot') await this.options.triggers.write();
          else if (failpoint.trigger === 'defragment') await this.options.triggers.defragment(target);
          else await this.options.triggers.compact(compactAt);
        };
        const exited = await this.waitExit(target, before, 10_000, poke);
        if (!exited) {
          await heal().catch(() => undefined);
          throw new Error(`${target} did not panic at ${failpoint.name} within 10 s`);
        }
        return panicked;
      }
    }
  }

  /**
   * Member replace, the way an operator swaps a broken member: stop it, remove it from the cluster, wipe
   * its data, add it back as a learner, start it, promote it once it has caught up.
   */
  private async replaceMember(target: string, ids: Map<string, string>): Promise<string> {
    const member = this.member(target);
    if (member.peerUrl === undefined) throw new FaultUnavailableError(`member ${target} has no known peer URL`);
    const oldId = [...ids].find(([, name]) => name === target)?.[0];
    if (oldId === undefined) throw new Error(`no member id for ${target}`);
    const via = this.members().find((m) => m.name !== target && m.running)?.name;
    if (via === undefined) throw new Error('no other member to reconfigure the cluster through');
    const deadline = (ms = 5000): { deadline: number } => ({ deadline: Date.now() + ms });
    await this.options.runtime.stop(target);
    // etcd refuses reconfiguration until the cluster has been fully connected for a while ("unhealthy
    // cluster", e.g. just after start or a fault): retry such refusals for a while.
    const retrying = async <T>(what: string, call: () => Promise<T>): Promise<T> => {
      const until = Date.now() + 20_000;
      for (;;) {
        try {
          return await call();
        } catch (error) {
          if (!/unhealthy cluster/.test((error as Error).message) || Date.now() > until) throw new Error(`${what}: ${(error as Error).message}`, { cause: error });
          await sleep(500);
        }
      }
    };
    try {
      await retrying(`remove ${target}`, () => this.etcd(via).cluster.memberRemove({ ID: oldId }, deadline()));
    } catch (error) {
      await this.options.runtime.restart(target);
      throw new Error(`${(error as Error).message} (${target} was restarted unchanged)`, { cause: error });
    }
    const added = await retrying(`add ${target} back as a learner`, () => this.etcd(via).cluster.memberAdd({ peerURLs: [member.peerUrl!], isLearner: true }, deadline()));
    const initialCluster = added.members
      .map((m) => `${m.ID === added.member.ID ? target : m.name}=${m.peerURLs[0] ?? ''}`)
      .join(',');
    await this.options.runtime.rejoin(target, initialCluster);
    // A learner is promoted only once it is in sync with the leader: retry until etcd accepts.
    const until = Date.now() + 30_000;
    let last = '';
    while (Date.now() < until) {
      try {
        await this.etcd(via).cluster.memberPromote({ ID: added.member.ID }, deadline());
        return `${target} removed (id ${idHex(oldId)}), wiped, re-added as learner ${idHex(added.member.ID)} and promoted`;
      } catch (error) {
        last = (error as Error).message;
        await sleep(300);
      }
    }
    throw new Error(`learner ${target} was not promoted within 30 s: ${last}`);
  }

  /**
   * A member gets a snapshot when the leader has compacted its raft log past what the member has: cut
   * the member off, write more entries than the snapshot interval plus the catch-up log the local
   * runtime configures (--snapshot-count=200, --snapshot-catchup-entries=50), then let it back.
   */
  private async makeLeaderSendSnapshot(target: string, others: string[], ids: Map<string, string>, planned: PlannedFault): Promise<void> {
    const rules: LinkRule[] = linksBetween([target], others).map((l) => ({ ...l, action: 'blackhole' }));
    const peers = Object.fromEntries([...ids].map(([id, name]) => [idHex(id), name]));
    const healNetwork = await this.injectAgents([target, ...others], { type: 'network', rules, ttlMs: this.ttl(planned), peers });
    try {
      const t0 = Date.now();
      for (let i = 0; i < 400; i++) await this.options.triggers.write([target]);
      logger.debug('snapshot trigger: wrote 400 entries while the member was cut off', { target, ms: Date.now() - t0 });
    } finally {
      await healNetwork();
    }
  }

  private async leaderAmong(members: readonly string[]): Promise<string | undefined> {
    return (await this.clusterView(members)).leader;
  }

}
