// A cluster's deletion waits for the runs against it to stop (they heal, check, report), but not forever:
// a run that hangs while stopping must not keep the cluster and its finalizer for good. Real kube-apiserver.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, test } from 'node:test';
import { clusterFinalizer, EtcdClusterReconciler } from '../../src/controller/etcdcluster/reconciler.ts';
import { EventRecorder } from '../../src/controller/kit/index.ts';
import { LocalPlacement } from '../../src/controller/placement/local.ts';
import { TestApiserver } from '../helpers/kube-apiserver.ts';
import { installCrds, kubectlOk } from '../helpers/operator.ts';
import { eventReasons, getCluster } from '../helpers/two-node.ts';

const namespace = 'grace';
const name = 'stuck';
let apiserver: TestApiserver;
let root: string;

before(async () => {
  apiserver = await TestApiserver.start();
  await installCrds(apiserver);
  await kubectlOk(apiserver, ['create', 'namespace', namespace]);
  root = mkdtempSync(path.join(os.tmpdir(), 'deletion-grace-'));
});

after(async () => {
  await apiserver?.close();
  if (root) rmSync(root, { recursive: true, force: true });
});

test('a deletion waits for the runs to stop, then removes the cluster anyway once the grace has passed, with a Warning Event', async () => {
  const manifest = path.join(root, 'cluster.yaml');
  writeFileSync(
    manifest,
    [
      'apiVersion: etcd.robustness.io/v1alpha1',
      'kind: EtcdCluster',
      'metadata:',
      `  name: ${name}`,
      `  namespace: ${namespace}`,
      `  finalizers: [${clusterFinalizer}]`,
      'spec:',
      '  version: "3.6.16"',
      '  replicas: 1',
      '',
    ].join('\n'),
  );
  await kubectlOk(apiserver, ['apply', '-f', manifest]);
  await kubectlOk(apiserver, ['-n', namespace, 'delete', 'etcdcluster', name, '--wait=false']);
  let stopCalls = 0;
  const reconciler = new EtcdClusterReconciler({
    kubeConfig: apiserver.kubeConfig,
    placement: new LocalPlacement({ root: path.join(root, 'members') }),
    events: new EventRecorder({ kubeConfig: apiserver.kubeConfig, controller: 'etcd.robustness.io/operator', instance: 'test' }),
    // A run that never finishes stopping.
    stopRuns: () => {
      stopCalls++;
      return 1;
    },
    runStopGraceMs: 1500,
  });
  try {
    const key = `${namespace}/${name}`;
    const first = await reconciler.reconcile(key);
    assert.ok((first.requeueAfterMs ?? 0) > 0, 'within the grace the deletion waits (requeue)');
    const waiting = await getCluster(apiserver, namespace, name);
    assert.ok(waiting, 'the cluster is still there while its run stops');
    assert.equal(waiting.status?.phase, 'Deleting');
    assert.deepEqual(waiting.metadata.finalizers, [clusterFinalizer]);
    await sleep(1600);
    await reconciler.reconcile(key);
    assert.equal(stopCalls, 2, 'each reconcile asks the runs to stop');
    assert.equal(await getCluster(apiserver, namespace, name), undefined, 'after the grace the finalizer is removed and the cluster goes');
    const reasons = (await eventReasons(apiserver, namespace, name)).map((e) => e.reason);
    assert.ok(reasons.includes('RunsDidNotStop'), JSON.stringify(reasons));
    assert.ok(reasons.includes('ClusterDeleted'), JSON.stringify(reasons));
  } finally {
    await reconciler.close();
  }
});
