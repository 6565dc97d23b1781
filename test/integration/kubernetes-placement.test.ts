// The `kubernetes` member placement against a real kube-apiserver. No kubelet, scheduler or controller
// manager runs here: the test writes Pod status through the status subresource the way a kubelet would,
// and removes the PVC-protection finalizer the way kube-controller-manager would once no Pod uses a PVC.
import assert from 'node:assert/strict';
import { randomUUID, X509Certificate } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { CoreV1Api, NetworkingV1Api, PolicyV1Api, type V1Container, type V1ContainerStatus, type V1Pod } from '@kubernetes/client-node';
import { KubernetesPlacement, PlacementError } from '../../src/controller/placement/kubernetes.ts';
import { launchAnnotation } from '../../src/controller/placement/kubernetes-manifests.ts';
import type { MemberLaunch } from '../../src/domain/index.ts';
import { TestApiserver } from '../helpers/kube-apiserver.ts';
import { placementFixtures } from '../helpers/placement-fixtures.ts';

const namespace = 'etcd-placement';
const operatorImage = 'registry.example/etcd-robustness:0.1.0';

const { etcdCluster, fqdn, initialCluster, launchOf } = placementFixtures(namespace, { version: '3.6.16' });

function container(pod: V1Pod, name: string): V1Container {
  const found = pod.spec?.containers.find((c) => c.name === name);
  assert.ok(found, `pod ${pod.metadata?.name} has a container ${name}`);
  return found;
}

/** The client's models are classes: compare their JSON. */
const json = (value: unknown): unknown => (value === undefined ? undefined : JSON.parse(JSON.stringify(value)));

const statusCode = (error: unknown): number | undefined => (error as { code?: number }).code;

