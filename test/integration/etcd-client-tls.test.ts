// Client TLS against real etcd processes serving https with certificates made for this test: the
// reconciler's observation and membership client, the run engine (probes, watches) and the fault
// executor (cluster view, health, HashKV) all reach the members through the CA the runtime carries, and
// nothing gets in without it. Also: the client TLS flags a member Pod gets let a CA-only client in,
// where a client CA on the listener would have shut the operator out.
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { observeEtcd, withEtcd } from '../../src/controller/etcdcluster/observe.ts';
import { memberPaths } from '../../src/controller/placement/kubernetes-manifests.ts';
import { etcdArgs } from '../../src/controller/placement/kubernetes-pod.ts';
import type { EtcdClientTls } from '../../src/domain/index.ts';
import { LocalEtcdCluster, LocalMemberRuntime } from '../../src/local/index.ts';
import { memberHealth } from '../../src/probes/health.ts';
import { executeRun } from '../../src/run/engine.ts';
import { defaultRobustnessRun } from '../../src/run/manifest.ts';
import { Registry, RunMetrics } from '../../src/run/metrics.ts';
import { placementFixtures } from '../helpers/placement-fixtures.ts';
import { TestCa, type IssuedCertificate } from '../helpers/tls.ts';

const loopbackServer = { commonName: 'etcd-member', usage: 'serverAuth', ips: ['127.0.0.1'], dnsNames: ['localhost'] } as const;

