// The etcd binaries are built with gofail failpoints compiled in, and the HTTP API controls them.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Etcd3 } from 'etcd3';
import { GofailClient } from '../../src/faults/index.ts';
import { LocalEtcdCluster } from '../../src/local/index.ts';

describe('gofail failpoints in the real etcd', { timeout: 120_000 }, () => {
  let cluster: LocalEtcdCluster;

  before(async () => {
    cluster = await LocalEtcdCluster.start({ size: 3, failpoints: true });
  });

  after(async () => {
    await cluster?.close();
  });

  test('lists the failpoints the robustness suite uses', async () => {
    const names = (await new GofailClient(cluster.members[0]!.failpointUrl!).list()).map((f) => f.name);
    for (const expected of ['raftBeforeSave', 'raftAfterSave', 'beforeCommit', 'afterCommit', 'defragBeforeCopy', 'compactBeforeCommitBatch', 'compactBeforeSetFinishedCompact']) {
      assert.ok(names.includes(expected), `${expected} missing from ${names.join(', ')}`);
    }
  });

  test('activates and deactivates a failpoint', async () => {
    const gofail = new GofailClient(cluster.members[0]!.failpointUrl!);
    await gofail.activate('beforeSendWatchResponse', 'sleep("10ms")');
    assert.deepEqual((await gofail.list()).find((f) => f.name === 'beforeSendWatchResponse'), { name: 'beforeSendWatchResponse', term: 'sleep("10ms")' });
    await gofail.deactivate('beforeSendWatchResponse');
    assert.equal((await gofail.list()).find((f) => f.name === 'beforeSendWatchResponse')?.term, '');
  });

  test('rejects an invalid term with a clear error', async () => {
    const gofail = new GofailClient(cluster.members[0]!.failpointUrl!);
    await assert.rejects(gofail.activate('raftBeforeSave', 'not-a-term('), /failpoint raftBeforeSave.*HTTP 400/);
  });

  test('raftBeforeSave=panic makes the member exit on the next write; after a restart it rejoins', async () => {
    const victim = cluster.members[1]!;
    await new GofailClient(victim.failpointUrl!).activate('raftBeforeSave', 'panic');

    const client = new Etcd3({ hosts: [cluster.members[0]!.endpoint, cluster.members[2]!.endpoint] });
    try {
      await client.put('/gofail/trigger').value('x');
      const exit = await victim.exited;
      assert.notEqual(exit.code, 0, `member exited with ${JSON.stringify(exit)}`);
      assert.equal(victim.running, false);

      // The failpoint was set over HTTP, so it is gone after the restart.
      await victim.restart();
      await client.put('/gofail/after-restart').value('y');
      const pinned = new Etcd3({ hosts: victim.endpoint });
      try {
        assert.equal(await pinned.get('/gofail/trigger').string(), 'x');
        assert.equal(await pinned.get('/gofail/after-restart').string(), 'y');
      } finally {
        pinned.close();
      }
    } finally {
      client.close();
    }
  });
});