describe('kubernetes member placement on a real kube-apiserver', { timeout: 300_000 }, () => {
  let apiserver: TestApiserver;
  let core: CoreV1Api;
  let policy: PolicyV1Api;
  let placement: KubernetesPlacement;

  before(async () => {
    apiserver = await TestApiserver.start();
    core = apiserver.kubeConfig.makeApiClient(CoreV1Api);
    policy = apiserver.kubeConfig.makeApiClient(PolicyV1Api);
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
  const readClaim = (name: string) =>
    core.readNamespacedPersistentVolumeClaim({ name, namespace }).catch((error: unknown) => {
      if (statusCode(error) === 404) return undefined;
      throw error;
    });

  /** What a kubelet writes: the phase, the Ready condition and every container's status. */
  async function setPodStatus(name: string, kind: 'ready' | 'failed' | 'crashLoop'): Promise<Date> {
    const pod = (await readPod(name))!;
    const now = new Date(Math.floor(Date.now() / 1000) * 1000);
    const containerStatuses: V1ContainerStatus[] = pod.spec!.containers.map((c) => ({
      name: c.name,
      image: c.image!,
      imageID: '',
      ready: kind === 'ready',
      restartCount: kind === 'crashLoop' && c.name === 'etcd' ? 3 : 0,
      started: kind !== 'failed',
      state:
        kind === 'ready' || c.name !== 'etcd'
          ? { running: { startedAt: now } }
          : kind === 'failed'
            ? { terminated: { exitCode: 2, reason: 'Error', finishedAt: now } }
            : { waiting: { reason: 'CrashLoopBackOff', message: 'back-off 40s restarting failed container' } },
    }));
    pod.status = {
      phase: kind === 'failed' ? 'Failed' : 'Running',
      startTime: pod.status?.startTime ?? now,
      conditions: [
        { type: 'PodScheduled', status: 'True', lastTransitionTime: now },
        { type: 'Ready', status: kind === 'ready' ? 'True' : 'False', lastTransitionTime: now },
      ],
      containerStatuses,
    };
    await core.replaceNamespacedPodStatus({ name, namespace, body: pod });
    return now;
  }

  /** kube-controller-manager's PVC protection: a deleted PVC no Pod uses loses its finalizer. */
  async function releaseDeletedClaims(): Promise<number> {
    const [claims, pods] = await Promise.all([core.listNamespacedPersistentVolumeClaim({ namespace }), core.listNamespacedPod({ namespace })]);
    const used = new Set(pods.items.flatMap((p) => (p.spec?.volumes ?? []).map((v) => v.persistentVolumeClaim?.claimName)));
    let released = 0;
    for (const claim of claims.items) {
      if (claim.metadata?.deletionTimestamp === undefined || used.has(claim.metadata.name)) continue;
      claim.metadata.finalizers = [];
      await core.replaceNamespacedPersistentVolumeClaim({ name: claim.metadata.name!, namespace, body: claim }).catch((error: unknown) => {
        if (statusCode(error) !== 404 && statusCode(error) !== 409) throw error;
      });
      released++;
    }
    return released;
  }

  async function clusterVersions(cluster: string): Promise<Record<string, string>> {
    const selector = `etcd.robustness.io/cluster=${cluster}`;
    const [pods, claims, services, budgets, secrets] = await Promise.all([
      core.listNamespacedPod({ namespace, labelSelector: selector }),
      core.listNamespacedPersistentVolumeClaim({ namespace, labelSelector: selector }),
      core.listNamespacedService({ namespace, labelSelector: selector }),
      policy.listNamespacedPodDisruptionBudget({ namespace, labelSelector: selector }),
      core.listNamespacedSecret({ namespace, labelSelector: selector }),
    ]);
    const versions: Record<string, string> = {};
    for (const [kind, list] of [
      ['Pod', pods],
      ['PVC', claims],
      ['Service', services],
      ['PDB', budgets],
      ['Secret', secrets],
    ] as const) {
      for (const item of list.items) versions[`${kind}/${item.metadata!.name!}`] = item.metadata!.resourceVersion!;
    }
    return versions;
  }

  const demo = etcdCluster('demo', { storage: { size: '2Gi', storageClassName: 'fast' }, resources: { requests: { cpu: '100m', memory: '256Mi' } } });

  test('ensureCluster creates the Services, the PodDisruptionBudget and the agent Secrets once', async () => {
    await placement.ensureCluster(demo);
    const owner = { apiVersion: 'etcd.robustness.io/v1alpha1', kind: 'EtcdCluster', name: 'demo', uid: demo.metadata.uid, controller: true, blockOwnerDeletion: true };
    const labels = {
      'app.kubernetes.io/name': 'etcd',
      'app.kubernetes.io/instance': 'demo',
      'app.kubernetes.io/managed-by': 'etcd-robustness-operator',
      'etcd.robustness.io/cluster': 'demo',
    };

    const peers = await core.readNamespacedService({ name: 'demo-peers', namespace });
    assert.equal(peers.spec?.clusterIP, 'None');
    assert.equal(peers.spec?.publishNotReadyAddresses, true);
    assert.deepEqual(
      peers.spec?.ports?.map((p) => [p.name, p.port]),
      [
        ['client', 2379],
        ['peer', 2380],
      ],
    );
    assert.deepEqual(peers.spec?.selector, { 'app.kubernetes.io/name': 'etcd', 'etcd.robustness.io/cluster': 'demo' });
    assert.deepEqual(peers.metadata?.labels, labels);
    assert.deepEqual(json(peers.metadata?.ownerReferences), [owner]);

    const client = await core.readNamespacedService({ name: 'demo-client', namespace });
    assert.equal(client.spec?.type, 'ClusterIP');
    assert.deepEqual(
      client.spec?.ports?.map((p) => [p.port, p.targetPort]),
      [[2379, 'client']],
    );
    assert.deepEqual(json(client.metadata?.ownerReferences), [owner]);

    const budget = await policy.readNamespacedPodDisruptionBudget({ name: 'demo', namespace });
    assert.equal(budget.spec?.minAvailable, 2);
    assert.deepEqual(json(budget.spec?.selector?.matchLabels), { 'app.kubernetes.io/name': 'etcd', 'etcd.robustness.io/cluster': 'demo' });
    assert.deepEqual(json(budget.metadata?.ownerReferences), [owner]);

    const secret = await core.readNamespacedSecret({ name: 'demo-agent-token', namespace });
    assert.deepEqual(json(secret.metadata?.ownerReferences), [owner]);
    const token = await placement.agentToken(demo);
    assert.match(token ?? '', /^[0-9a-f]{64}$/);

    // The agents' TLS: a CA of the cluster's own, and a serving certificate it signed for every member's host name.
    const tls = await core.readNamespacedSecret({ name: 'demo-agent-tls', namespace });
    assert.equal(tls.type, 'kubernetes.io/tls');
    assert.deepEqual(json(tls.metadata?.ownerReferences), [owner]);
    assert.deepEqual(Object.keys(tls.data ?? {}).sort(), ['ca.crt', 'tls.crt', 'tls.key']);
    const pem = (key: string): string => Buffer.from(tls.data![key]!, 'base64').toString('utf8');
    const ca = new X509Certificate(pem('ca.crt'));
    const serving = new X509Certificate(pem('tls.crt'));
    assert.equal(ca.ca, true);
    assert.ok(serving.checkIssued(ca) && serving.verify(ca.publicKey), 'the CA signed the serving certificate');
    assert.notEqual(serving.checkHost(fqdn('demo', 'demo-7')), undefined, 'any member of the cluster');
    assert.equal(serving.checkHost(fqdn('other', 'other-0')), undefined, 'no member of another cluster');
    assert.equal(await placement.agentCa(demo), pem('ca.crt'));

    const before = await clusterVersions('demo');
    assert.deepEqual(Object.keys(before).sort(), ['PDB/demo', 'Secret/demo-agent-tls', 'Secret/demo-agent-token', 'Service/demo-client', 'Service/demo-peers']);
    await placement.ensureCluster(demo);
    assert.deepEqual(await clusterVersions('demo'), before, 'a second ensureCluster changes nothing');
    assert.equal(await placement.agentToken(demo), token, 'the token is never rotated');

    // Scaling to 5 moves the budget (and only the budget) to the new quorum.
    await placement.ensureCluster({ ...demo, spec: { ...demo.spec, replicas: 5 } });
    assert.equal((await policy.readNamespacedPodDisruptionBudget({ name: 'demo', namespace })).spec?.minAvailable, 3);
    const scaled = await clusterVersions('demo');
    assert.notEqual(scaled['PDB/demo'], before['PDB/demo']);
    assert.deepEqual({ ...scaled, 'PDB/demo': '' }, { ...before, 'PDB/demo': '' });
    await placement.ensureCluster(demo);
    assert.equal((await policy.readNamespacedPodDisruptionBudget({ name: 'demo', namespace })).spec?.minAvailable, 2);
    assert.equal(await placement.agentToken(demo), token);
  });

  test('addresses are the per-pod DNS names under the headless Service', async () => {
    assert.deepEqual(await placement.addresses(demo, 'demo-1'), {
      clientUrl: `http://${fqdn('demo', 'demo-1')}:2379`,
      peerUrl: `http://${fqdn('demo', 'demo-1')}:2380`,
    });
    await assert.rejects(placement.addresses(demo, 'Demo_1'), PlacementError);
  });

  test('startMember creates the PVC and the Pod with the etcd container and the agent sidecar, once', async () => {
    for (let i = 0; i < 3; i++) await placement.startMember(demo, launchOf('demo', i));
    const owner = { apiVersion: 'etcd.robustness.io/v1alpha1', kind: 'EtcdCluster', name: 'demo', uid: demo.metadata.uid, controller: true, blockOwnerDeletion: true };

    const claim = (await readClaim('demo-0-data'))!;
    assert.deepEqual(claim.spec?.accessModes, ['ReadWriteOnce']);
    assert.equal(claim.spec?.resources?.requests?.['storage'], '2Gi');
    assert.equal(claim.spec?.storageClassName, 'fast');
    assert.deepEqual(JSON.parse(claim.metadata!.annotations![launchAnnotation]!), launchOf('demo', 0));
    assert.equal(claim.metadata?.labels?.['etcd.robustness.io/member'], 'demo-0');
    assert.deepEqual(json(claim.metadata?.ownerReferences), [owner]);

    const pod = (await readPod('demo-0'))!;
    assert.deepEqual(pod.metadata?.labels, {
      'app.kubernetes.io/name': 'etcd',
      'app.kubernetes.io/instance': 'demo',
      'app.kubernetes.io/managed-by': 'etcd-robustness-operator',
      'etcd.robustness.io/cluster': 'demo',
      'etcd.robustness.io/member': 'demo-0',
    });
    assert.deepEqual(json(pod.metadata?.ownerReferences), [owner]);
    assert.deepEqual(JSON.parse(pod.metadata.annotations![launchAnnotation]!), launchOf('demo', 0));
    assert.equal(pod.spec?.hostname, 'demo-0');
    assert.equal(pod.spec?.subdomain, 'demo-peers');
    assert.equal(pod.spec?.restartPolicy, 'Always');
    assert.equal(pod.spec?.shareProcessNamespace, true);
    assert.equal(pod.spec?.enableServiceLinks, false);
    assert.deepEqual(
      pod.spec?.containers.map((c) => c.name),
      ['etcd', 'agent'],
    );

    const etcd = container(pod, 'etcd');
    assert.equal(etcd.image, 'gcr.io/etcd-development/etcd:v3.6.16');
    assert.equal(etcd.imagePullPolicy, 'IfNotPresent');
    assert.deepEqual(etcd.resources?.requests, { cpu: '100m', memory: '256Mi' });
    // etcd starts through the launcher, which honours the crash fault's hold file beside the data dir;
    // an init container copies it from the agent's image onto the Pod's launcher volume.
    assert.deepEqual(etcd.command, ['/etc/etcd-robustness/launcher/etcd-launcher', '--hold-file=/var/lib/etcd/data.hold', '--', 'etcd']);
    assert.equal(etcd.volumeMounts?.find((m) => m.name === 'launcher')?.readOnly, true, 'etcd cannot change its launcher');
    assert.deepEqual(
      pod.spec?.initContainers?.map((c) => [c.name, c.image, c.command]),
      [['etcd-launcher', operatorImage, ['/usr/local/bin/etcd-launcher', 'install', '/etc/etcd-robustness/launcher/etcd-launcher']]],
    );
    const self = fqdn('demo', 'demo-0');
    for (const flag of [
      '--name=demo-0',
      '--data-dir=/var/lib/etcd/data',
      '--listen-client-urls=http://0.0.0.0:2379',
      `--advertise-client-urls=http://${self}:2379`,
      // The agent's peer proxy holds 2380; etcd's own peer listener is on loopback behind it.
      '--listen-peer-urls=http://127.0.0.1:2383',
      `--initial-advertise-peer-urls=http://${self}:2380`,
      `--initial-cluster=${initialCluster('demo', 3)}`,
      '--initial-cluster-state=new',
      `--initial-cluster-token=${demo.metadata.uid!}`,
      '--listen-metrics-urls=http://0.0.0.0:2381',
    ]) {
      assert.ok(etcd.args?.includes(flag), `etcd has ${flag}: ${etcd.args?.join(' ')}`);
    }
    assert.equal(etcd.readinessProbe?.httpGet?.path, '/health');
    assert.equal(etcd.readinessProbe?.httpGet?.port, 2381);
    assert.equal(etcd.livenessProbe?.httpGet?.path, '/livez');
    assert.deepEqual(etcd.volumeMounts?.map((m) => [m.name, m.mountPath]), [['data', '/var/lib/etcd'], ['launcher', '/etc/etcd-robustness/launcher']]);
    assert.equal(etcd.env, undefined, 'no GOFAIL_HTTP without failpoints');

    const agent = container(pod, 'agent');
    assert.equal(agent.image, operatorImage);
    assert.equal(agent.command, undefined, "the image's entrypoint runs the CLI");
    assert.deepEqual(agent.args, [
      'agent',
      '--member=demo-0',
      '--data-dir=/var/lib/etcd/data',
      '--listen=0.0.0.0:9095',
      '--token-file=/etc/etcd-robustness/agent/token',
      '--tls-cert-file=/etc/etcd-robustness/agent-tls/tls.crt',
      '--tls-key-file=/etc/etcd-robustness/agent-tls/tls.key',
      '--peer-listen=0.0.0.0:2380',
      '--peer-target=127.0.0.1:2383',
    ]);
    // Pod Security `restricted`: the agent signals etcd as the same non-root user, with no capability.
    for (const c of [etcd, agent]) {
      assert.deepEqual(json(c.securityContext?.capabilities), { drop: ['ALL'] }, `${c.name} drops every capability`);
      assert.equal(c.securityContext?.allowPrivilegeEscalation, false);
      assert.equal(c.securityContext?.runAsNonRoot, true);
      assert.equal(c.securityContext?.readOnlyRootFilesystem, true);
    }
    assert.deepEqual(json(pod.spec?.securityContext), { runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, fsGroup: 65532, seccompProfile: { type: 'RuntimeDefault' } });
    assert.equal(pod.spec?.shareProcessNamespace, true);
    assert.deepEqual(
      agent.volumeMounts?.map((m) => [m.name, m.mountPath, m.readOnly ?? false]),
      [
        ['data', '/var/lib/etcd', false],
        ['agent-token', '/etc/etcd-robustness/agent', true],
        ['agent-tls', '/etc/etcd-robustness/agent-tls', true],
        ['agent-tmp', '/tmp', false],
      ],
    );
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
    assert.ok(!etcd.args?.some((a) => a.startsWith('--snapshot-count')), 'no fault-reach flags without the failpoint image');

    const before = await clusterVersions('demo');
    for (let i = 0; i < 3; i++) await placement.startMember(demo, launchOf('demo', i));
    await placement.ensureCluster(demo);
    assert.deepEqual(await clusterVersions('demo'), before, 'starting members that exist changes nothing');
    assert.deepEqual(await placement.clientEndpoints(demo), [0, 1, 2].map((i) => `http://${fqdn('demo', `demo-${i}`)}:2379`));
  });

  test('without the agent, with TLS and the failpoint image', async () => {
    const plain = etcdCluster('plain', {
      version: '3.5.10',
      agent: { enabled: false },
      image: { repository: 'gcr.io/etcd-development/etcd', failpoints: true, pullPolicy: 'Always' },
      tls: { client: { secretName: 'plain-client-tls' }, peer: { secretName: 'plain-peer-tls' } },
    });
    await placement.ensureCluster(plain);
    await assert.rejects(core.readNamespacedSecret({ name: 'plain-agent-token', namespace }), (error: unknown) => statusCode(error) === 404);
    await assert.rejects(core.readNamespacedSecret({ name: 'plain-agent-tls', namespace }), (error: unknown) => statusCode(error) === 404);
    assert.equal(await placement.agentToken(plain), undefined);
    const addresses = await placement.addresses(plain, 'plain-0');
    assert.equal(addresses.clientUrl, `https://${fqdn('plain', 'plain-0')}:2379`);
    assert.equal(addresses.peerUrl, `https://${fqdn('plain', 'plain-0')}:2380`);

    await placement.startMember(plain, { name: 'plain-0', initialCluster: `plain-0=${addresses.peerUrl}`, initialClusterState: 'new' });
    const pod = (await readPod('plain-0'))!;
    assert.equal(pod.spec?.shareProcessNamespace ?? false, false);
    assert.deepEqual(
      pod.spec?.containers.map((c) => c.name),
      ['etcd'],
    );
    const etcd = container(pod, 'etcd');
    assert.equal(etcd.image, 'gcr.io/etcd-development/etcd-failpoints:v3.5.10');
    assert.equal(etcd.imagePullPolicy, 'Always');
    assert.deepEqual(json(etcd.env), [{ name: 'GOFAIL_HTTP', value: '127.0.0.1:2382' }]);
    for (const flag of [
      '--listen-client-urls=https://0.0.0.0:2379',
      '--listen-peer-urls=https://0.0.0.0:2380',
      '--cert-file=/etc/etcd/tls/client/tls.crt',
      '--key-file=/etc/etcd/tls/client/tls.key',
      '--peer-cert-file=/etc/etcd/tls/peer/tls.crt',
      '--peer-key-file=/etc/etcd/tls/peer/tls.key',
      '--peer-trusted-ca-file=/etc/etcd/tls/peer/ca.crt',
      '--peer-client-cert-auth=true',
      // The failpoint image: compaction and snapshots often enough for their failpoints to fire (3.5 names).
      '--experimental-compaction-batch-limit=10',
      '--snapshot-count=200',
    ]) {
      assert.ok(etcd.args?.includes(flag), `etcd has ${flag}`);
    }
    // Server TLS only on the client listener: a client CA there would make etcd demand client certificates.
    assert.ok(!etcd.args?.some((a) => a.startsWith('--trusted-ca-file') || a.startsWith('--client-cert-auth')), 'clients need the CA only, no certificate');
    assert.equal(etcd.livenessProbe, undefined, 'etcd 3.5.10 has no /livez');
    assert.deepEqual(
      etcd.volumeMounts?.map((m) => [m.name, m.mountPath, m.readOnly ?? false]),
      [
        ['data', '/var/lib/etcd', false],
        ['client-tls', '/etc/etcd/tls/client', true],
        ['peer-tls', '/etc/etcd/tls/peer', true],
      ],
    );
    assert.deepEqual(
      pod.spec?.volumes?.map((v) => [v.name, v.persistentVolumeClaim?.claimName ?? v.secret?.secretName]),
      [
        ['data', 'plain-0-data'],
        ['client-tls', 'plain-client-tls'],
        ['peer-tls', 'plain-peer-tls'],
      ],
    );
    const [member] = await placement.listMembers(plain);
    assert.equal(member?.agentUrl, undefined);
    assert.equal(member?.failpointUrl, undefined);
    await placement.deleteCluster(plain);
    await releaseDeletedClaims();
    assert.deepEqual(await clusterVersions('plain'), {});
  });

  test('listMembers follows a member from starting to running, failed, pod missing, recreated and data lost', async () => {
    const find = async (name: string) => (await placement.listMembers(demo)).find((m) => m.name === name);
    const created = (await readPod('demo-0'))!.metadata!.creationTimestamp!;
    assert.deepEqual(await find('demo-0'), {
      name: 'demo-0',
      clientUrl: `http://${fqdn('demo', 'demo-0')}:2379`,
      peerUrl: `http://${fqdn('demo', 'demo-0')}:2380`,
      state: 'starting',
      since: created.toISOString(),
      detail: 'pod Pending',
      agentUrl: `https://${fqdn('demo', 'demo-0')}:9095`,
      version: '3.6.16',
    });
    assert.deepEqual(
      (await placement.listMembers(demo)).map((m) => m.name),
      ['demo-0', 'demo-1', 'demo-2'],
    );

    const readyAt = await setPodStatus('demo-0', 'ready');
    const running = await find('demo-0');
    assert.equal(running?.state, 'running');
    assert.equal(running?.since, readyAt.toISOString());
    assert.equal(running?.detail, undefined);

    await setPodStatus('demo-0', 'crashLoop');
    const looping = await find('demo-0');
    assert.equal(looping?.state, 'failed');
    assert.match(looping?.detail ?? '', /container etcd: CrashLoopBackOff after 3 restarts/);

    const failedAt = await setPodStatus('demo-0', 'failed');
    const failed = await find('demo-0');
    assert.equal(failed?.state, 'failed');
    assert.equal(failed?.since, failedAt.toISOString());
    assert.match(failed?.detail ?? '', /^pod Failed/);

    // Evicted or deleted by someone: the PVC stays, the member is failed until its Pod is back.
    await core.deleteNamespacedPod({ name: 'demo-0', namespace });
    const missing = await find('demo-0');
    assert.equal(missing?.state, 'failed');
    assert.equal(missing?.detail, 'pod missing');
    assert.equal((await find('demo-0'))?.since, missing?.since, 'since stays where it was first seen');

    // startMember brings it back from the PVC's launch annotation, whatever launch it is given now.
    await placement.startMember(demo, { name: 'demo-0', initialCluster: 'demo-0=http://elsewhere:2380', initialClusterState: 'existing' });
    const recreated = (await readPod('demo-0'))!;
    assert.ok(container(recreated, 'etcd').args?.includes('--initial-cluster-state=new'));
    assert.ok(container(recreated, 'etcd').args?.includes(`--initial-cluster=${initialCluster('demo', 3)}`));
    assert.equal((await find('demo-0'))?.state, 'starting');
    await setPodStatus('demo-0', 'ready');
    assert.equal((await find('demo-0'))?.state, 'running');

    // Its PVC is deleted under it: the data is going, the member must never start again as itself.
    await core.deleteNamespacedPersistentVolumeClaim({ name: 'demo-0-data', namespace });
    const lost = await find('demo-0');
    assert.equal(lost?.state, 'dataLost');
    assert.equal(lost?.detail, 'PVC being deleted');
    // Nor does a restart bring it back on the PVC that is going.
    const runtime = await placement.faultRuntime(demo);
    await assert.rejects(runtime.restart('demo-0'), (error: unknown) => error instanceof PlacementError && error.kind === 'PersistentVolumeClaim' && error.statusCode === 409);
    await runtime.close();
  });

  test('deleteMember removes the Pod and the PVC, idempotently', async () => {
    await placement.deleteMember(demo, 'demo-0');
    assert.equal(await readPod('demo-0'), undefined);
    assert.ok((await readClaim('demo-0-data'))?.metadata?.deletionTimestamp, 'the PVC is deleted (kept by its protection finalizer until no Pod uses it)');
    assert.equal(
      (await placement.listMembers(demo)).find((m) => m.name === 'demo-0'),
      undefined,
      'a member whose Pod is gone and whose PVC is being deleted is not listed',
    );
    assert.equal(await releaseDeletedClaims(), 1);
    assert.equal(await readClaim('demo-0-data'), undefined);
    // A restart planned while the PVC was still listed never starts the member on a new, empty PVC.
    await assert.rejects(
      placement.startMember(demo, { ...launchOf('demo', 0, 'existing'), restart: true }),
      (error: unknown) => error instanceof PlacementError && error.kind === 'PersistentVolumeClaim' && error.statusCode === 409 && /demo-0 cannot restart without its data/.test(error.message),
    );
    assert.equal(await readClaim('demo-0-data'), undefined, 'no new PVC');
    assert.equal(await readPod('demo-0'), undefined, 'no Pod');
    await placement.deleteMember(demo, 'demo-0');
    assert.deepEqual(
      (await placement.listMembers(demo)).map((m) => m.name),
      ['demo-1', 'demo-2'],
    );
  });

  test('the fault runtime stops, kills, restarts and rejoins members through their Pods', async () => {
    await placement.startMember(demo, launchOf('demo', 0, 'existing'));
    for (const m of ['demo-0', 'demo-1', 'demo-2']) await setPodStatus(m, 'ready');
    const runtime = await placement.faultRuntime(demo);
    try {
      assert.equal(runtime.clusterName, 'demo');
      assert.equal(runtime.created, false);
      assert.deepEqual(
        runtime.members().map((m) => [m.name, m.running, m.agentUrl]),
        [0, 1, 2].map((i) => [`demo-${i}`, true, `https://${fqdn('demo', `demo-${i}`)}:9095`]),
      );
      const agentCa = await placement.agentCa(demo);
      assert.ok(agentCa !== undefined && runtime.members().every((m) => m.agentCa === agentCa), "a run's agent clients trust the cluster's agent CA");
      assert.deepEqual(runtime.endpoints(), [0, 1, 2].map((i) => `http://${fqdn('demo', `demo-${i}`)}:2379`));

      const claimUid = (await readClaim('demo-1-data'))!.metadata!.uid;
      await runtime.stop('demo-1');
      assert.equal(await readPod('demo-1'), undefined);
      assert.equal(runtime.members().find((m) => m.name === 'demo-1')?.running, false);
      await runtime.restart('demo-1');
      assert.ok(await readPod('demo-1'));
      assert.equal((await readClaim('demo-1-data'))!.metadata!.uid, claimUid, 'a restart keeps the data');

      await runtime.kill('demo-2');
      assert.equal(await readPod('demo-2'), undefined);
      await runtime.restart('demo-2');
      assert.ok(await readPod('demo-2'));

      // rejoin: the member's data goes (the PVC protection controller lets it go once the Pod is gone).
      const controller = setInterval(() => void releaseDeletedClaims().catch(() => undefined), 100);
      const joined = 'demo-0=http://a:2380,demo-1=http://b:2380,demo-2=http://c:2380';
      try {
        await runtime.rejoin('demo-1', joined);
      } finally {
        clearInterval(controller);
      }
      const fresh = (await readClaim('demo-1-data'))!;
      assert.notEqual(fresh.metadata?.uid, claimUid, 'a new PVC');
      assert.deepEqual(JSON.parse(fresh.metadata!.annotations![launchAnnotation]!), { name: 'demo-1', initialCluster: joined, initialClusterState: 'existing' });
      const args = container((await readPod('demo-1'))!, 'etcd').args ?? [];
      assert.ok(args.includes('--initial-cluster-state=existing'));
      assert.ok(args.includes(`--initial-cluster=${joined}`));
      assert.equal(runtime.members().find((m) => m.name === 'demo-1')?.running, false, 'starting again');
      assert.equal(await placement.agentToken(demo), await placement.agentToken(demo));
    } finally {
      await runtime.close();
    }
  });

  test('errors are typed and a non-404 error is never swallowed', async () => {
    const elsewhere = { ...etcdCluster('nowhere'), metadata: { name: 'nowhere', namespace: 'no-such-namespace', uid: randomUUID() } };
    await assert.rejects(placement.startMember(elsewhere, { name: 'nowhere-0', initialCluster: 'nowhere-0=http://x:2380', initialClusterState: 'new' }), (error: unknown) => {
      assert.ok(error instanceof PlacementError);
      assert.equal(error.kind, 'PersistentVolumeClaim');
      assert.equal(error.statusCode, 404);
      return true;
    });
    // A Pod of the member's name that is not the cluster's.
    await core.createNamespacedPod({ namespace, body: { metadata: { name: 'demo-7' }, spec: { containers: [{ name: 'c', image: 'busybox' }] } } });
    await assert.rejects(placement.startMember(demo, launchOf('demo', 7)), (error: unknown) => error instanceof PlacementError && error.statusCode === 409);
    await core.deleteNamespacedPod({ name: 'demo-7', namespace });
    await assert.rejects(placement.ensureCluster({ ...demo, metadata: { name: 'demo', namespace } }), /no metadata\.uid/);
  });

  test('deleteCluster deletes every object of the cluster, idempotently', async () => {
    const other = etcdCluster('other', { agent: { enabled: false } });
    await placement.ensureCluster(other);
    await placement.startMember(other, { name: 'other-0', initialCluster: 'other-0=http://x:2380', initialClusterState: 'new' });
    const otherVersions = await clusterVersions('other');

    await placement.deleteCluster(demo);
    const left = await clusterVersions('demo');
    assert.deepEqual(
      Object.keys(left).sort(),
      ['PVC/demo-0-data', 'PVC/demo-1-data', 'PVC/demo-2-data'],
      'only PVCs in deletion are left (their protection finalizer)',
    );
    for (const name of ['demo-0-data', 'demo-1-data', 'demo-2-data']) assert.ok((await readClaim(name))?.metadata?.deletionTimestamp);
    assert.deepEqual(await placement.listMembers(demo), []);
    await releaseDeletedClaims();
    assert.deepEqual(await clusterVersions('demo'), {});
    await placement.deleteCluster(demo);
    assert.deepEqual(await clusterVersions('other'), otherVersions, "another cluster's objects are untouched");
    await placement.deleteCluster(other);
    await releaseDeletedClaims();
    assert.deepEqual(await clusterVersions('other'), {});
  });

  test('twoNodeWitness: the launcher gets the recovery hold and force file; fencing marks the PVC, deletes the Pod and keeps it from starting again', async () => {
    const pair = etcdCluster('pair', { replicas: 2, topology: 'twoNodeWitness', twoNode: { witness: { kind: 'lease' }, failoverGrace: '3s' } });
    assert.equal(placement.twoNodeWitnessRefusal(pair), undefined);
    assert.match(placement.twoNodeWitnessRefusal({ ...pair, spec: { ...pair.spec, agent: { enabled: false } } }) ?? '', /needs the fault agent \(spec\.agent\.enabled: true\)/);
    await placement.ensureCluster(pair);
    const launch = (i: number): MemberLaunch => ({ name: `pair-${i}`, initialCluster: `pair-0=http://${fqdn('pair', 'pair-0')}:2380,pair-1=http://${fqdn('pair', 'pair-1')}:2380`, initialClusterState: 'new' });
    await placement.startMember(pair, launch(0));
    await placement.startMember(pair, launch(1));
    const etcd = (await readPod('pair-0'))!.spec!.containers.find((c) => c.name === 'etcd')!;
    assert.deepEqual(etcd.command, [
      '/etc/etcd-robustness/launcher/etcd-launcher',
      '--hold-file=/var/lib/etcd/data.hold',
      '--hold-file=/var/lib/etcd/data.recovery-hold',
      '--force-file=/var/lib/etcd/data.force-new-cluster',
      '--',
      'etcd',
    ]);

    await placement.fenceMember(pair, 'pair-1', 4);
    assert.equal(await readPod('pair-1'), undefined, 'the fenced Pod is deleted at once');
    assert.equal((await readClaim('pair-1-data'))?.metadata?.annotations?.['etcd.robustness.io/fenced-epoch'], '4', 'the mark is on the PVC, which keeps the data');
    const fenced = (await placement.listMembers(pair)).find((m) => m.name === 'pair-1');
    assert.deepEqual({ state: fenced?.state, fenced: fenced?.fenced, detail: fenced?.detail }, { state: 'failed', fenced: true, detail: 'fenced at witness epoch 4' });
    await placement.fenceMember(pair, 'pair-1', 5);
    assert.equal((await readClaim('pair-1-data'))?.metadata?.annotations?.['etcd.robustness.io/fenced-epoch'], '4', 'idempotent: the first fence stays');
    await assert.rejects(
      placement.startMember(pair, { ...launch(1), restart: true }),
      (error: unknown) => error instanceof PlacementError && error.statusCode === 409 && /pair-1-data: is fenced \(witness epoch 4\): member pair-1 never starts again/.test(error.message),
    );
    assert.equal(await readPod('pair-1'), undefined, 'no Pod made for a fenced member');
    await assert.rejects(
      placement.recoverSurvivor(pair, 'pair-1', 4),
      (error: unknown) => error instanceof PlacementError && /cannot recover pair-1: it was fenced at epoch 4/.test(error.message),
    );
    // The recovery runs through the survivor's agent (no kubelet here: the in-cluster test runs it); without agents it is refused and records nothing.
    await assert.rejects(
      placement.recoverSurvivor({ ...pair, spec: { ...pair.spec, agent: { enabled: false } } }, 'pair-0', 4),
      (error: unknown) => error instanceof PlacementError && error.statusCode === 422 && /cannot recover pair-0: .*needs the fault agent/.test(error.message),
    );
    assert.equal((await placement.listMembers(pair)).find((m) => m.name === 'pair-0')?.recoveredEpoch, undefined);
    await placement.finishRecovery(pair, 'pair-0'); // nothing to finish: no agent needed
    // A survivor marked recovering whose Pod is gone: finishing starts its Pod again from the PVC first
    // (only its agent can remove the force file) and says so; nothing is lost, the plan asks again.
    const survivorClaim = (await readClaim('pair-0-data'))!;
    survivorClaim.metadata!.annotations = { ...survivorClaim.metadata!.annotations, 'etcd.robustness.io/recovered-epoch': '4', 'etcd.robustness.io/recovering': '4' };
    await core.replaceNamespacedPersistentVolumeClaim({ name: 'pair-0-data', namespace, body: survivorClaim });
    assert.deepEqual(
      ((m) => ({ recoveredEpoch: m?.recoveredEpoch, recovering: m?.recovering }))((await placement.listMembers(pair)).find((x) => x.name === 'pair-0')),
      { recoveredEpoch: 4, recovering: true },
    );
    await core.deleteNamespacedPod({ name: 'pair-0', namespace, gracePeriodSeconds: 0 });
    await assert.rejects(
      placement.finishRecovery(pair, 'pair-0'),
      (error: unknown) => error instanceof PlacementError && error.statusCode === 409 && /pair-0: was gone: started again from its PVC/.test(error.message),
    );
    assert.ok(await readPod('pair-0'), 'the survivor has a Pod again');
    assert.equal((await readClaim('pair-0-data'))?.metadata?.annotations?.['etcd.robustness.io/recovering'], '4', 'still recovering until its agent removed the force file');
    await placement.deleteCluster(pair);
    await releaseDeletedClaims();
  });

  test("with agentClients: a NetworkPolicy admits the agent port from the operator's Pods only, the peer port from the members only", async () => {
    const networking = apiserver.kubeConfig.makeApiClient(NetworkingV1Api);
    const operatorPods = { namespace: 'ops', podLabels: { 'app.kubernetes.io/name': 'etcd-robustness-operator', 'app.kubernetes.io/instance': 'r1' } };
    const guarded = new KubernetesPlacement({ kubeConfig: apiserver.kubeConfig, operatorImage, agentClients: operatorPods, deleteTimeoutMs: 20_000, pollIntervalMs: 100 });
    const walled = etcdCluster('walled');
    await guarded.ensureCluster(walled);
    const read = () => networking.readNamespacedNetworkPolicy({ name: 'walled-members', namespace });
    // As stored (kubectl's JSON, not the client's models, which call `from` `_from`).
    const got = await apiserver.kubectl(['-n', namespace, 'get', 'networkpolicy', 'walled-members', '-o', 'json']);
    assert.equal(got.code, 0, got.stderr);
    const created = JSON.parse(got.stdout) as { metadata: { resourceVersion: string; ownerReferences: { name: string }[] }; spec: unknown };
    assert.deepEqual(created.metadata.ownerReferences.map((o) => o.name), ['walled']);
    const members = { 'app.kubernetes.io/name': 'etcd', 'etcd.robustness.io/cluster': 'walled' };
    assert.deepEqual(created.spec, {
      podSelector: { matchLabels: members },
      policyTypes: ['Ingress'],
      ingress: [
        { ports: [{ protocol: 'TCP', port: 2379 }, { protocol: 'TCP', port: 2381 }] },
        { from: [{ podSelector: { matchLabels: members } }], ports: [{ protocol: 'TCP', port: 2380 }] },
        { from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'ops' } }, podSelector: { matchLabels: operatorPods.podLabels } }], ports: [{ protocol: 'TCP', port: 9095 }] },
      ],
    });
    await guarded.ensureCluster(walled);
    assert.equal((await read()).metadata?.resourceVersion, created.metadata.resourceVersion, 'a second ensureCluster changes nothing');
    // The member Pods it guards are the ones the placement makes.
    await guarded.startMember(walled, { name: 'walled-0', initialCluster: 'walled-0=http://x:2380', initialClusterState: 'new' });
    const labels = (await readPod('walled-0'))!.metadata!.labels!;
    assert.ok(Object.entries(members).every(([k, v]) => labels[k] === v));
    await guarded.deleteCluster(walled);
    await assert.rejects(read(), (error: unknown) => statusCode(error) === 404);
    await releaseDeletedClaims();
  });
});
