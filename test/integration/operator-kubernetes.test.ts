// The operator with the `kubernetes` member runtime against a real kube-apiserver. No kubelet, scheduler
// or controller manager runs here: the test writes Pod status through the status subresource the way a
// kubelet would, and removes the PVC-protection finalizer of deleted PVCs the way kube-controller-manager
// would. etcd at the Pods' DNS names (<member>.<cluster>-peers.<ns>.svc.cluster.local) cannot be reached
// from here, so the cluster stays at its first member: what is checked is what the operator creates, what
// it does next and what it does not do while etcd does not answer.
import { readFileSync } from 'node:fs';
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoreV1Api, PolicyV1Api, type V1ContainerStatus, type V1OwnerReference, type V1Pod } from '@kubernetes/client-node';
import { Operator } from '../../src/controller/operator.ts';
import { ConfigMapReportStore } from '../../src/controller/report-store/index.ts';
import { KubernetesPlacement } from '../../src/controller/placement/kubernetes.ts';
import type { Condition, EtcdCluster } from '../../src/domain/index.ts';
import { TestApiserver } from '../helpers/kube-apiserver.ts';
import { eventually, installCrds, kubectlJson, kubectlOk, reconcileTotal } from '../helpers/operator.ts';

const namespace = 'operator-kubernetes';
const cluster = 'demo';
const operatorImage = 'example.test/op:1';
const selector = `etcd.robustness.io/cluster=${cluster}`;
const fqdn = (member: string): string => `${member}.${cluster}-peers.${namespace}.svc.cluster.local`;

const statusCode = (error: unknown): number | undefined => (error as { code?: number }).code;
/** The client's models are classes (Dates inside): compare their JSON. */
const json = (value: unknown): unknown => (value === undefined ? undefined : JSON.parse(JSON.stringify(value)));

interface EventList {
  items: { reason: string; note?: string; type: string; regarding: { kind: string; name: string; uid?: string }; reportingController?: string }[];
}

