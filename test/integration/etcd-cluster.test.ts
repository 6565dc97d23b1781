// Smoke tests proving the environment is real: a 3-member etcd cluster of real processes, built by
// test/bin/build.sh, driven with the etcd3 client.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Etcd3 } from 'etcd3';
import { LocalEtcdCluster, LocalMemberRuntime } from '../../src/local/index.ts';

describe('real 3-member etcd cluster', { timeout: 120_000 }, () => {
  let cluster: LocalEtcdCluster;
  let client: Etcd3;

  before(async () => {
    cluster = await LocalEtcdCluster.start({ size: 3 });
    client = new Etcd3({ hosts: cluster.endpoints });
  });

  after(async () => {
    client?.close();
    await cluster?.close();
  });

  test('runs three distinct etcd processes of the pinned release', async () => {
    const pids = new Set(cluster.members.map((m) => m.pid));
    assert.equal(pids.size, 3);
    const response = await fetch(`${cluster.endpoints[0]}/version`);
    const version = (await response.json()) as { etcdserver: string };
    assert.equal(`v${version.etcdserver}`, cluster.binaries.version);
  });

  test('put, get and txn go through the cluster', async () => {
    await client.put('/smoke/a').value('1');
    assert.equal(await client.get('/smoke/a').string(), '1');

    const swapped = await client.if('/smoke/a', 'Value', '==', '1').then(client.put('/smoke/a').value('2')).else(client.get('/smoke/a')).commit();
    assert.equal(swapped.succeeded, true);
    const refused = await client.if('/smoke/a', 'Value', '==', '1').then(client.put('/smoke/a').value('3')).else(client.get('/smoke/a')).commit();
    assert.equal(refused.succeeded, false);
    assert.equal(await client.get('/smoke/a').string(), '2');
  });

  test('writes still succeed after one member is killed, and it rejoins after a restart', async () => {
    const victim = cluster.members[2]!;
    const exit = await victim.kill();
    assert.equal(exit?.signal, 'SIGKILL');
    assert.equal(victim.running, false);

    const survivors = new Etcd3({ hosts: cluster.members.slice(0, 2).map((m) => m.endpoint) });
    try {
      const put = await survivors.put('/smoke/after-kill').value('still-writable').exec();
      assert.ok(BigInt(put.header.revision) > 1n);
    } finally {
      survivors.close();
    }

    await victim.restart();
    const pinned = new Etcd3({ hosts: victim.endpoint });
    try {
      // A linearizable read on the restarted member sees the write it missed while down.
      assert.equal(await pinned.get('/smoke/after-kill').string(), 'still-writable');
    } finally {
      pinned.close();
    }
  });
});

describe('LocalMemberRuntime (the member runtime of run --local)', { timeout: 120_000 }, () => {
  test('create, member list and endpoints, kill, restart with its data, close', async () => {
    const runtime = new LocalMemberRuntime({ size: 1, failpoints: true });
    try {
      assert.throws(() => runtime.endpoints(), /not created yet/);
      await runtime.create();
      assert.equal(runtime.created, true);
      const [member] = runtime.members();
      assert.equal(member?.name, 'm1');
      assert.match(member.failpointUrl ?? '', /^http:\/\/127\.0\.0\.1:\d+$/);
      assert.deepEqual(runtime.endpoints(), [member.endpoint]);
      const client = new Etcd3({ hosts: runtime.endpoints() });
      try {
        await client.put('/runtime/kept').value('across a restart');
        await runtime.kill('m1');
        assert.equal(runtime.members()[0]?.running, false);
        await runtime.restart('m1');
        assert.equal(runtime.members()[0]?.running, true);
        assert.equal(await client.get('/runtime/kept').string(), 'across a restart');
        await runtime.stop('m1');
        assert.equal(runtime.members()[0]?.running, false);
      } finally {
        client.close();
      }
      await assert.rejects(() => runtime.kill('m9'), /no member named m9/);
    } finally {
      await runtime.close();
    }
    assert.throws(() => runtime.members(), /not created yet/);
  });
});
