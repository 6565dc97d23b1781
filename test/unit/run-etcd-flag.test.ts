import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseEtcdFlag, RunUsageError } from '../../src/commands/run.ts';

test('--etcd-flag: NAME=VALUE, with or without the leading dashes, becomes --NAME=VALUE; anything else is a usage error', () => {
  assert.equal(parseEtcdFlag('experimental-compaction-batch-limit=1'), '--experimental-compaction-batch-limit=1');
  assert.equal(parseEtcdFlag('--snapshot-count=1000'), '--snapshot-count=1000');
  assert.equal(parseEtcdFlag('log-level=debug=x'), '--log-level=debug=x');
  for (const bad of ['snapshot-count', '=1', '--Snapshot=1', '-x=1']) {
    assert.throws(() => parseEtcdFlag(bad), (error: unknown) => error instanceof RunUsageError && /--etcd-flag must be NAME=VALUE/.test(error.message), bad);
  }
});
