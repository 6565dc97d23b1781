/** Cluster-level faults: through the etcd API (leadership, maintenance, membership) and the member runtime. */
import { setTimeout as sleep } from 'node:timers/promises';
import { retryWhile } from '../poll.ts';
import { compactAtParam, type FaultDriver, type FaultTools, FaultUnavailableError, idHex, nothingToHeal } from './driver.ts';

/** leaderTransfer tries this many times (a second apart) before the fault counts as failed. */
const leaderTransferAttempts = 3;

const leaderTransfer: FaultDriver = async (tools, { targets, ids }) => {
  const [target] = targets;
  const targetId = [...ids].find(([, name]) => name === target)?.[0];
  if (targetId === undefined) throw new Error(`no member id for ${target}`);
  const leaderNow = async (): Promise<string | undefined> => (await tools.clusterView()).leader;
  // A stacked fault (a kill, a pause, a partition) can take the leader away mid-transfer ("Connection
  // dropped"): a fault that fails counts against the run, so try again with whoever leads then.
  let failure: Error | undefined;
  for (let attempt = 1; attempt <= leaderTransferAttempts; attempt++) {
    if (attempt > 1) await sleep(1000);
    try {
      const leader = await leaderNow();
      if (leader === undefined) throw new Error('no leader to transfer from');
      if (leader === target) return { heal: nothingToHeal, verified: `${target} already leads` };
      await tools.etcd(leader).maintenance.moveLeader({ targetID: targetId }, { deadline: Date.now() + 5000 });
      const now = await leaderNow();
      if (now !== target) throw new Error(`leader is ${now ?? 'none'} after moving it to ${target}`);
      return { heal: nothingToHeal, verified: `leadership moved from ${leader} to ${target}${attempt > 1 ? ` (attempt ${attempt})` : ''}` };
    } catch (error) {
      failure = error as Error;
    }
  }
  throw new Error(`${failure?.message ?? 'unknown error'} (after ${leaderTransferAttempts} attempts)`, { cause: failure });
};

const defragment: FaultDriver = async (tools, { targets }) => {
  await Promise.all(targets.map((t) => tools.triggers.defragment(t)));
  return { heal: nothingToHeal, verified: `defragmented ${targets.join(', ')} under load` };
};

const compact: FaultDriver = async (tools, { planned }) => {
  const compactAt = compactAtParam(planned);
  await tools.triggers.compact(compactAt);
  return { heal: nothingToHeal, verified: `compacted (${compactAt})` };
};

const rollingRestart: FaultDriver = async (tools, { all }) => {
  for (const m of all) {
    await tools.runtime.restart(m);
    if (!(await tools.waitRecovery(tools.recoveryTimeoutMs))) throw new Error(`the cluster did not recover after restarting ${m}`);
  }
  return { heal: nothingToHeal, verified: `restarted ${all.join(', ')} one by one` };
};

const memberReplace: FaultDriver = async (tools, { targets, ids }) => ({ heal: nothingToHeal, verified: await replaceMember(tools, targets[0]!, ids) });

/**
 * Member replace, the way an operator swaps a broken member: stop it, remove it from the cluster, wipe
 * its data, add it back as a learner, start it, promote it once it has caught up.
 */
async function replaceMember(tools: FaultTools, target: string, ids: Map<string, string>): Promise<string> {
  const member = tools.member(target);
  if (member.peerUrl === undefined) throw new FaultUnavailableError(`member ${target} has no known peer URL`);
  const oldId = [...ids].find(([, name]) => name === target)?.[0];
  if (oldId === undefined) throw new Error(`no member id for ${target}`);
  const via = tools.members().find((m) => m.name !== target && m.running)?.name;
  if (via === undefined) throw new Error('no other member to reconfigure the cluster through');
  const deadline = (ms = 5000): { deadline: number } => ({ deadline: Date.now() + ms });
  await tools.runtime.stop(target);
  // etcd refuses reconfiguration until the cluster has been fully connected for a while ("unhealthy
  // cluster", e.g. just after start or a fault): retry such refusals for a while.
  const unhealthyCluster = (error: unknown): boolean => /unhealthy cluster/.test((error as Error).message);
  const retrying = <T>(what: string, call: () => Promise<T>): Promise<T> =>
    retryWhile(call, unhealthyCluster, { timeoutMs: 20_000, intervalMs: 500 }).catch((error: unknown) => {
      throw new Error(`${what}: ${(error as Error).message}`, { cause: error });
    });
  try {
    await retrying(`remove ${target}`, () => tools.etcd(via).cluster.memberRemove({ ID: oldId }, deadline()));
  } catch (error) {
    await tools.runtime.restart(target);
    throw new Error(`${(error as Error).message} (${target} was restarted unchanged)`, { cause: error });
  }
  const added = await retrying(`add ${target} back as a learner`, () => tools.etcd(via).cluster.memberAdd({ peerURLs: [member.peerUrl!], isLearner: true }, deadline()));
  const initialCluster = added.members
    .map((m) => `${m.ID === added.member.ID ? target : m.name}=${m.peerURLs[0] ?? ''}`)
    .join(',');
  await tools.runtime.rejoin(target, initialCluster);
  // A learner is promoted only once it is in sync with the leader: retry until etcd accepts.
  try {
    await retryWhile(() => tools.etcd(via).cluster.memberPromote({ ID: added.member.ID }, deadline()), () => true, { timeoutMs: 30_000, intervalMs: 300 });
  } catch (error) {
    throw new Error(`learner ${target} was not promoted within 30 s: ${(error as Error).message}`, { cause: error });
  }
  return `${target} removed (id ${idHex(oldId)}), wiped, re-added as learner ${idHex(added.member.ID)} and promoted`;
}

export const clusterDrivers = { memberReplace, leaderTransfer, defragment, compact, rollingRestart } as const;
