import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { etcdFlagName, etcdFlagProblem, withEtcdFlags } from '../../src/local/index.ts';

describe('per-run etcd flags (run --local --etcd-flag)', () => {
  test('a flag is --name=value or a bare --name; anything else says why not', () => {
    assert.equal(etcdFlagProblem('--snapshot-count=10'), undefined);
    assert.equal(etcdFlagProblem('--experimental-watch-progress-notify-interval=10ms'), undefined);
    assert.equal(etcdFlagProblem('--experimental-initial-corrupt-check'), undefined);
    assert.match(etcdFlagProblem('snapshot-count=10') ?? '', /must start with "--"/);
    assert.match(etcdFlagProblem('-snapshot-count=10') ?? '', /must start with "--"/);
    assert.match(etcdFlagProblem('--Snapshot_Count=10') ?? '', /is not an etcd flag name/);
    assert.match(etcdFlagProblem('--=10') ?? '', /is not an etcd flag name/);
    assert.match(etcdFlagProblem('--initial-cluster=a=http://x') ?? '', /set by the local runtime/);
    assert.equal(etcdFlagName('--initial-cluster=a=http://x'), '--initial-cluster');
  });

  test('a per-run flag replaces the runtime flag of the same name and comes last', () => {
    const base = ['--compaction-batch-limit=10', '--snapshot-count=200', '--experimental-snapshot-catchup-entries=50'];
    assert.deepEqual(withEtcdFlags(base, ['--snapshot-count=10', '--experimental-watch-progress-notify-interval=10ms']), [
      '--compaction-batch-limit=10',
      '--experimental-snapshot-catchup-entries=50',
      '--snapshot-count=10',
      '--experimental-watch-progress-notify-interval=10ms',
    ]);
    assert.deepEqual(withEtcdFlags([], ['--snapshot-count=10']), ['--snapshot-count=10']);
  });
});
