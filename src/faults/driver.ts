/**
 * What a fault driver is: the code that injects one catalog fault, checks it took effect and says how to
 * heal it. The executor keeps one driver per fault name in a record typed over FaultName
 * (src/faults/drivers.ts), so a catalog fault without a driver does not compile.
 */
import type { Etcd3 } from 'etcd3';
import type { AgentFaultRequest, MemberRuntime, PlannedFault, RuntimeMember } from '../domain/index.ts';
import type { AgentClient } from './agent-client.ts';

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

export class FaultUnavailableError extends Error {
  override name = 'FaultUnavailableError';
}

/** Undoes an injected fault; resolves to what was healed, for the history's `heal` line. */
export type Heal = () => Promise<string>;

/** A fault in place: how to heal it, and what was checked (the `verified` line). */
export interface Injected {
  heal: Heal;
  verified: string;
}

/** The injection a driver carries out. */
export interface Injection {
  planned: PlannedFault;
  /** The members the target rule resolved to. */
  targets: string[];
  /** Every member, and every member that is not a target. */
  all: string[];
  others: string[];
  /** Member ids (decimal, as etcd's API gives them) to names. */
  ids: Map<string, string>;
  /** The TTL the agents hold the fault for: its duration plus slack. */
  ttlMs: number;
  /** Marks the moment the fault is in place (FaultExecutorOptions.onApplied); later calls do nothing. */
  applied: () => void;
}

/** What drivers use of the executor: the cluster, its members' agents and waits on them. */
export interface FaultTools {
  readonly runtime: MemberRuntime;
  readonly triggers: FaultTriggers;
  readonly recoveryTimeoutMs: number;
  member(name: string): RuntimeMember;
  members(): RuntimeMember[];
  /** An unrecorded client pinned to one member, for status, member list and maintenance calls. */
  etcd(name: string): Etcd3;
  agent(name: string): AgentClient;
  /** Whether the member answers /health (healthy) within a second. */
  healthy(member: string): Promise<boolean>;
  /** The member's etcd process id as its agent sees it (undefined: none running). */
  pidOf(member: string): Promise<number | undefined>;
  /** Sends one request to several agents; heals what it started if one fails. */
  injectAgents(members: readonly string[], request: AgentFaultRequest): Promise<Heal>;
  /** Retries `inject` while the agent answers that the member's etcd is down (it is restarting). */
  whenUp<T>(inject: () => Promise<T>): Promise<T>;
  /** Waits until the member's etcd process is a different one; false on timeout. */
  waitExit(member: string, before: number | undefined, timeoutMs: number, poke?: () => Promise<void>): Promise<boolean>;
  /** Waits until the member's agent sees no etcd process of its member; false on timeout. */
  waitDown(member: string, timeoutMs: number): Promise<boolean>;
  /** Waits until every member is running and healthy; false on timeout. */
  waitRecovery(timeoutMs: number): Promise<boolean>;
  /** Member ids to names, and who leads, as the first of `askable` members that answers sees it. */
  clusterView(askable?: readonly string[]): Promise<{ ids: Map<string, string>; leader: string | undefined }>;
}

/** Injects one fault. It throws when the fault could not be applied, after undoing what it started. */
export type FaultDriver = (tools: FaultTools, injection: Injection) => Promise<Injected>;

export const nothingToHeal: Heal = () => Promise.resolve('nothing to heal');

/** A member id as etcd's logs and the peer proxies write it. */
export const idHex = (decimal: string): string => BigInt(decimal).toString(16);

/** A numeric fault parameter. */
export const numParam = (planned: PlannedFault, key: string): number => Number(planned.params[key]);

/** The compact faults' and compaction failpoints' revision parameter (trailing when absent). */
export const compactAtParam = (planned: PlannedFault): CompactAt => (planned.params['revision'] === 'latest' ? 'latest' : 'trailing');
