// The operator in a real cluster, installed the way a user installs it: a real single-node Kubernetes
// (src/node: kube-apiserver, controller-manager, scheduler, containerd and runc, kubelet, kube-proxy,
// CoreDNS, a CNI bridge and local PVs), the images of `npm run build:images` imported into it, the
// chart installed with `helm install` and its default values (two replicas with leader election, the
// chart's own ServiceAccount and RBAC, never cluster-admin), then the samples applied with kubectl into a
// namespace that enforces Pod Security `restricted`. Nothing here writes a status a kubelet would write:
// member Pods run etcd and the fault agent for real, and the operator reaches them through cluster DNS.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { V1Pod, V1PersistentVolumeClaim } from '@kubernetes/client-node';
import type { Condition, EtcdCluster, RobustnessRunResource } from '../../src/domain/index.ts';
import { packageRoot } from '../../src/local/index.ts';
import { KubeNode, readImagesManifest } from '../../src/node/index.ts';
import { TestHelm, chartDir } from '../helpers/helm.ts';
import { eventually, kubectlJson, kubectlOk, samples } from '../helpers/operator.ts';

const release = 'etcd-robustness';
const systemNamespace = 'etcd-robustness-system';
const namespace = 'demo';
const sample = (name: string): string => path.join(packageRoot, 'config', 'samples', name);

interface List<T> {
  items: T[];
}
interface EventList {
  items: { reason: string; note?: string; type: string; regarding: { kind: string; name: string } }[];
}

const condition = (conditions: Condition[] | undefined, type: string): Condition | undefined => conditions?.find((c) => c.type === type);
const podReady = (pod: V1Pod): boolean =>
  pod.status?.phase === 'Running' && (pod.status.containerStatuses ?? []).length > 0 && (pod.status.containerStatuses ?? []).every((c) => c.ready);

