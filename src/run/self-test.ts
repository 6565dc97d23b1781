/**
 * The self-test (spec.selfTest.staleReads): one member lags, and reads through it are sent serializable
 * while recorded as the linearizable reads the profile asked for. The checker must catch it.
 */
import type { Etcd3 } from 'etcd3';
import type { EtcdRequest, RuntimeMember } from '../domain/index.ts';
import { defaultMaxTtlMs } from '../domain/index.ts';
import { AgentClient } from '../faults/agent-client.ts';
import { GofailClient } from '../faults/gofail.ts';
import { logger } from '../log.ts';
import type { RunSession } from './session.ts';

/**
 * Whether the self-test can make `member` lag: its gofail API is reachable (local members), or its fault
 * agent is and we hold the agent's token (a Pod's gofail port listens on the Pod's loopback only).
 */
const canLag = (member: RuntimeMember, agentToken: string | undefined): boolean => member.failpointUrl !== undefined || (member.agentUrl !== undefined && agentToken !== undefined);

/** The self-test's lag: a 300 ms sleep before the member's raft saves entries. */
const selfTestFailpoint = { name: 'raftBeforeSave', term: 'sleep("300ms")' } as const;

/**
 * Makes `member` lag; returns the heal. Through the agent the failpoint is a lease (at most the agent's
 * maximum TTL): a run that dies without healing it leaves no member lagging for long.
 */
async function lagMember(member: RuntimeMember, agentToken: string | undefined, ttlMs: number): Promise<() => Promise<void>> {
  if (member.failpointUrl !== undefined) {
    const gofail = new GofailClient(member.failpointUrl);
    await gofail.activate(selfTestFailpoint.name, selfTestFailpoint.term);
    return () => gofail.deactivate(selfTestFailpoint.name);
  }
  if (member.agentUrl === undefined || agentToken === undefined) throw new Error(`selfTest.staleReads: member ${member.name} has neither a gofail API nor a fault agent this run may use`);
  const agent = new AgentClient(member.agentUrl, agentToken, { ca: member.agentCa });
  const fault = await agent.inject({ type: 'failpoint', ...selfTestFailpoint, ttlMs: Math.min(ttlMs, defaultMaxTtlMs) });
  return async () => {
    await agent.heal(fault.id);
  };
}

/** Picks the member whose reads the self-test makes stale: the named one, else a follower. */
async function selfTestMember(admin: Etcd3, members: RuntimeMember[], named: string | undefined, agentToken: string | undefined): Promise<RuntimeMember> {
  if (named !== undefined) {
    const found = members.find((m) => m.name === named);
    if (!found) throw new Error(`spec.selfTest.staleReads.member: no member named ${named} (members: ${members.map((m) => m.name).join(', ')})`);
    return found;
  }
  const status = await admin.maintenance.status({ deadline: Date.now() + 5000 });
  const leaderId = status.leader;
  const list = await admin.cluster.memberList({}, { deadline: Date.now() + 5000 });
  const leaderName = list.members.find((m) => m.ID === leaderId)?.name;
  const follower = members.find((m) => m.name !== leaderName && canLag(m, agentToken));
  if (!follower) throw new Error('selfTest.staleReads needs a follower with gofail failpoints, reachable directly or through its fault agent (run --local starts such members; an EtcdCluster needs image.failpoints and agent.enabled)');
  return follower;
}

/** What the self-test changed: the member it made lag (its reads lie) and how to heal it (idempotent). */
export interface SelfTest {
  /** The result's selfTest line (absent: no self-test). */
  description: string | undefined;
  lagging: string | undefined;
  heal: (() => Promise<void>) | undefined;
}

/** Starts the self-test the spec asks for (if any); its heal is also one of the session's cleanups. */
export async function startSelfTest(session: RunSession): Promise<SelfTest> {
  const { spec, options } = session;
  if (!spec.selfTest?.staleReads) return { description: undefined, lagging: undefined, heal: undefined };
  const target = await selfTestMember(session.admin, session.members, spec.selfTest.staleReads.member, options.agentToken);
  let healSelfTest: (() => Promise<void>) | undefined;
  if (canLag(target, options.agentToken)) {
    const heal = await lagMember(target, options.agentToken, spec.timeoutMs);
    let healed = false;
    healSelfTest = async () => {
      if (healed) return;
      healed = true;
      await heal().catch((error: unknown) => {
        logger.warn('could not remove the self-test failpoint', { member: target.name, error: (error as Error).message });
      });
    };
    session.onClose(healSelfTest);
  }
  logger.warn('self-test: reads through this member are sent serializable but recorded linearizable', { member: target.name });
  return { description: `staleReads via ${target.name}`, lagging: target.name, heal: healSelfTest };
}

/** The lie: a linearizable read (not at a revision) is sent serializable. */
export const lieAboutReads = (request: EtcdRequest): EtcdRequest =>
  request.type === 'range' && !request.serializable && !request.revision ? { ...request, serializable: true } : request;
