/**
 * The fault agent's leases: every fault it holds, with the timer that heals it when its TTL is up, the
 * recently healed ones (a heal or a GET of a healed fault answers them again), and the injections in
 * progress (one crash, one pause, one ballast and one fault per failpoint at a time). How a fault is
 * applied and healed is the caller's (src/faults/agent-actions.ts).
 */
import { randomBytes } from 'node:crypto';
import type { AgentFault, AgentFaultRequest } from '../domain/faults.ts';
import { logger } from '../log.ts';
import { AgentHttpError, errorMessage } from './agent-request.ts';

/** How to heal an applied fault; undefined for an instantaneous fault (kill), which leaves nothing to heal. */
export type HealFault = () => Promise<void>;

/** Applies a fault that lasts until `expiresAtMs` (ms since the epoch). */
export type ApplyFault = (request: AgentFaultRequest, expiresAtMs: number) => Promise<HealFault | undefined>;

interface ActiveFault {
  fault: AgentFault;
  timer: NodeJS.Timeout;
  heal: HealFault;
}

const recentHealedLimit = 500;

/** The key that keeps a second fault of the same kind out while one is injected or active; undefined when any number may run. */
function exclusiveKey(request: AgentFaultRequest): string | undefined {
  if (request.type === 'failpoint') return `failpoint ${request.name}`;
  return request.type === 'crash' || request.type === 'pause' || request.type === 'diskPressure' ? request.type : undefined;
}

export class FaultLeases {
  private readonly member: string;
  private readonly instance = randomBytes(4).toString('hex');
  private sequence = 0;
  private readonly active = new Map<string, ActiveFault>();
  private readonly healed = new Map<string, AgentFault>();
  private readonly injecting = new Set<string>();

  constructor(member: string) {
    this.member = member;
  }

  /** Applies a validated fault with `apply` and holds it until its TTL is up; the AgentFault says when that is. */
  async inject(request: AgentFaultRequest, apply: ApplyFault): Promise<AgentFault> {
    const id = `${this.instance}-${++this.sequence}`;
    const ttlMs = request.type === 'kill' ? 0 : request.ttlMs;
    const expiresAtMs = Date.now() + ttlMs;
    const fault: AgentFault = { id, type: request.type, request, expiresAt: new Date(expiresAtMs).toISOString() };
    // Held until the fault is registered.
    const key = exclusiveKey(request);
    const release = key === undefined ? () => undefined : this.reserve(key);
    let heal: HealFault | undefined;
    try {
      heal = await apply(request, expiresAtMs);
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

  /** Heals one fault now. A fault already healed is returned again; an unknown id is a 404. */
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

  /** Copies of the active faults. */
  list(): AgentFault[] {
    return [...this.active.values()].map((a) => ({ ...a.fault }));
  }

  /** An active or recently healed fault. */
  get(id: string): AgentFault | undefined {
    return this.active.get(id)?.fault ?? this.healed.get(id);
  }

  /** The first active fault that matches. */
  findActive(matches: (fault: AgentFault) => boolean): AgentFault | undefined {
    return [...this.active.values()].find((a) => matches(a.fault))?.fault;
  }

  /** The requests of the active faults, in the order they were injected. */
  activeRequests(): AgentFaultRequest[] {
    return [...this.active.values()].map((a) => a.fault.request);
  }

  private remember(fault: AgentFault): void {
    this.healed.set(fault.id, fault);
    if (this.healed.size > recentHealedLimit) this.healed.delete(this.healed.keys().next().value!);
  }

  /** Marks an injection in progress (409 for a second one at the same time); call the result when done. */
  private reserve(key: string): () => void {
    if (this.injecting.has(key)) throw new AgentHttpError(409, `another ${key} fault is being injected right now`);
    this.injecting.add(key);
    return () => this.injecting.delete(key);
  }
}
