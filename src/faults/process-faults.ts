/** Faults on a member's etcd process and its disk, through the member's fault agent. */
import { setTimeout as sleep } from 'node:timers/promises';
import { type FaultDriver, type FaultTools, nothingToHeal, numParam } from './driver.ts';

/** SIGKILL; the supervisor restarts it on its data right away: verified by a new pid. */
const kill: FaultDriver = async (tools, { targets, applied }) => {
  const pids = await Promise.all(
    targets.map((t) =>
      tools.whenUp(async () => {
        const pid = await tools.pidOf(t);
        await tools.agent(t).inject({ type: 'kill' });
        return pid;
      }),
    ),
  );
  applied();
  const exited = await Promise.all(targets.map((t, i) => tools.waitExit(t, pids[i], 5000)));
  if (!exited.every(Boolean)) throw new Error(`the killed process of ${targets.join(', ')} is still running`);
  return { heal: nothingToHeal, verified: `etcd process ${pids.join(', ')} exited` };
};

/** Whether the member's etcd runs now, as its agent sees it; undefined when the agent does not answer. */
function etcdRuns(tools: FaultTools, member: string): Promise<boolean | undefined> {
  return tools.pidOf(member).then(
    (pid) => pid !== undefined,
    () => undefined,
  );
}

/** SIGKILL and keep it down (the agent's hold file) until healed. */
const crash: FaultDriver = async (tools, { planned, targets, ttlMs, applied }) => {
  const { pids, heal } = await tools.whenUp(async () => ({
    pids: await Promise.all(targets.map((t) => tools.pidOf(t))),
    heal: await tools.injectAgents(targets, { type: 'crash', ttlMs }),
  }));
  applied();
  const abandon = async (problem: string): Promise<never> => {
    await heal().catch(() => undefined);
    throw new Error(problem);
  };
  // Down, and still down a moment later: a supervisor that ignores the hold file (the local one
  // restarts after 200 ms) would have started etcd again by then.
  let stayedDown = (await Promise.all(targets.map((t) => tools.waitDown(t, 5000)))).every(Boolean);
  if (stayedDown) {
    await sleep(Math.min(500, planned.durationMs / 2));
    stayedDown = (await Promise.all(targets.map((t) => etcdRuns(tools, t)))).every((runs) => runs === false);
  }
  if (!stayedDown) await abandon(`the crashed etcd of ${targets.join(', ')} did not stay down (does its supervisor honour the hold file <data-dir>.hold?)`);
  // And the run sees it gone: its own /health request to the member finds nobody.
  const answering = await Promise.all(targets.map((t) => tools.healthy(t)));
  if (answering.some(Boolean)) await abandon(`the crashed member ${targets.filter((_, i) => answering[i]).join(', ')} still answers /health`);
  // Still down when the fault heals: a hold that ends early (a supervisor that gives up waiting, a
  // restart that skips the hold) would make the fault a shorter one than the run reports. Not judged
  // once the agents' lease is near its end: then they may rightly have released the hold themselves.
  const leaseEndsMs = Date.now() + ttlMs - 1000;
  const healHeld = async (): Promise<string> => {
    const runs = Date.now() < leaseEndsMs ? await Promise.all(targets.map((t) => etcdRuns(tools, t))) : [];
    const healed = await heal();
    const early = targets.filter((_, i) => runs[i] === true);
    if (early.length > 0) throw new Error(`the crashed etcd of ${early.join(', ')} was running again before the crash healed: the hold did not last`);
    return `${healed}; ${targets.join(', ')} stayed down until healed`;
  };
  return { heal: healHeld, verified: `etcd process ${pids.join(', ')} exited, stays down and does not answer /health` };
};

/** SIGSTOP until healed: verified by /health no longer answering. */
const pause: FaultDriver = async (tools, { targets, ttlMs, applied }) => {
  const heal = await tools.whenUp(() => tools.injectAgents(targets, { type: 'pause', ttlMs }));
  applied();
  const answering = await Promise.all(targets.map((t) => tools.healthy(t)));
  if (answering.some(Boolean)) {
    await heal();
    throw new Error(`paused member ${targets.join(', ')} still answers /health`);
  }
  return { heal, verified: `${targets.join(', ')} stopped answering` };
};

/** Ballast bytes beside the member's data directory until healed. */
const diskPressure: FaultDriver = async (tools, { planned, targets, ttlMs, applied }) => {
  const bytes = numParam(planned, 'bytes');
  const heal = await tools.injectAgents(targets, { type: 'diskPressure', bytes, ttlMs });
  applied();
  return { heal, verified: `${bytes} bytes of ballast beside ${targets.join(', ')}` };
};

export const processDrivers = { kill, crash, pause, diskPressure } as const;
