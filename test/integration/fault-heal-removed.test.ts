/**
 * A fault whose member the cluster removed while it was in place (a two-node failover replaces a member)
 * heals without a failure: the member took its agent and rules with it. Real members, agents and proxies.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { FaultEvent, PlannedFault } from '../../src/domain/index.ts';
import { FaultExecutor } from '../../src/faults/executor.ts';
import { LocalMemberRuntime } from '../../src/local/runtime.ts';

describe('healing a fault after its member was removed', () => {
  let runtime: LocalMemberRuntime;
  before(async () => {
    runtime = new LocalMemberRuntime({ size: 3, failpoints: true, agents: {} });
    await runtime.create();
  });
  after(async () => {
    await runtime?.close();
  });

  test('the heal of a partition names the removed member and records no failure', async () => {
    const events: FaultEvent[] = [];
    let removed: string | undefined;
    // The runtime as the executor sees it: the same members, less the one "removed" mid-fault.
    const view = Object.create(runtime) as LocalMemberRuntime;
    view.members = () => runtime.members().filter((m) => m.name !== removed);
    const executor = new FaultExecutor({
      runtime: view,
      agentToken: runtime.agentToken,
      triggers: { write: () => Promise.resolve(), defragment: () => Promise.resolve(), compact: () => Promise.resolve() },
      clock: () => performance.now() * 1e6,
      onEvent: (event) => events.push(event),
      recoveryTimeoutMs: 10_000,
      ttlSlackMs: 5000,
    });
    try {
      const planned: PlannedFault = { round: 0, atMs: 0, fault: 'partition', target: 'member', member: 'm3', params: { mode: 'isolate' }, durationMs: 2000, pick: 0 };
      const active = await executor.inject(planned);
      assert.ok(active, JSON.stringify(events));
      removed = 'm3';
      await executor.heal(active);
      const last = events.at(-1)!;
      assert.equal(last.phase, 'heal', JSON.stringify(last));
      assert.match(last.detail ?? '', /m3 removed from the cluster since/);
      assert.ok(!events.some((e) => e.phase === 'failed'), JSON.stringify(events));
    } finally {
      removed = undefined;
      await executor.healAll();
      executor.close();
    }
  });
});
