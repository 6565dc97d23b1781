import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { MemberRuntime, PlannedFault } from '../../src/domain/index.ts';
import { compactionRevision, FaultExecutor } from '../../src/faults/index.ts';
import type { CompactAt } from '../../src/faults/index.ts';

describe('compaction faults: the revision parameter', () => {
  test('trailing compacts 10 below the newest revision seen, latest at it; never below 1', () => {
    assert.equal(compactionRevision('trailing', 500), 490);
    assert.equal(compactionRevision('latest', 500), 500);
    assert.equal(compactionRevision('trailing', 4), 1);
    assert.equal(compactionRevision('latest', 0), 1);
  });

  test('the compact fault hands its revision parameter to the compact trigger (trailing when absent)', async () => {
    // One member on a closed port: `compact` needs no agent, only the trigger.
    const runtime = {
      clusterName: 'c',
      created: false,
      members: () => [{ name: 'm0', endpoint: 'http://127.0.0.1:9', running: true }],
    } as unknown as MemberRuntime;
    const asked: CompactAt[] = [];
    const executor = new FaultExecutor({
      runtime,
      agentToken: undefined,
      triggers: {
        write: () => Promise.resolve(),
        defragment: () => Promise.resolve(),
        compact: (at) => {
          asked.push(at);
          return Promise.resolve();
        },
      },
      clock: () => 0,
      onEvent: () => undefined,
      recoveryTimeoutMs: 1000,
    });
    try {
      const planned = (params: PlannedFault['params']): PlannedFault => ({ round: 0, atMs: 0, fault: 'compact', target: 'random', params, durationMs: 0, pick: 0 });
      const cases: PlannedFault['params'][] = [{ revision: 'latest' }, { revision: 'trailing' }, {}];
      for (const params of cases) {
        const active = await executor.inject(planned(params));
        assert.ok(active);
        await executor.heal(active);
      }
      assert.deepEqual(asked, ['latest', 'trailing', 'trailing']);
    } finally {
      executor.close();
    }
  });
});