describe('etcd client TLS on real members', { timeout: 240_000 }, () => {
  let ca: TestCa;
  /** A CA that signed nothing the members serve. */
  let otherCa: TestCa;
  let server: IssuedCertificate;
  let runtime: LocalMemberRuntime;
  let workDir: string;

  before(async () => {
    ca = TestCa.create();
    otherCa = TestCa.create('another-ca');
    server = ca.issue('server', loopbackServer);
    workDir = mkdtempSync(path.join(os.tmpdir(), 'etcd-client-tls-'));
    runtime = new LocalMemberRuntime({ size: 3, failpoints: false, agents: {}, clientTls: { certFile: server.certFile, keyFile: server.keyFile, caFile: ca.caFile } });
    await runtime.create();
  });

  after(async () => {
    await runtime?.close();
    if (workDir) rmSync(workDir, { recursive: true, force: true });
    ca?.close();
    otherCa?.close();
  });

  test('the members serve https; observeEtcd and withEtcd get in with the CA, and without it see nothing', async () => {
    const endpoints = runtime.endpoints();
    assert.equal(endpoints.length, 3);
    for (const url of endpoints) assert.match(url, /^https:\/\/127\.0\.0\.1:\d+$/);
    const tls = runtime.clientTls;
    assert.ok(tls, 'the runtime carries the CA');
    assert.deepEqual(tls.ca, ca.ca);

    const view = await observeEtcd(endpoints, tls);
    assert.ok(view, 'the cluster answers a client that has its CA');
    assert.deepEqual(view.members.map((m) => m.name).sort(), ['m1', 'm2', 'm3']);
    for (const m of view.members) {
      assert.ok(m.status?.hasLeader, `${m.name} answered its status call over TLS`);
      assert.match(m.clientUrls[0] ?? '', /^https:/);
    }
    assert.ok(view.leaderId !== undefined && view.members.some((m) => m.id === view.leaderId));

    assert.equal(await observeEtcd(endpoints, undefined), undefined, 'without the CA (system roots only) no member is trusted');
    assert.equal(await observeEtcd(endpoints, { ca: otherCa.ca }), undefined, 'nor with a CA that did not sign them');

    const revision = await withEtcd(endpoints, tls, async (c) => {
      await c.put('/client-tls/key').value('v');
      return Number((await c.kv.range({ key: Buffer.from('/client-tls/key') })).header.revision);
    });
    assert.ok(revision > 0);
    await assert.rejects(
      withEtcd(endpoints, { ca: otherCa.ca }, (c) => c.get('/client-tls/key').string()),
      (error: unknown) => error instanceof Error,
      'a membership client with the wrong CA fails',
    );

    const healthy = await memberHealth(endpoints[0]!, 2000, tls);
    assert.equal(healthy.healthy, true, healthy.detail);
    const untrusted = await memberHealth(endpoints[0]!, 2000);
    assert.equal(untrusted.healthy, false);
    assert.match(untrusted.detail, /certificate/i, 'the /health check without the CA fails on the certificate');
  });

  test('a run over TLS: probes, watches and a kill of the leader through the executor end linearizable, HashKV equal', async () => {
    const run = defaultRobustnessRun({ name: 'tls-run', defaultMode: 'exclusive' });
    run.spec.seed = 11;
    run.spec.durationMs = 7000;
    run.spec.traffic.qps = { target: 150, burst: 150, min: 0 };
    run.spec.watch.progressIntervalMs = 250;
    run.spec.faults = {
      choices: [{ fault: 'kill', weight: 1, target: 'leader', params: {} }],
      maxConcurrentFaults: 1,
      intervalMs: { min: 2000, max: 2000 },
      durationMs: { min: 0, max: 0 },
      recoveryTimeoutMs: 30_000,
    };
    const result = await executeRun({
      run,
      clusterName: 'tls',
      members: runtime.members(),
      runtime,
      agentToken: runtime.agentToken!,
      historyDir: path.join(workDir, 'tls-run', 'history'),
      metrics: new RunMetrics(new Registry(), { run: 'tls-run', cluster: 'tls' }),
    });
    assert.equal(result.verdict, 'linearizable', result.reason);
    assert.ok(result.operations.ok > 300, `traffic went over TLS: ${JSON.stringify(result.operations)}`);
    assert.ok(result.watch.streams > 0 && result.watch.events > 0, `watches ran over TLS: ${JSON.stringify(result.watch)}`);
    assert.ok(result.report && result.report.watch.checked > 0, 'watch streams were checked');
    assert.deepEqual(result.report.watch.violations, []);
    // The executor found the leader (member list and status over TLS), killed it and saw it healthy again.
    const failed = result.faults.events.filter((e) => e.phase === 'failed');
    assert.deepEqual(failed, [], failed.map((e) => e.detail).join('; '));
    assert.ok(result.faults.injected >= 1, 'the kill was injected');
    assert.ok(result.faults.events.some((e) => e.phase === 'verified'), 'and verified');
    // HashKV through each member's JSON gateway, over https with the CA.
    assert.equal(result.hashKv?.equal, true, result.hashKv?.detail);
  });

  test("a member started with the Pod's client TLS flags lets a CA-only client in; a client CA on the listener would not", async () => {
    // The Secret as the Pod mounts it: tls.crt, tls.key, ca.crt in one folder.
    const secretDir = path.join(workDir, 'client-tls-secret');
    mkdirSync(secretDir, { recursive: true });
    copyFileSync(server.certFile, path.join(secretDir, 'tls.crt'));
    copyFileSync(server.keyFile, path.join(secretDir, 'tls.key'));
    copyFileSync(ca.caFile, path.join(secretDir, 'ca.crt'));
    const { etcdCluster, launchOf } = placementFixtures('tls', { version: '3.6.16' });
    const cluster = etcdCluster('secure', { tls: { client: { secretName: 'secure-client-tls' } } });
    const podTlsFlags = etcdArgs(cluster, launchOf('secure', 0), 'cluster.local')
      .filter((flag) => flag.includes(memberPaths.clientTls))
      .map((flag) => flag.replace(memberPaths.clientTls, secretDir));
    assert.deepEqual(podTlsFlags, [`--cert-file=${secretDir}/tls.crt`, `--key-file=${secretDir}/tls.key`]);

    const files = { certFile: path.join(secretDir, 'tls.crt'), keyFile: path.join(secretDir, 'tls.key'), caFile: path.join(secretDir, 'ca.crt') };
    const asPod = await LocalEtcdCluster.start({ size: 1, clientTls: files, extraArgs: podTlsFlags });
    try {
      assert.equal(asPod.clientTls?.clientCertificate, undefined);
      const view = await observeEtcd(asPod.endpoints, asPod.clientTls);
      assert.equal(view?.members.length, 1, 'the CA alone is enough');
    } finally {
      await asPod.close();
    }

    // The counter-check: with a client CA (--trusted-ca-file) etcd demands a client certificate. A CA-only
    // client is refused; one that presents a certificate the CA signed (EtcdClientTls.clientCertificate) gets in.
    const client = ca.issue('client', { commonName: 'etcd-robustness-operator', usage: 'clientAuth' });
    const demanding = await LocalEtcdCluster.start({ size: 1, clientTls: { ...files, clientCertificate: { certFile: client.certFile, keyFile: client.keyFile } } });
    try {
      assert.ok(demanding.members[0]!.running);
      assert.equal(await observeEtcd(demanding.endpoints, { ca: ca.ca }), undefined, 'the CA alone is refused');
      const withCertificate: EtcdClientTls = { ca: ca.ca, clientCertificate: { cert: client.cert, key: client.key } };
      assert.deepEqual(demanding.clientTls, withCertificate);
      assert.equal((await observeEtcd(demanding.endpoints, withCertificate))?.members.length, 1, 'a client certificate gets in');
    } finally {
      await demanding.close();
    }
  });
});
