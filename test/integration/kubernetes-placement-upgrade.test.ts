// KubernetesPlacement.upgradeMember against a real kube-apiserver. No kubelet runs: the test binds a Pod
// to a node so that a graceful delete leaves it terminating, and plays the kubelet's final delete. The member's version is recorded on its PVC before its Pod is replaced by
// one with the new version's image; the other members are not touched; a call is idempotent and finishes
// what a timed-out one left; a version that is no image tag is refused with nothing changed; a restart
// of a member keeps its recorded version whatever version its launch carries.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { CoreV1Api, type V1PersistentVolumeClaim, type V1Pod } from '@kubernetes/client-node';
import type { EtcdCluster } from '../../src/domain/index.ts';
import { KubernetesPlacement, PlacementError } from '../../src/controller/placement/kubernetes.ts';
import { launchAnnotation, versionAnnotation } from '../../src/controller/placement/kubernetes-manifests.ts';
import { TestApiserver } from '../helpers/kube-apiserver.ts';
import { placementFixtures } from '../helpers/placement-fixtures.ts';

const namespace = 'etcd-upgrade';
const operatorImage = 'registry.example/etcd-robustness:0.1.0';
const previous = '3.5.35';
const current = '3.6.16';

const { etcdCluster, launchOf } = placementFixtures(namespace, { version: previous });

const statusCode = (error: unknown): number | undefined => (error as { code?: number }).code;
const etcdImageOf = (pod: V1Pod | undefined): string | undefined => pod?.spec?.containers.find((c) => c.name === 'etcd')?.image;

