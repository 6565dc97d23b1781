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
import type { AgentFaultRequest, EtcdClientTls, FaultEvent, FaultName, FaultPhase, MemberRuntime, PlannedFault, RuntimeMember } from '../domain/index.ts';
import { logger } from '../log.ts';
import { onTimeout, pollUntil, retryWhile } from '../poll.ts';
import { etcdHttp } from '../probes/etcd-transport.ts';
import { isHealthy } from '../probes/health.ts';
import { recordingEtcdClient } from '../probes/recording-client.ts';
import { AgentClient, AgentRequestError } from './agent-client.ts';
import { faultDefinition } from './catalog.ts';
import { type FaultTools, type FaultTriggers, FaultUnavailableError, type Heal, type Injected } from './driver.ts';
import { faultDrivers } from './drivers.ts';
import { resolveTargets } from './targets.ts';

export type { CompactAt, FaultTriggers } from './driver.ts';

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
  heal: Heal;
  /** performance.now() past which the agents heal it themselves (its TTL from when it was in place). */
  ttlDeadlineMs: number;
}

/** How long a process fault waits for its member to come back (a kill restarts it in 200 ms, a held crash later). */
const memberDownRetryMs = 15_000;
/**
 * The agent's answers while the member's etcd is down or paused: no process to signal, or its gofail
 * endpoint refuses or does not answer in time.
 */
