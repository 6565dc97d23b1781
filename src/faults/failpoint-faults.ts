/**
 * gofail failpoint faults: the member's agent arms the failpoint, the executor makes etcd run the code
 * path it sits on (a write, a defragment, a compaction, a raft snapshot), and the member panics there.
 */
import type { LinkRule } from '../domain/index.ts';
import { logger } from '../log.ts';
import { faultDefinition } from './catalog.ts';
import { compactAtParam, type FaultDriver, type FaultTools, FaultUnavailableError, idHex } from './driver.ts';
import { linksBetween } from './targets.ts';

/** Every failpoint fault: the catalog entry says which failpoint, with which term, on which code path. */
const panicAtFailpoint: FaultDriver = async (tools, { planned, targets, others, ids, ttlMs, applied }) => {
  const failpoint = faultDefinition(planned.fault).failpoint;
  if (!failpoint) throw new FaultUnavailableError(`fault ${planned.fault} has no implementation`);
  const [target] = targets as [string];
  const { before, heal } = await tools.whenUp(async () => ({
    before: await tools.pidOf(target),
    heal: await tools.injectAgents([target], { type: 'failpoint', name: failpoint.name, term: failpoint.term, ttlMs }),
  }));
  applied();
  const panicked = { heal: () => heal().catch(() => 'the failpoint went with the panicked process'), verified: `${target} panicked at ${failpoint.name} (pid ${before ?? '?'} exited)` };
  if (failpoint.trigger === 'snapshot') {
    // Whether the leader needs a snapshot depends on where its raft log was last compacted: retry.
    for (let attempt = 0; attempt < 3; attempt++) {
      await makeLeaderSendSnapshot(tools, target, others, ids, ttlMs);
      if (await tools.waitExit(target, before, 5000)) {
        return panicked;
      }
    }
  }
  const compactAt = compactAtParam(planned);
  const poke = async (): Promise<void> => {
    if (failpoint.trigger === 'write' || failpoint.trigger === 'snapshot') await tools.triggers.write();
    else if (failpoint.trigger === 'defragment') await tools.triggers.defragment(target);
    else await tools.triggers.compact(compactAt);
  };
  const exited = await tools.waitExit(target, before, 10_000, poke);
  if (!exited) {
    await heal().catch(() => undefined);
    throw new Error(`${target} did not panic at ${failpoint.name} within 10 s`);
  }
  return panicked;
};

/**
 * A member gets a snapshot when the leader has compacted its raft log past what the member has: cut
 * the member off, write more entries than the snapshot interval plus the catch-up log the local
 * runtime configures (--snapshot-count=200, --snapshot-catchup-entries=50), then let it back.
 */
async function makeLeaderSendSnapshot(tools: FaultTools, target: string, others: string[], ids: Map<string, string>, ttlMs: number): Promise<void> {
  const rules: LinkRule[] = linksBetween([target], others).map((l) => ({ ...l, action: 'blackhole' }));
  const peers = Object.fromEntries([...ids].map(([id, name]) => [idHex(id), name]));
  const healNetwork = await tools.injectAgents([target, ...others], { type: 'network', rules, ttlMs, peers });
  try {
    const t0 = Date.now();
    for (let i = 0; i < 400; i++) await tools.triggers.write([target]);
    logger.debug('snapshot trigger: wrote 400 entries while the member was cut off', { target, ms: Date.now() - t0 });
  } finally {
    await healNetwork();
  }
}

/** The failpoint faults of the catalog, each by name (one missing here is a compile error in drivers.ts). */
export const failpointDrivers = {
  raftBeforeSavePanic: panicAtFailpoint,
  raftAfterSavePanic: panicAtFailpoint,
  backendBeforeCommitPanic: panicAtFailpoint,
  backendAfterCommitPanic: panicAtFailpoint,
  defragBeforeCopyPanic: panicAtFailpoint,
  defragBeforeRenamePanic: panicAtFailpoint,
  compactBeforeCommitBatchPanic: panicAtFailpoint,
  compactAfterCommitBatchPanic: panicAtFailpoint,
  compactBeforeSetFinishedCompactPanic: panicAtFailpoint,
  raftBeforeApplySnapPanic: panicAtFailpoint,
} as const;