describe('kubernetes placement: upgradeMember on a real kube-apiserver', { timeout: 180_000 }, () => {
  let apiserver: TestApiserver;
  let core: CoreV1Api;
  let placement: KubernetesPlacement;

  before(async () => {
    apiserver = await TestApiserver.start();
    core = apiserver.kubeConfig.makeApiClient(CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: namespace } } });
    placement = new KubernetesPlacement({ kubeConfig: apiserver.kubeConfig, operatorImage, deleteTimeoutMs: 20_000, pollIntervalMs: 100 });
  });

  after(async () => {
    await placement?.close();
    await apiserver?.close();
  });

  const readPod = (name: string): Promise<V1Pod | undefined> =>
    core.readNamespacedPod({ name, namespace }).catch((error: unknown) => {
      if (statusCode(error) === 404) return undefined;
      throw error;
    });
  const readClaim = async (name: string): Promise<V1PersistentVolumeClaim> => core.readNamespacedPersistentVolumeClaim({ name, namespace });
  /**
   * The Pod is bound to a node (as by a scheduler), so a graceful delete leaves it terminating (with its
   * deletionTimestamp) until the kubelet, which this test plays, deletes it for good.
   */
  const holdTermination = async (name: string): Promise<void> => {
    await core.createNamespacedPodBinding({ name, namespace, body: { metadata: { name }, target: { apiVersion: 'v1', kind: 'Node', name: 'node-a' } } });
  };
  /** The kubelet saw etcd exit: the final delete. */
  const releaseTermination = async (name: string): Promise<void> => {
    await core.deleteNamespacedPod({ name, namespace, gracePeriodSeconds: 0 }).catch((error: unknown) => {
      if (statusCode(error) !== 404) throw error;
    });
  };
  const untilDeleting = async (name: string): Promise<V1Pod> => {
    for (let i = 0; i < 100; i++) {
      const pod = await readPod(name);
      if (pod?.metadata?.deletionTimestamp !== undefined) return pod;
      await sleep(100);
    }
    throw new Error(`Pod ${name} was never deleted`);
  };
  const placedVersions = async (cluster: EtcdCluster): Promise<Record<string, string | undefined>> =>
    Object.fromEntries((await placement.listMembers(cluster)).map((m) => [m.name, m.version]));

  const up = etcdCluster('up');

  test('members start on spec.version: recorded on the PVC and the Pod, the image of that version', async () => {
    await placement.ensureCluster(up);
    for (let i = 0; i < 3; i++) await placement.startMember(up, launchOf('up', i));
    for (let i = 0; i < 3; i++) {
      const claim = await readClaim(`up-${i}-data`);
      assert.equal(claim.metadata?.annotations?.[versionAnnotation], previous);
      assert.deepEqual(JSON.parse(claim.metadata?.annotations?.[launchAnnotation] ?? '{}'), launchOf('up', i), 'the launch annotation carries no version');
      const pod = (await readPod(`up-${i}`))!;
      assert.equal(pod.metadata?.annotations?.[versionAnnotation], previous);
      assert.equal(etcdImageOf(pod), `gcr.io/etcd-development/etcd:v${previous}`);
      // v3.5.35 serves /livez: the startup and liveness probes are there.
      assert.equal(pod.spec?.containers.find((c) => c.name === 'etcd')?.livenessProbe?.httpGet?.path, '/livez');
    }
    assert.deepEqual(await placedVersions(up), { 'up-0': previous, 'up-1': previous, 'up-2': previous });
  });

  test('upgradeMember records the version on the PVC, deletes the Pod gracefully and recreates it on the new image', async () => {
    const others = await Promise.all(['up-1', 'up-2'].map(async (n) => (await readPod(n))!.metadata!.uid));
    const old = (await readPod('up-0'))!;
    await holdTermination('up-0');
    const upgrading = placement.upgradeMember(up, 'up-0', current);
    const deleting = await untilDeleting('up-0');
    assert.equal(deleting.metadata?.uid, old.metadata?.uid);
    assert.equal(deleting.metadata?.deletionGracePeriodSeconds, 30, 'the Pod is deleted with its grace period');
    assert.equal((await readClaim('up-0-data')).metadata?.annotations?.[versionAnnotation], current, 'the version is recorded before the Pod goes');
    assert.equal((await placedVersions(up))['up-0'], previous, 'the terminating Pod still runs the old version');
    await sleep(300);
    assert.equal((await readPod('up-0'))?.metadata?.uid, old.metadata?.uid, 'no new Pod while the old one terminates');
    await releaseTermination('up-0');
    await upgrading;

    const pod = (await readPod('up-0'))!;
    assert.notEqual(pod.metadata?.uid, old.metadata?.uid, 'a new Pod');
    assert.equal(etcdImageOf(pod), `gcr.io/etcd-development/etcd:v${current}`);
    assert.equal(pod.metadata?.annotations?.[versionAnnotation], current);
    assert.equal(pod.metadata?.annotations?.[launchAnnotation], old.metadata?.annotations?.[launchAnnotation], 'same launch: same name, flags and data');
    assert.deepEqual(
      pod.spec?.containers.find((c) => c.name === 'etcd')?.args,
      old.spec?.containers.find((c) => c.name === 'etcd')?.args,
      'etcd keeps its command line',
    );
    assert.deepEqual(pod.spec?.volumes, old.spec?.volumes, 'on the same PVC');
    assert.deepEqual(await placedVersions(up), { 'up-0': current, 'up-1': previous, 'up-2': previous });
    assert.deepEqual(await Promise.all(['up-1', 'up-2'].map(async (n) => (await readPod(n))!.metadata!.uid)), others, 'the other members are not touched');
  });

  test('upgradeMember again with the same version changes nothing', async () => {
    const [pod, claim] = [(await readPod('up-0'))!, await readClaim('up-0-data')];
    await placement.upgradeMember(up, 'up-0', current);
    assert.equal((await readPod('up-0'))?.metadata?.resourceVersion, pod.metadata?.resourceVersion);
    assert.equal((await readClaim('up-0-data')).metadata?.resourceVersion, claim.metadata?.resourceVersion);
  });

  test('a version that is no image tag is an error naming it, and nothing changes', async () => {
    const [pod, claim] = [(await readPod('up-1'))!, await readClaim('up-1-data')];
    for (const bad of ['latest', '3.7', 'v3.6.16']) {
      await assert.rejects(placement.upgradeMember(up, 'up-1', bad), (error: unknown) => {
        assert.ok(error instanceof PlacementError, String(error));
        assert.equal(error.statusCode, 422);
        assert.ok(error.message.includes(JSON.stringify(bad)), error.message);
        return true;
      });
    }
    assert.equal((await readPod('up-1'))?.metadata?.resourceVersion, pod.metadata?.resourceVersion);
    assert.equal((await readClaim('up-1-data')).metadata?.resourceVersion, claim.metadata?.resourceVersion);
  });

  test('a call that timed out waiting for the old Pod is finished by the next one', async () => {
    const impatient = new KubernetesPlacement({ kubeConfig: apiserver.kubeConfig, operatorImage, deleteTimeoutMs: 500, pollIntervalMs: 100 });
    const old = (await readPod('up-1'))!;
    await holdTermination('up-1');
    await assert.rejects(impatient.upgradeMember(up, 'up-1', current), (error: unknown) => error instanceof PlacementError && error.statusCode === 504);
    assert.equal((await readClaim('up-1-data')).metadata?.annotations?.[versionAnnotation], current);
    assert.equal((await readPod('up-1'))?.metadata?.uid, old.metadata?.uid, 'still terminating');
    const finishing = placement.upgradeMember(up, 'up-1', current);
    await sleep(300);
    await releaseTermination('up-1');
    await finishing;
    const pod = (await readPod('up-1'))!;
    assert.notEqual(pod.metadata?.uid, old.metadata?.uid);
    assert.equal(etcdImageOf(pod), `gcr.io/etcd-development/etcd:v${current}`);
  });

  test('a member whose Pod is gone is upgraded on its PVC; startMember recreates it on the recorded version', async () => {
    await core.deleteNamespacedPod({ name: 'up-2', namespace });
    assert.equal(await readPod('up-2'), undefined);
    const claimBefore = await readClaim('up-2-data');
    // A rollback target is fine too: the version is the caller's choice, not checked against spec.version.
    await placement.upgradeMember(up, 'up-2', current);
    assert.equal((await readClaim('up-2-data')).metadata?.annotations?.[versionAnnotation], current);
    assert.notEqual((await readClaim('up-2-data')).metadata?.resourceVersion, claimBefore.metadata?.resourceVersion);
    // ... it creates the Pod itself, on the new version.
    const pod = (await readPod('up-2'))!;
    assert.equal(etcdImageOf(pod), `gcr.io/etcd-development/etcd:v${current}`);
    // A reconcile restarting the member with the spec's (old) version in its launch does not undo it.
    await core.deleteNamespacedPod({ name: 'up-2', namespace });
    await placement.startMember(up, { ...launchOf('up', 2), version: previous });
    assert.equal(etcdImageOf(await readPod('up-2')), `gcr.io/etcd-development/etcd:v${current}`);
    assert.deepEqual(await placedVersions(up), { 'up-0': current, 'up-1': current, 'up-2': current });
  });

  test('rolling back records and runs the older version', async () => {
    await placement.upgradeMember(up, 'up-2', previous);
    assert.equal(etcdImageOf(await readPod('up-2')), `gcr.io/etcd-development/etcd:v${previous}`);
    assert.equal((await readClaim('up-2-data')).metadata?.annotations?.[versionAnnotation], previous);
    assert.equal((await placedVersions(up))['up-2'], previous);
  });

  test('Pods made before versions were recorded report the version of their image tag', async () => {
    const pod = (await readPod('up-0'))!;
    pod.metadata!.annotations = Object.fromEntries(Object.entries(pod.metadata!.annotations ?? {}).filter(([key]) => key !== versionAnnotation));
    await core.replaceNamespacedPod({ name: 'up-0', namespace, body: pod });
    assert.equal((await placedVersions(up))['up-0'], current);
  });

  test('a custom tag names the image of spec.version only; a member on another version runs v<version>', async () => {
    const tagged = etcdCluster('tagged', { image: { repository: 'registry.example/etcd', tag: 'custom-build', failpoints: true, pullPolicy: 'Always' } });
    await placement.ensureCluster(tagged);
    await placement.startMember(tagged, launchOf('tagged', 0));
    assert.equal(etcdImageOf(await readPod('tagged-0')), 'registry.example/etcd-failpoints:custom-build');
    assert.equal((await placedVersions(tagged))['tagged-0'], previous, 'the version is the annotation, not the custom tag');
    await placement.upgradeMember(tagged, 'tagged-0', current);
    assert.equal(etcdImageOf(await readPod('tagged-0')), `registry.example/etcd-failpoints:v${current}`);
    await placement.deleteCluster(tagged);
  });

  test('upgradeMember of a member without data is a 404 naming its PVC', async () => {
    await assert.rejects(placement.upgradeMember(up, 'up-9', current), (error: unknown) => {
      assert.ok(error instanceof PlacementError, String(error));
      assert.equal(error.statusCode, 404);
      assert.match(error.message, /up-9-data/);
      return true;
    });
    await placement.deleteCluster(up);
  });
});