const memberDownAnswer = /no etcd process with .* is running|fetch failed|ECONNREFUSED|aborted due to timeout/;

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
  /** What the fault drivers use of this executor. */
  private readonly tools: FaultTools;

  constructor(options: FaultExecutorOptions) {
    this.options = options;
    this.tools = {
      runtime: options.runtime,
      triggers: options.triggers,
      recoveryTimeoutMs: options.recoveryTimeoutMs,
      member: (name) => this.member(name),
      members: () => this.members(),
      etcd: (name) => this.etcd(name),
      agent: (name) => this.agent(name),
      healthy: (name) => isHealthy(this.member(name).endpoint, 1000, this.tls),
      pidOf: (member) => this.pidOf(member),
      injectAgents: (members, request) => this.injectAgents(members, request),
      whenUp: <T>(inject: () => Promise<T>) => this.whenUp(inject),
      waitExit: (member, before, timeoutMs, poke) => this.waitExit(member, before, timeoutMs, poke),
      waitDown: (member, timeoutMs) => this.waitDown(member, timeoutMs),
      waitRecovery: (timeoutMs) => this.waitRecovery(timeoutMs),
      clusterView: (askable) => this.clusterView(askable),
    };
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
      if (throughAgents) await this.waitHealthy(() => targets.map((t) => this.member(t)), 10_000);
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

  /**
   * Waits until every one of `members` answers /health healthy (and, for a recovery, at least `whole.minimum`
   * are listed and the runtime says each runs: targets are picked among running members, and a Pod's
   * Ready condition lags its /health by a probe period); false on timeout.
   */
  private waitHealthy(members: () => RuntimeMember[], timeoutMs: number, whole?: { minimum: number }): Promise<boolean> {
    const allHealthy = async (): Promise<true | undefined> => {
      const listed = members();
      if (whole && (listed.length < whole.minimum || listed.some((m) => !m.running))) return undefined;
      return (await Promise.all(listed.map((m) => isHealthy(m.endpoint, 1000, this.tls)))).every(Boolean) || undefined;
    };
    return pollUntil(allHealthy, { timeoutMs, intervalMs: 200, timeout: 'healthy members' }).catch(onTimeout(false));
  }

  /** Waits until every member is running and healthy, and as many as the runtime expects are listed; false on timeout. */
  async waitRecovery(timeoutMs: number): Promise<boolean> {
    const recovered = await this.waitHealthy(() => this.members(), timeoutMs, { minimum: this.options.runtime.expectedMembers ?? 0 });
    if (!recovered) logger.warn('the cluster did not recover in time', { timeoutMs });
    return recovered;
  }

  /**
   * Every member's HashKV at one revision they have all applied must agree (etcd's robustness suite ends
   * each run this way): a member that diverged after a crash or a snapshot shows here.
   */
  async hashKvCheck(timeoutMs = 10_000): Promise<{ equal: boolean; compared: boolean; detail: string }> {
    let last = 'no answer';
    // An object, not a let: set inside the closure, which TypeScript's narrowing does not follow.
    const seen: { comparison: string | undefined } = { comparison: undefined };
    const agreed = async (): Promise<true | undefined> => {
      try {
        // A fresh list: a member replaced (a two-node failover) must not be asked in place of its successor.
        const members = (await this.options.runtime.membersNow?.()) ?? this.members();
        const statuses = await Promise.all(members.map((m) => this.etcd(m.name).kv.range({ key: Buffer.from('\0'), count_only: true, serializable: true }, { deadline: Date.now() + 2000 })));
        const revision = Math.min(...statuses.map((s) => Number(s.header.revision)));
        // etcd3 1.1.2 has no HashKV binding: etcd's JSON gateway serves the same RPC.
        const hashes = await Promise.all(members.map((m) => hashKv(m.endpoint, revision, this.tls)));
        const summary = members.map((m, i) => `${m.name}=${hashes[i]!.hash}@compact ${hashes[i]!.compactRevision}`).join(' ');
        last = `revision ${revision}: ${summary}`;
        seen.comparison = last;
        if (hashes.every((h) => h.hash === hashes[0]!.hash && h.compactRevision === hashes[0]!.compactRevision)) return true;
      } catch (error) {
        last = (error as Error).message;
      }
      return undefined;
    };
    const equal = await pollUntil(agreed, { timeoutMs, intervalMs: 500, timeout: 'equal HashKV on every member' }).catch(onTimeout(false));
    // Differing hashes, once seen, are the finding (with the hashes) even if a member stopped answering afterwards.
    if (equal) return { equal, compared: true, detail: last };
    if (seen.comparison !== undefined) return { equal, compared: true, detail: seen.comparison };
    return { equal, compared: false, detail: `not compared: ${last}` };
  }

  close(): void {
    for (const client of this.clients.values()) client.close();
    this.clients.clear();
  }

  private ttl(planned: PlannedFault): number {
    return planned.durationMs + (this.options.ttlSlackMs ?? 10_000);
  }

  /** Whether `member` is still one of the cluster's, by a fresh list when the runtime has one. */
  private async stillMember(member: string): Promise<boolean> {
    const fresh = (await this.options.runtime.membersNow?.().catch(() => undefined)) ?? this.members();
    return fresh.some((m) => m.name === member);
  }

  /** Sends one request to several agents; heals what it started if one fails. */
  private async injectAgents(members: readonly string[], request: AgentFaultRequest): Promise<Heal> {
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
          .catch(async (error: unknown) => {
            if (error instanceof AgentRequestError && error.status === 404) return undefined;
            // No answer: a member fenced since (its Pod deleted) is gone, not unreachable.
            if (error instanceof AgentRequestError && error.status === undefined && !(await this.stillMember(s.member))) {
              removed.push(s.member);
              return undefined;
            }
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
  private whenUp<T>(inject: () => Promise<T>): Promise<T> {
    const memberDown = (error: unknown): boolean => error instanceof AgentRequestError && error.status === 409 && memberDownAnswer.test(error.agentMessage);
    return retryWhile(inject, memberDown, { timeoutMs: memberDownRetryMs, intervalMs: 250 });
  }

  private async pidOf(member: string): Promise<number | undefined> {
    return (await this.agent(member).status()).pid;
  }

  /** Waits until the member's etcd process is a different one (it exited; the supervisor may restart it). */
  private async waitExit(member: string, before: number | undefined, timeoutMs: number, poke?: () => Promise<void>): Promise<boolean> {
    const exited = async (): Promise<true | undefined> => {
      const pid = await this.pidOf(member).catch(() => undefined);
      if (pid !== before) return true;
      if (poke) await poke().catch(() => undefined);
      return undefined;
    };
    return pollUntil(exited, { timeoutMs, intervalMs: 200, timeout: `a new etcd process of ${member}` }).catch(onTimeout(false));
  }

  /** Waits until the member's agent sees no etcd process of its member; false on timeout. */
  private async waitDown(member: string, timeoutMs: number): Promise<boolean> {
    const down = async (): Promise<true | undefined> => ((await this.pidOf(member).catch(() => -1)) === undefined ? true : undefined);
    return pollUntil(down, { timeoutMs, intervalMs: 50, timeout: `no etcd process of ${member}` }).catch(onTimeout(false));
  }

  /** Applies a fault through its driver; it calls `applied` the moment the fault is in place (see FaultExecutorOptions.onApplied). */
  private async apply(planned: PlannedFault, targets: string[], ids: Map<string, string>, applied: () => void): Promise<Injected> {
    const all = this.members().map((m) => m.name);
    const others = all.filter((m) => !targets.includes(m));
    return faultDrivers[planned.fault](this.tools, { planned, targets, all, others, ids, ttlMs: this.ttl(planned), applied });
  }
}