describe('in a real cluster: helm install, the samples, member Pods and a RobustnessRun', { timeout: 30 * 60_000 }, () => {
  let node: KubeNode;
  let helm: TestHelm;

  const kubectlIn = (ns: string, args: string[], stdin?: string): Promise<string> => kubectlOk(node, ['-n', ns, ...args], stdin);
  const memberPods = async (): Promise<V1Pod[]> =>
    (await kubectlJson<List<V1Pod>>(node, ['-n', namespace, 'get', 'pods', '-l', 'etcd.robustness.io/cluster=demo']))?.items ?? [];
  const claims = async (): Promise<V1PersistentVolumeClaim[]> =>
    (await kubectlJson<List<V1PersistentVolumeClaim>>(node, ['-n', namespace, 'get', 'pvc', '-l', 'etcd.robustness.io/cluster=demo']))?.items ?? [];
  const cluster = (): Promise<EtcdCluster | undefined> => kubectlJson<EtcdCluster>(node, ['-n', namespace, 'get', 'etcdcluster', 'demo']);
  /** What the cluster looks like, for a timeout's message. */
  const describeCluster = async (): Promise<string> => {
    const pods = await node.kubectl(['-n', namespace, 'get', 'pods,pvc,etcdcluster', '-o', 'wide']);
    const events = await node.kubectl(['-n', namespace, 'get', 'events', '--sort-by=.lastTimestamp']);
    const logs = await node.kubectl(['-n', systemNamespace, 'logs', '-l', 'app.kubernetes.io/name=etcd-robustness-operator', '--tail=30', '--prefix']);
    return `${pods.stdout}${pods.stderr}\n${events.stdout.split('\n').slice(-25).join('\n')}\n${logs.stdout}${logs.stderr}`;
  };

  /** Waits until the cluster has `replicas` Ready member Pods, every claim Bound, and is Available. */
  async function waitAvailable(replicas: number, timeoutMs: number): Promise<EtcdCluster> {
    return eventually(
      `EtcdCluster demo Available with ${replicas} Ready member Pods`,
      timeoutMs,
      async () => {
        const [pods, pvcs, current] = await Promise.all([memberPods(), claims(), cluster()]);
        const ready = pods.filter((p) => p.metadata?.deletionTimestamp === undefined && podReady(p));
        if (ready.length !== replicas || pods.length !== replicas) return undefined;
        if (pvcs.length !== replicas || pvcs.some((c) => c.status?.phase !== 'Bound')) return undefined;
        if (condition(current?.status?.conditions, 'Available')?.status !== 'True' || current?.status?.readyMembers !== replicas) return undefined;
        // The status of a reconcile that saw every change (a removed member leaves the list last).
        if (current.status.members?.length !== replicas) return undefined;
        return current;
      },
      describeCluster,
      1000,
    );
  }

  /** etcd's own member list, asked from inside a member's Pod. */
  async function etcdMembers(current: EtcdCluster): Promise<{ started: number; learners: number }> {
    const pod = current.status?.members?.[0]?.name ?? 'demo-0';
    const out = await kubectlIn(namespace, ['exec', pod, '-c', 'etcd', '--', 'etcdctl', '--endpoints=http://127.0.0.1:2379', 'member', 'list', '-w', 'json']);
    const list = JSON.parse(out) as { members: { name?: string; isLearner?: boolean }[] };
    return { started: list.members.filter((m) => (m.name ?? '') !== '').length, learners: list.members.filter((m) => m.isLearner === true).length };
  }

  before(async () => {
    const images = readImagesManifest();
    node = await KubeNode.start({ images: images.images.map((i) => i.file) });
    helm = new TestHelm({ kubeconfigPath: node.kubeconfigPath });
    // Exactly the README's commands: the chart's default values, which name the imported images.
    const install = await helm.run(['install', release, chartDir, '-n', systemNamespace, '--create-namespace', '--wait', '--timeout', '5m'], 6 * 60_000);
    assert.equal(install.code, 0, `helm install: ${install.stderr}\n${(await node.kubectl(['-n', systemNamespace, 'describe', 'pods'])).stdout}`);
    await kubectlOk(node, ['create', 'namespace', namespace]);
    await kubectlOk(node, ['label', 'namespace', namespace, 'pod-security.kubernetes.io/enforce=restricted']);
  });

  after(async () => {
    if (helm !== undefined) {
      await helm.run(['uninstall', release, '-n', systemNamespace, '--wait', '--timeout', '2m'], 3 * 60_000);
      helm.close();
    }
    await node?.close();
  });

  test('the operator runs as two replicas under its own ServiceAccount, one of them leading', async () => {
    const deployments = await kubectlJson<List<{ metadata: { name: string }; status?: { readyReplicas?: number } }>>(node, ['-n', systemNamespace, 'get', 'deployments']);
    assert.equal(deployments?.items.length, 1);
    assert.equal(deployments?.items[0]?.status?.readyReplicas, 2);
    const pods = (await kubectlJson<List<V1Pod>>(node, ['-n', systemNamespace, 'get', 'pods']))?.items ?? [];
    assert.equal(pods.length, 2);
    const serviceAccount = pods[0]?.spec?.serviceAccountName;
    assert.ok(serviceAccount !== undefined && serviceAccount !== 'default', 'the chart ServiceAccount');
    const as = `--as=system:serviceaccount:${systemNamespace}:${serviceAccount}`;
    // Least privilege, checked by the API server's own authorizer.
    assert.equal((await node.kubectl(['auth', 'can-i', 'create', 'pods', '-n', namespace, as])).stdout.trim(), 'yes');
    assert.equal((await node.kubectl(['auth', 'can-i', 'create', 'clusterroles', as])).stdout.trim(), 'no');
    assert.equal((await node.kubectl(['auth', 'can-i', 'delete', 'nodes', as])).stdout.trim(), 'no');
    const lease = await eventually('a leader', 60_000, async () => {
      const leases = await kubectlJson<List<{ spec?: { holderIdentity?: string } }>>(node, ['-n', systemNamespace, 'get', 'leases']);
      return leases?.items.find((l) => l.spec?.holderIdentity !== undefined && l.spec.holderIdentity !== '');
    });
    assert.ok(pods.some((p) => lease.spec?.holderIdentity?.includes(p.metadata!.name!)), `the Lease holder ${lease.spec?.holderIdentity} is one of the operator Pods`);
  });

  test('config/samples/etcdcluster.yaml: three member Pods Running under Pod Security restricted, PVCs bound, Services and budget', async () => {
    await kubectlIn(namespace, ['apply', '-f', sample('etcdcluster.yaml')]);
    const available = await waitAvailable(3, 6 * 60_000);
    assert.equal(available.status?.phase, 'Running');
    const pods = await memberPods();
    for (const pod of pods) {
      assert.deepEqual(
        pod.spec?.containers.map((c) => c.name),
        ['etcd', 'agent'],
        'etcd and the fault agent sidecar',
      );
      assert.equal(pod.spec?.securityContext?.runAsUser, 65532);
    }
    const services = (await kubectlJson<List<{ metadata: { name: string } }>>(node, ['-n', namespace, 'get', 'services']))?.items.map((s) => s.metadata.name).sort();
    assert.deepEqual(services, ['demo-client', 'demo-peers']);
    const budget = await kubectlJson<{ spec?: { minAvailable?: number } }>(node, ['-n', namespace, 'get', 'pdb', 'demo']);
    assert.equal(budget?.spec?.minAvailable, 2);
    // etcd answers through the client Service's ClusterIP and DNS name, from inside a member's Pod.
    const health = await kubectlIn(namespace, ['exec', 'demo-0', '-c', 'etcd', '--', 'etcdctl', '--endpoints=http://demo-client:2379', 'endpoint', 'health']);
    assert.match(health, /is healthy/);
  });

  test('config/samples/robustnessrun-against-cluster.yaml: kills, pauses and partitions, Passed, with Events, metrics and a report', async () => {
    await kubectlIn(namespace, ['apply', '-f', sample('robustnessrun-against-cluster.yaml')]);
    const run = await eventually(
      'RobustnessRun demo-faults to finish',
      8 * 60_000,
      async () => {
        const current = await kubectlJson<RobustnessRunResource>(node, ['-n', namespace, 'get', 'robustnessrun', 'demo-faults']);
        const phase = current?.status?.phase;
        return phase === 'Passed' || phase === 'Failed' || phase === 'Inconclusive' || phase === 'Aborted' ? current : undefined;
      },
      describeCluster,
      2000,
    );
    assert.equal(run.status?.phase, 'Passed', `the run: ${JSON.stringify(run.status)}`);
    assert.equal(run.status?.verdict, 'linearizable');
    assert.ok((run.status?.faults?.injected ?? 0) > 0, 'faults were injected');
    assert.equal(run.status?.faults?.failed, 0, 'no fault failed');
    assert.ok((run.status?.operations?.ok ?? 0) > 1000, `operations: ${JSON.stringify(run.status?.operations)}`);

    const events = await kubectlJson<EventList>(node, ['-n', namespace, 'get', 'events.events.k8s.io']);
    const reasons = new Set(events?.items.filter((e) => e.regarding.name === 'demo-faults').map((e) => e.reason));
    for (const reason of ['RunStarted', 'FaultInjected', 'FaultHealed', 'RunPassed']) assert.ok(reasons.has(reason), `Event ${reason} (${[...reasons].join(', ')})`);

    // The run's metrics, scraped from the operator Pod that ran it, through the API server's Pod proxy.
    const operatorPods = (await kubectlJson<List<V1Pod>>(node, ['-n', systemNamespace, 'get', 'pods']))?.items ?? [];
    const texts = await Promise.all(
      operatorPods.map(async (p) => (await node.kubectl(['get', '--raw', `/api/v1/namespaces/${systemNamespace}/pods/${p.metadata!.name!}:8080/proxy/metrics`])).stdout),
    );
    const operations = texts.flatMap((text) => samples(text, 'etcd_robustness_operations_total')).filter((s) => s.labels['run'] === `${namespace}/demo-faults`);
    assert.ok(operations.reduce((sum, s) => sum + s.value, 0) > 1000, 'etcd_robustness_operations_total of the run');
    const passed = texts.flatMap((text) => samples(text, 'etcd_robustness_runs_total')).filter((s) => s.labels['run'] === `${namespace}/demo-faults` && s.labels['verdict'] === 'linearizable');
    assert.equal(passed.reduce((sum, s) => sum + s.value, 0), 1, 'one run counted linearizable');

    // `etcd-robustness report`, as a user fetches it.
    const out = mkdtempSync(path.join(os.tmpdir(), 'etcd-robustness-report-'));
    try {
      const dir = path.join(out, 'report');
      const result = await cli(['report', 'demo-faults', '-n', namespace, '--kubeconfig', node.kubeconfigPath, '-o', dir]);
      assert.equal(result.code, 0, result.stderr);
      const verdict = JSON.parse(readFileSync(path.join(dir, 'verdict.json'), 'utf8')) as { verdict?: string };
      assert.equal(verdict.verdict, 'linearizable');
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  test('scaled 3 -> 5 -> 3 through learners', async () => {
    await kubectlIn(namespace, ['patch', 'etcdcluster', 'demo', '--type=merge', '-p', '{"spec":{"replicas":5}}']);
    const five = await waitAvailable(5, 8 * 60_000);
    assert.deepEqual(await etcdMembers(five), { started: 5, learners: 0 }, 'etcd itself lists five voting members');
    await kubectlIn(namespace, ['patch', 'etcdcluster', 'demo', '--type=merge', '-p', '{"spec":{"replicas":3}}']);
    const three = await waitAvailable(3, 8 * 60_000);
    assert.deepEqual(await etcdMembers(three), { started: 3, learners: 0 }, 'etcd itself lists three voting members');
  });

  test("a member whose Pod and PVC are deleted is replaced", async () => {
    const before = await claims();
    const victim = before[before.length - 1]!;
    const member = victim.metadata!.labels!['etcd.robustness.io/member']!;
    await kubectlIn(namespace, ['delete', 'pod', member, '--wait=false']);
    await kubectlIn(namespace, ['delete', 'pvc', victim.metadata!.name!, '--wait=false']);
    await eventually('the PVC to be replaced', 6 * 60_000, async () => {
      const now = await claims();
      return now.some((c) => c.metadata?.name === victim.metadata?.name && c.metadata?.uid !== victim.metadata?.uid) || now.length === 3 && !now.some((c) => c.metadata?.uid === victim.metadata?.uid) ? true : undefined;
    }, describeCluster, 1000);
    const after = await waitAvailable(3, 8 * 60_000);
    assert.ok(!(await claims()).some((c) => c.metadata?.uid === victim.metadata?.uid), 'the deleted claim is gone');
    assert.equal(after.status?.members?.length, 3);
  });

  test('deleting the EtcdCluster removes its Pods, PVCs, Services, budget and Secret', async () => {
    await kubectlIn(namespace, ['delete', 'robustnessrun', '--all', '--wait=true']);
    await kubectlIn(namespace, ['delete', 'etcdcluster', 'demo', '--wait=true', '--timeout=5m']);
    const left = await eventually('nothing of the cluster left', 3 * 60_000, async () => {
      const all = await kubectlJson<List<{ kind: string; metadata: { name: string } }>>(node, ['-n', namespace, 'get', 'pods,pvc,services,secrets,pdb', '-l', 'etcd.robustness.io/cluster=demo']);
      return all?.items.length === 0 ? all.items : undefined;
    }, describeCluster, 1000);
    assert.deepEqual(left, []);
  });
});

/** The project's CLI (src/cli.ts on this Node, as the other CLI tests run it). */
function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(packageRoot, 'src', 'cli.ts'), ...args], { timeout: 120_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}