describe('the operator with --runtime=kubernetes on a real kube-apiserver', { timeout: 240_000 }, () => {
  let apiserver: TestApiserver;
  let operator: Operator | undefined;
  let core: CoreV1Api;
  let policy: PolicyV1Api;
  /** The EtcdCluster's conditions as first written: their lastTransitionTime never changes in this test. */
  let firstConditions: Condition[];
  let uid: string;

  before(async () => {
    apiserver = await TestApiserver.start();
    core = apiserver.kubeConfig.makeApiClient(CoreV1Api);
    policy = apiserver.kubeConfig.makeApiClient(PolicyV1Api);
    await installCrds(apiserver);
    await kubectlOk(apiserver, ['create', 'namespace', namespace]);
    operator = await Operator.start({
      kubeConfig: apiserver.kubeConfig,
      placement: new KubernetesPlacement({ kubeConfig: apiserver.kubeConfig, operatorImage }),
      reports: new ConfigMapReportStore({ kubeConfig: apiserver.kubeConfig }),
      namespaces: [namespace],
      identity: 'operator-kubernetes-test',
      host: '127.0.0.1',
      metricsPort: 0,
      healthPort: 0,
    });
  });

  after(async () => {
    await operator?.close();
    await apiserver?.close();
  });

  const getCluster = (): Promise<EtcdCluster | undefined> => kubectlJson<EtcdCluster>(apiserver, ['-n', namespace, 'get', 'etcdcluster', cluster]);
  const clusterState = async (): Promise<string> => JSON.stringify((await getCluster()) ?? null);
  const pods = async (): Promise<V1Pod[]> => (await core.listNamespacedPod({ namespace, labelSelector: selector })).items;
  const claims = async () => (await core.listNamespacedPersistentVolumeClaim({ namespace, labelSelector: selector })).items;
  const readPod = (name: string): Promise<V1Pod | undefined> =>
    core.readNamespacedPod({ name, namespace }).catch((error: unknown) => {
      if (statusCode(error) === 404) return undefined;
      throw error;
    });
  const reconciles = async (): Promise<number> => (await reconcileTotal(operator!.metricsUrl, 'etcdcluster')).total;
  const condition = (c: EtcdCluster | undefined, type: string): Condition | undefined => c?.status?.conditions?.find((x) => x.type === type);

  /** What a kubelet writes once the Pod's containers run and etcd's readiness probe passes. */
  async function markReady(name: string): Promise<void> {
    const pod = (await readPod(name))!;
    const now = new Date(Math.floor(Date.now() / 1000) * 1000);
    const containerStatuses: V1ContainerStatus[] = pod.spec!.containers.map((c) => ({
      name: c.name,
      image: c.image!,
      imageID: '',
      ready: true,
      restartCount: 0,
      started: true,
      state: { running: { startedAt: now } },
    }));
    pod.status = {
      phase: 'Running',
      startTime: now,
      podIP: '10.1.0.7',
      conditions: [
        { type: 'PodScheduled', status: 'True', lastTransitionTime: now },
        { type: 'Initialized', status: 'True', lastTransitionTime: now },
        { type: 'ContainersReady', status: 'True', lastTransitionTime: now },
        { type: 'Ready', status: 'True', lastTransitionTime: now },
      ],
      containerStatuses,
    };
    await core.replaceNamespacedPodStatus({ name, namespace, body: pod });
  }

  /** kube-controller-manager's PVC protection: a deleted PVC that no Pod uses loses its finalizer. */
  async function releaseDeletedClaims(): Promise<void> {
    const [list, podList] = await Promise.all([core.listNamespacedPersistentVolumeClaim({ namespace }), core.listNamespacedPod({ namespace })]);
    const used = new Set(podList.items.flatMap((p) => (p.spec?.volumes ?? []).map((v) => v.persistentVolumeClaim?.claimName)));
    for (const claim of list.items) {
      if (claim.metadata?.deletionTimestamp === undefined || used.has(claim.metadata.name) || (claim.metadata.finalizers ?? []).length === 0) continue;
      claim.metadata.finalizers = [];
      await core.replaceNamespacedPersistentVolumeClaim({ name: claim.metadata.name!, namespace, body: claim }).catch((error: unknown) => {
        if (statusCode(error) !== 404 && statusCode(error) !== 409) throw error;
      });
    }
  }

  function assertOwned(what: string, references: V1OwnerReference[] | undefined): void {
    assert.deepEqual(
      json(references),
      [{ apiVersion: 'etcd.robustness.io/v1alpha1', kind: 'EtcdCluster', name: cluster, uid, controller: true, blockOwnerDeletion: true }],
      `${what} is owned by the EtcdCluster (controller: true)`,
    );
  }

  /** Every condition keeps the lastTransitionTime it was first written with. */
  function assertTransitionTimesKept(c: EtcdCluster | undefined, when: string): void {
    for (const first of firstConditions) {
      assert.equal(condition(c, first.type)?.lastTransitionTime, first.lastTransitionTime, `${first.type}'s lastTransitionTime is kept ${when}`);
    }
  }

  test('bootstraps one member: finalizer, Services, PodDisruptionBudget, agent Secret, one Pod and one PVC, status Creating', async () => {
    await kubectlOk(apiserver, ['-n', namespace, 'apply', '-f', 'config/samples/etcdcluster.yaml']);
    const created = await eventually(
      'the EtcdCluster to have a status with its three conditions and a Pod demo-0 it lists',
      60_000,
      async () => {
        const c = await getCluster();
        // The status that first lists the member: a reconcile may write one before the Pod exists.
        const ready =
          ['Available', 'Progressing', 'Degraded'].every((t) => condition(c, t) !== undefined) &&
          (c?.status?.members ?? []).length > 0 &&
          (await readPod(`${cluster}-0`)) !== undefined;
        return ready ? c : undefined;
      },
      clusterState,
    );
    uid = created.metadata.uid!;
    assert.deepEqual(created.metadata.finalizers, ['etcd.robustness.io/cluster-cleanup']);

    const status = created.status!;
    assert.equal(status.phase, 'Creating');
    assert.equal(status.observedGeneration, created.metadata.generation);
    const available = condition(created, 'Available')!;
    assert.equal(available.status, 'False');
    assert.equal(available.reason, 'Unreachable', 'etcd at the Pod DNS name does not answer from here');
    assert.equal(condition(created, 'Progressing')?.status, 'True');
    for (const c of status.conditions!) {
      assert.equal(c.observedGeneration, created.metadata.generation, `${c.type}.observedGeneration`);
      assert.match(c.lastTransitionTime, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    }
    assert.deepEqual(status.endpoints, [`http://${fqdn('demo-0')}:2379`]);
    assert.deepEqual(
      status.members?.map((m) => [m.name, m.healthy]),
      [['demo-0', false]],
    );
    firstConditions = status.conditions!;

    // The Services, the budget and the agent's token Secret.
    const peers = await core.readNamespacedService({ name: `${cluster}-peers`, namespace });
    assert.equal(peers.spec?.clusterIP, 'None', 'the peers Service is headless');
    assert.equal(peers.spec?.publishNotReadyAddresses, true);
    assertOwned('Service demo-peers', peers.metadata?.ownerReferences);
    const client = await core.readNamespacedService({ name: `${cluster}-client`, namespace });
    assert.equal(client.spec?.type, 'ClusterIP');
    assert.deepEqual(
      client.spec?.ports?.map((p) => p.port),
      [2379],
    );
    assertOwned('Service demo-client', client.metadata?.ownerReferences);
    const budget = await policy.readNamespacedPodDisruptionBudget({ name: cluster, namespace });
    assert.equal(budget.spec?.minAvailable, 2, 'the budget keeps a quorum of 3');
    assert.deepEqual(json(budget.spec?.selector?.matchLabels), { 'app.kubernetes.io/name': 'etcd', 'etcd.robustness.io/cluster': cluster });
    assertOwned('PodDisruptionBudget demo', budget.metadata?.ownerReferences);
    const secret = await core.readNamespacedSecret({ name: `${cluster}-agent-token`, namespace });
    assert.match(Buffer.from(secret.data?.['token'] ?? '', 'base64').toString('utf8'), /^[0-9a-f]{64}$/);
    assertOwned('Secret demo-agent-token', secret.metadata?.ownerReferences);

    // Bootstrap is one member, started as a new cluster of itself.
    assert.deepEqual(
      (await pods()).map((p) => p.metadata?.name),
      ['demo-0'],
    );
    assert.deepEqual(
      (await claims()).map((c) => c.metadata?.name),
      ['demo-0-data'],
    );
    const pod = (await readPod('demo-0'))!;
    assertOwned('Pod demo-0', pod.metadata?.ownerReferences);
    assert.equal(pod.metadata?.labels?.['etcd.robustness.io/cluster'], cluster);
    assert.equal(pod.metadata?.labels?.['etcd.robustness.io/member'], 'demo-0');
    assert.equal(pod.spec?.hostname, 'demo-0');
    assert.equal(pod.spec?.subdomain, `${cluster}-peers`);
    assert.equal(pod.spec?.shareProcessNamespace, true, 'the agent sees etcd');
    assert.deepEqual(
      pod.spec?.containers.map((c) => [c.name, c.image]),
      [
        ['etcd', 'gcr.io/etcd-development/etcd:v3.6.16'],
        ['agent', operatorImage],
      ],
    );
    const etcdArgs = pod.spec?.containers.find((c) => c.name === 'etcd')?.args ?? [];
    for (const flag of ['--name=demo-0', '--initial-cluster-state=new', `--initial-cluster=demo-0=http://${fqdn('demo-0')}:2380`, `--initial-advertise-peer-urls=http://${fqdn('demo-0')}:2380`]) {
      assert.ok(etcdArgs.includes(flag), `etcd has ${flag}: ${etcdArgs.join(' ')}`);
    }
    assert.deepEqual(
      pod.spec?.volumes?.map((v) => [v.name, v.persistentVolumeClaim?.claimName ?? v.secret?.secretName ?? (v.emptyDir ? 'emptyDir' : undefined)]),
      [
        ['data', 'demo-0-data'],
        ['agent-token', 'demo-agent-token'],
        ['agent-tls', 'demo-agent-tls'],
        ['agent-tmp', 'emptyDir'],
        ['launcher', 'emptyDir'],
      ],
    );
    const claim = (await claims())[0]!;
    assertOwned('PersistentVolumeClaim demo-0-data', claim.metadata?.ownerReferences);
    const launch = { name: 'demo-0', initialCluster: `demo-0=http://${fqdn('demo-0')}:2380`, initialClusterState: 'new' };
    assert.deepEqual(JSON.parse(claim.metadata?.annotations?.['etcd.robustness.io/launch'] ?? '{}'), launch);
    assert.deepEqual(JSON.parse(pod.metadata?.annotations?.['etcd.robustness.io/launch'] ?? '{}'), launch);

    const events = (await kubectlJson<EventList>(apiserver, ['-n', namespace, 'get', 'events.events.k8s.io']))!;
    const bootstrapped = events.items.filter((e) => e.reason === 'ClusterBootstrapped' && e.regarding.kind === 'EtcdCluster' && e.regarding.name === cluster);
    assert.equal(bootstrapped.length, 1, 'one ClusterBootstrapped event');
    assert.equal(bootstrapped[0]!.regarding.uid, uid);
  });

  test('a Running and Ready Pod whose etcd does not answer: the operator waits and adds no member', async () => {
    await markReady('demo-0');
    const start = await reconciles();
    const waitedFrom = Date.now();
    // Several steady periods (a waiting cluster is requeued every second or so, a steady one every 5 s).
    await eventually(
      'four more EtcdCluster reconciles and 6 s',
      60_000,
      async () => ((await reconciles()) >= start + 4 && Date.now() - waitedFrom >= 6000 ? true : undefined),
      async () => `reconciles ${start} → ${await reconciles()}`,
      500,
    );
    assert.deepEqual(
      (await pods()).map((p) => p.metadata?.name),
      ['demo-0'],
      'no second member while etcd cannot be reached',
    );
    assert.deepEqual(
      (await claims()).map((c) => c.metadata?.name),
      ['demo-0-data'],
    );
    const c = await getCluster();
    assert.equal(c?.metadata.annotations?.['etcd.robustness.io/pending-member'], undefined, 'no member add was attempted');
    assert.equal(c?.status?.phase, 'Creating');
    assert.equal(condition(c, 'Available')?.reason, 'Unreachable');
    assert.equal(condition(c, 'Progressing')?.status, 'True');
    assert.equal(condition(c, 'Progressing')?.reason, 'Waiting');
    assertTransitionTimesKept(c, 'while the status stays the same');

    // Writing the same status again is no change: the resource stays at its version across reconciles.
    const version = c?.metadata.resourceVersion;
    const now = await reconciles();
    await eventually('two more reconciles', 30_000, async () => ((await reconciles()) >= now + 2 ? true : undefined), undefined, 250);
    assert.equal((await getCluster())?.metadata.resourceVersion, version, 'an unchanged status is not rewritten');
  });

  test('the PodDisruptionBudget covers the member: an eviction is refused', async () => {
    // No disruption controller runs here, so the budget allows no disruption at all; what matters is that
    // it selects the member's Pod (an eviction of a Pod no budget selects would just delete it).
    await assert.rejects(
      core.createNamespacedPodEviction({ name: 'demo-0', namespace, body: { apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name: 'demo-0', namespace } } }),
      (error: unknown) => statusCode(error) === 429,
    );
    assert.ok(await readPod('demo-0'));
  });

  test('a deleted Pod is recreated from its PVC: same name, same PVC, same launch, a MemberRestarted event', async () => {
    const before = (await readPod('demo-0'))!;
    const claimBefore = (await claims())[0]!;
    // What an eviction does once a budget allows it: delete the Pod (no node: the API server removes it at once).
    await core.deleteNamespacedPod({ name: 'demo-0', namespace });
    const recreated = await eventually(
      'Pod demo-0 recreated',
      30_000,
      async () => {
        const pod = await readPod('demo-0');
        return pod && pod.metadata?.uid !== before.metadata?.uid ? pod : undefined;
      },
      clusterState,
    );
    assert.equal(recreated.metadata?.annotations?.['etcd.robustness.io/launch'], before.metadata?.annotations?.['etcd.robustness.io/launch'], 'the launch annotation is kept');
    assert.deepEqual(recreated.spec?.containers.map((c) => c.args), before.spec?.containers.map((c) => c.args), 'started with the same flags');
    assert.equal(recreated.spec?.volumes?.[0]?.persistentVolumeClaim?.claimName, 'demo-0-data');
    assertOwned('Pod demo-0 (recreated)', recreated.metadata?.ownerReferences);
    const claimsNow = await claims();
    assert.equal(claimsNow.length, 1);
    assert.equal(claimsNow[0]!.metadata?.uid, claimBefore.metadata?.uid, 'the same PVC: the data is kept');
    assert.equal(claimsNow[0]!.metadata?.deletionTimestamp, undefined);
    assert.deepEqual(
      (await pods()).map((p) => p.metadata?.name),
      ['demo-0'],
    );

    const restarted = await eventually('a MemberRestarted event', 15_000, async () => {
      const events = (await kubectlJson<EventList>(apiserver, ['-n', namespace, 'get', 'events.events.k8s.io']))!;
      return events.items.find((e) => e.reason === 'MemberRestarted' && e.regarding.kind === 'EtcdCluster' && e.regarding.name === cluster);
    });
    assert.equal(restarted.type, 'Normal');
    assert.match(restarted.note ?? '', /demo-0/);
    assert.equal(restarted.reportingController, 'etcd.robustness.io/operator');

    // Status stayed what it was: not available, progressing. The transitions are where they were.
    await markReady('demo-0');
    const start = await reconciles();
    await eventually('two more reconciles', 30_000, async () => ((await reconciles()) >= start + 2 ? true : undefined), undefined, 250);
    const c = await getCluster();
    assert.equal(c?.status?.phase, 'Creating');
    assertTransitionTimesKept(c, 'across the Pod restart');
    assert.equal((await pods()).length, 1);
  });

  test('a twoNodeWitness cluster without the fault agent is refused: Available False, TopologyNotSupported, an Event, no Pod', async () => {
    // The sample with the agent switched off: on Pods the agent brings the survivor back alone.
    const sample = readFileSync('config/samples/etcdcluster-two-node.yaml', 'utf8');
    await kubectlOk(apiserver, ['-n', namespace, 'apply', '-f', '-'], `${sample.trimEnd()}\n  agent:\n    enabled: false\n`);
    const available = await eventually('the pair refused with TopologyNotSupported', 30_000, async () => {
      const pair = await kubectlJson<EtcdCluster>(apiserver, ['-n', namespace, 'get', 'etcdcluster', 'pair']);
      const found = condition(pair, 'Available');
      return found?.reason === 'TopologyNotSupported' ? found : undefined;
    });
    assert.equal(available.status, 'False');
    assert.match(available.message ?? '', /twoNodeWitness topology on Pods needs the fault agent \(spec\.agent\.enabled: true\)/);
    const events = await kubectlJson<EventList>(apiserver, ['-n', namespace, 'get', 'events.events.k8s.io']);
    assert.ok(events?.items.some((e) => e.reason === 'TopologyNotSupported' && e.regarding.name === 'pair'), 'a TopologyNotSupported Event');
    const pairPods = (await core.listNamespacedPod({ namespace, labelSelector: 'etcd.robustness.io/cluster=pair' })).items;
    assert.deepEqual(pairPods, [], 'no member Pod is created');
    await kubectlOk(apiserver, ['-n', namespace, 'delete', 'etcdcluster', 'pair', '--wait=true']);
  });

  test('deleting the EtcdCluster deletes its Pods, PVCs, Services, budget and Secret, then the EtcdCluster', async () => {
    await kubectlOk(apiserver, ['-n', namespace, 'delete', 'etcdcluster', cluster, '--wait=false']);
    const leftovers = async (): Promise<string[]> => {
      const [p, c, s, b, sec] = await Promise.all([
        pods(),
        claims(),
        core.listNamespacedService({ namespace, labelSelector: selector }),
        policy.listNamespacedPodDisruptionBudget({ namespace, labelSelector: selector }),
        core.listNamespacedSecret({ namespace, labelSelector: selector }),
      ]);
      return [
        ...p.map((x) => `Pod/${x.metadata?.name}`),
        ...c.map((x) => `PVC/${x.metadata?.name}`),
        ...s.items.map((x) => `Service/${x.metadata?.name}`),
        ...b.items.map((x) => `PDB/${x.metadata?.name}`),
        ...sec.items.map((x) => `Secret/${x.metadata?.name}`),
      ];
    };
    await eventually(
      'the EtcdCluster and all its objects gone',
      60_000,
      async () => {
        await releaseDeletedClaims();
        const left = await leftovers();
        return left.length === 0 && (await getCluster()) === undefined ? true : undefined;
      },
      async () => `left: ${(await leftovers()).join(', ')}; cluster: ${await clusterState()}`,
    );
    // Nothing of the same names either (the label selector found nothing; a read by name finds nothing).
    for (const [kind, read] of [
      ['Service demo-peers', () => core.readNamespacedService({ name: `${cluster}-peers`, namespace })],
      ['Service demo-client', () => core.readNamespacedService({ name: `${cluster}-client`, namespace })],
      ['PodDisruptionBudget demo', () => policy.readNamespacedPodDisruptionBudget({ name: cluster, namespace })],
      ['Secret demo-agent-token', () => core.readNamespacedSecret({ name: `${cluster}-agent-token`, namespace })],
      ['Secret demo-agent-tls', () => core.readNamespacedSecret({ name: `${cluster}-agent-tls`, namespace })],
      ['PersistentVolumeClaim demo-0-data', () => core.readNamespacedPersistentVolumeClaim({ name: 'demo-0-data', namespace })],
    ] as const) {
      await assert.rejects(read(), (error: unknown) => statusCode(error) === 404, `${kind} is gone`);
    }
    const events = (await kubectlJson<EventList>(apiserver, ['-n', namespace, 'get', 'events.events.k8s.io']))!;
    assert.ok(events.items.some((e) => e.reason === 'ClusterDeleted' && e.regarding.name === cluster), 'a ClusterDeleted event');
    // The operator stays quiet afterwards: no object comes back.
    await sleep(1500);
    assert.deepEqual(await leftovers(), []);
  });
});
