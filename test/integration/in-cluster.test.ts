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
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { V1Pod, V1PersistentVolumeClaim } from '@kubernetes/client-node';
import { parse, stringify } from 'yaml';
import type { Condition, EtcdCluster, RobustnessRunResource } from '../../src/domain/index.ts';
import { packageRoot } from '../../src/local/index.ts';
import { AgentClient } from '../../src/faults/index.ts';
import { KubeNode, readImagesManifest } from '../../src/node/index.ts';
import { TestHelm, chartDir } from '../helpers/helm.ts';
import { eventually, kubectlJson, kubectlOk, samples } from '../helpers/operator.ts';
import { TestCa } from '../helpers/tls.ts';

const release = 'etcd-robustness';
const systemNamespace = 'etcd-robustness-system';
const namespace = 'demo';
/** The labels the chart gives runner Pods (the members' NetworkPolicy and the PodMonitor select them). */
const runnerPodSelector = { 'app.kubernetes.io/instance': release, 'app.kubernetes.io/name': 'etcd-robustness-operator-runner' };
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
  const memberPods = async (name = 'demo'): Promise<V1Pod[]> =>
    (await kubectlJson<List<V1Pod>>(node, ['-n', namespace, 'get', 'pods', '-l', `etcd.robustness.io/cluster=${name}`]))?.items ?? [];
  const claims = async (name = 'demo'): Promise<V1PersistentVolumeClaim[]> =>
    (await kubectlJson<List<V1PersistentVolumeClaim>>(node, ['-n', namespace, 'get', 'pvc', '-l', `etcd.robustness.io/cluster=${name}`]))?.items ?? [];
  const cluster = (name = 'demo'): Promise<EtcdCluster | undefined> => kubectlJson<EtcdCluster>(node, ['-n', namespace, 'get', 'etcdcluster', name]);
  const getRun = (name: string): Promise<RobustnessRunResource | undefined> => kubectlJson<RobustnessRunResource>(node, ['-n', namespace, 'get', 'robustnessrun', name]);
  /** What the cluster looks like, for a timeout's message. */
  const describeCluster = async (): Promise<string> => {
    const pods = await node.kubectl(['-n', namespace, 'get', 'pods,pvc,etcdcluster,robustnessrun', '-o', 'wide']);
    const runs = await kubectlJson<List<RobustnessRunResource>>(node, ['-n', namespace, 'get', 'robustnessruns']);
    const runStatus = (runs?.items ?? []).map((r) => `${r.metadata.name}: ${JSON.stringify(r.status)}`).join('\n');
    const events = await node.kubectl(['-n', namespace, 'get', 'events', '--sort-by=.lastTimestamp']);
    const logs = await node.kubectl(['-n', systemNamespace, 'logs', '-l', 'app.kubernetes.io/name=etcd-robustness-operator', '--tail=60', '--prefix']);
    return `${pods.stdout}${pods.stderr}\n${runStatus}\n${events.stdout.split('\n').slice(-25).join('\n')}\n${logs.stdout}${logs.stderr}`;
  };

  /** Waits until the cluster has `replicas` Ready member Pods, every claim Bound, and is Available. */
  async function waitAvailable(replicas: number, timeoutMs: number, name = 'demo'): Promise<EtcdCluster> {
    return eventually(
      `EtcdCluster ${name} Available with ${replicas} Ready member Pods`,
      timeoutMs,
      async () => {
        const [pods, pvcs, current] = await Promise.all([memberPods(name), claims(name), cluster(name)]);
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

  /** The operator's Pods (the release namespace also holds runner Pods). */
  const operatorPodList = async (): Promise<V1Pod[]> => (await kubectlJson<List<V1Pod>>(node, ['-n', systemNamespace, 'get', 'pods', '-l', 'app.kubernetes.io/name=etcd-robustness-operator']))?.items ?? [];

  /** The runner Pods of the RobustnessRun `run` (in the release namespace). */
  const runnerPods = async (run: string): Promise<V1Pod[]> =>
    (await kubectlJson<List<V1Pod>>(node, ['-n', systemNamespace, 'get', 'pods', '-l', `etcd.robustness.io/run=${run},etcd.robustness.io/run-namespace=${namespace}`]))?.items ?? [];

  /** Waits until the RobustnessRun `name` ends in a terminal phase. */
  async function waitFinished(name: string, timeoutMs: number): Promise<RobustnessRunResource> {
    return eventually(
      `RobustnessRun ${name} to finish`,
      timeoutMs,
      async () => {
        const current = await getRun(name);
        const phase = current?.status?.phase;
        return phase === 'Passed' || phase === 'Failed' || phase === 'Inconclusive' || phase === 'Aborted' ? current : undefined;
      },
      describeCluster,
      2000,
    );
  }

  /** The reasons of the Events about the object `name`. */
  async function eventReasons(name: string): Promise<Set<string>> {
    const events = await kubectlJson<EventList>(node, ['-n', namespace, 'get', 'events.events.k8s.io']);
    return new Set(events?.items.filter((e) => e.regarding.name === name).map((e) => e.reason));
  }

  /** The operator's leader Lease holder (the leading replica's Pod name), '' when none. */
  async function leaseHolder(): Promise<string> {
    const lease = await kubectlJson<{ spec?: { holderIdentity?: string } }>(node, ['-n', systemNamespace, 'get', 'lease', 'etcd-robustness-operator']);
    return lease?.spec?.holderIdentity ?? '';
  }

  /** The agent token and CA of a cluster, from its Secrets. */
  async function agentCredentials(name: string): Promise<{ token: string; ca: string }> {
    const secret = await kubectlJson<{ data: Record<string, string> }>(node, ['-n', namespace, 'get', 'secret', `${name}-agent-token`]);
    const tls = await kubectlJson<{ data: Record<string, string> }>(node, ['-n', namespace, 'get', 'secret', `${name}-agent-tls`]);
    return {
      token: Buffer.from(secret!.data['token']!, 'base64').toString('utf8').trim(),
      ca: Buffer.from(tls!.data['ca.crt']!, 'base64').toString('utf8'),
    };
  }

  /** A client of a member's agent, through the Pod's address, verifying the certificate against the cluster's agent CA. */
  const agentOf = (pod: V1Pod, cluster: string, credentials: { token: string; ca: string }): AgentClient =>
    new AgentClient(`https://${pod.status!.podIP!}:9095`, credentials.token, { ca: credentials.ca, serverName: `${pod.metadata!.name!}.${cluster}-peers.${namespace}.svc.cluster.local` });

  /** Every fault the cluster's agents hold, asked from this machine through the Pods' addresses on the node's bridge. */
  async function activeAgentFaults(name: string): Promise<string[]> {
    const credentials = await agentCredentials(name);
    const active: string[] = [];
    for (const pod of await memberPods(name)) {
      if (pod.status?.podIP === undefined) continue;
      const faults = await agentOf(pod, name, credentials).faults();
      active.push(...faults.map((f) => `${pod.metadata!.name!}: ${f.type} ${f.id}`));
    }
    return active;
  }

  /** GET over HTTPS without verifying the certificate (the operator's is self-signed, as the ServiceMonitor's tlsConfig says). */
  function httpsGet(url: string, token?: string): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      const request = https.get(url, { rejectUnauthorized: false, headers: token === undefined ? {} : { Authorization: `Bearer ${token}` }, timeout: 10_000 }, (response) => {
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (body += chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
      });
      request.on('timeout', () => request.destroy(new Error(`GET ${url}: no answer`)));
      request.on('error', reject);
    });
  }

  /** A plain-HTTP GET's status, or the error that ended it. */
  const plainGet = (url: string): Promise<number | string> =>
    fetch(url, { signal: AbortSignal.timeout(5000) }).then(
      (response) => response.status,
      (error: unknown) => (error instanceof Error ? (error.cause instanceof Error ? error.cause.message : error.message) : String(error)),
    );

  /** The token of a ServiceAccount bound to the chart's metrics-reader ClusterRole, as a user's Prometheus has. */
  let scraperToken = '';

  /**
   * kubernetes.io/tls Secrets `<cluster>-client-tls` and `<cluster>-peer-tls` (tls.crt, tls.key, ca.crt)
   * for the members' DNS names, from a CA made now (the keys live only in the cluster and a temporary folder).
   */
  async function createTlsSecrets(name: string): Promise<void> {
    const ca = TestCa.create(`${name}-ca`);
    try {
      const domain = `${namespace}.svc`;
      const dnsNames = [`*.${name}-peers.${domain}.cluster.local`, `*.${name}-peers.${domain}`, `${name}-client.${domain}.cluster.local`, `${name}-client.${domain}`, `${name}-client`, 'localhost'];
      const client = ca.issue('client', { commonName: `${name}-client`, usage: 'serverAuth', dnsNames, ips: ['127.0.0.1'] });
      const peer = ca.issue('peer', { commonName: `${name}-peer`, usage: 'serverAuth,clientAuth', dnsNames });
      for (const [kind, issued] of [['client', client], ['peer', peer]] as const) {
        await kubectlIn(namespace, ['create', 'secret', 'generic', `${name}-${kind}-tls`, '--type=kubernetes.io/tls', `--from-file=tls.crt=${issued.certFile}`, `--from-file=tls.key=${issued.keyFile}`, `--from-file=ca.crt=${ca.caFile}`]);
      }
    } finally {
      ca.close();
    }
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
    // helm --wait returns once the Deployment is available, which with maxUnavailable 1 is one replica Ready.
    const deployments = await eventually('both operator replicas Ready', 3 * 60_000, async () => {
      const list = await kubectlJson<List<{ metadata: { name: string }; status?: { readyReplicas?: number } }>>(node, ['-n', systemNamespace, 'get', 'deployments']);
      return list?.items[0]?.status?.readyReplicas === 2 ? list : undefined;
    });
    assert.equal(deployments.items.length, 1);
    const pods = (await operatorPodList());
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
    // The operator's own Pods meet Pod Security `restricted`: enforcing it on their namespace (a server
    // dry run) warns about every running Pod that would violate it, and warns about none.
    const label = await node.kubectl(['label', 'namespace', systemNamespace, 'pod-security.kubernetes.io/enforce=restricted', '--dry-run=server', '--overwrite']);
    assert.equal(label.code, 0, label.stderr);
    assert.doesNotMatch(label.stderr, /violate/, `the operator Pods under restricted: ${label.stderr}`);
  });

  test("the operator's metrics need a token the chart's metrics-reader ClusterRole admits; health needs none", async () => {
    const pods = (await operatorPodList());
    const podIp = pods[0]?.status?.podIP;
    assert.ok(podIp !== undefined);
    // Two ServiceAccounts (the operator remembers a denial for 10 s: one account for each answer).
    await kubectlIn(systemNamespace, ['create', 'serviceaccount', 'nobody']);
    await kubectlIn(systemNamespace, ['create', 'serviceaccount', 'scraper']);
    await kubectlOk(node, ['create', 'clusterrolebinding', 'scraper-metrics', `--clusterrole=${release}-etcd-robustness-operator-metrics-reader`, `--serviceaccount=${systemNamespace}:scraper`]);
    const unbound = (await kubectlIn(systemNamespace, ['create', 'token', 'nobody'])).trim();
    scraperToken = (await kubectlIn(systemNamespace, ['create', 'token', 'scraper'])).trim();
    assert.equal((await httpsGet(`https://${podIp}:8443/metrics`)).status, 401, 'no token');
    assert.equal((await httpsGet(`https://${podIp}:8443/metrics`, unbound)).status, 403, 'a token without the role');
    const scraped = await eventually('metrics with the reader role', 60_000, async () => {
      const answer = await httpsGet(`https://${podIp}:8443/metrics`, scraperToken);
      return answer.status === 200 ? answer : undefined;
    });
    assert.match(scraped.body, /^# HELP /m);
    assert.notEqual(await plainGet(`http://${podIp}:8443/metrics`), 200, 'no plain HTTP on the metrics port');
    assert.equal(await plainGet(`http://${podIp}:8081/healthz`), 200, "the kubelet's probes need no token");
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

    // The agents answer only TLS, with a certificate of the cluster's agent CA for the member's name.
    const credentials = await agentCredentials('demo');
    for (const pod of pods) {
      assert.equal((await agentOf(pod, 'demo', credentials).status()).member, pod.metadata!.name!);
      assert.notEqual(await plainGet(`http://${pod.status!.podIP!}:9095/v1/status`), 200, `${pod.metadata!.name!}: no plain HTTP on the agent port`);
    }

    // The chart's default NetworkPolicies: the members admit the agent port from the operator's and its runner Pods only.
    // (This node's bridge CNI does not enforce NetworkPolicy: the objects and their selectors are checked.)
    const policy = await kubectlJson<{
      spec: { podSelector: { matchLabels: Record<string, string> }; ingress: { from?: { namespaceSelector?: { matchLabels: Record<string, string> }; podSelector?: { matchLabels: Record<string, string> } }[]; ports: { port: number }[] }[] };
    }>(node, ['-n', namespace, 'get', 'networkpolicy', 'demo-members']);
    assert.ok(policy !== undefined, 'the operator made the NetworkPolicy demo-members');
    const selects = (labels: Record<string, string> | undefined, selector: Record<string, string> | undefined): boolean =>
      Object.entries(selector ?? {}).every(([k, v]) => labels?.[k] === v);
    for (const pod of pods) assert.ok(selects(pod.metadata?.labels, policy.spec.podSelector.matchLabels), `it selects ${pod.metadata?.name}`);
    const agentRule = policy.spec.ingress.find((rule) => rule.ports.some((p) => p.port === 9095));
    assert.ok(agentRule?.from?.length === 2, JSON.stringify(policy.spec));
    const [from, runnersFrom] = [agentRule.from[0]!, agentRule.from[1]!];
    assert.deepEqual(from.namespaceSelector?.matchLabels, { 'kubernetes.io/metadata.name': systemNamespace });
    assert.deepEqual(runnersFrom.namespaceSelector?.matchLabels, { 'kubernetes.io/metadata.name': systemNamespace });
    assert.deepEqual(runnersFrom.podSelector?.matchLabels, runnerPodSelector, 'and the runner Pods (the run test checks a runner carries these labels)');
    assert.ok(!pods.some((p) => selects(p.metadata?.labels, runnersFrom.podSelector?.matchLabels)), 'not the members');
    const operatorPods = (await operatorPodList());
    assert.ok(operatorPods.length > 0 && operatorPods.every((p) => selects(p.metadata?.labels, from.podSelector?.matchLabels)), 'the agent port admits the operator Pods');
    assert.ok(!pods.some((p) => selects(p.metadata?.labels, from.podSelector?.matchLabels)), 'and not the members');
    const operatorPolicy = await kubectlJson<{ spec: { podSelector: { matchLabels: Record<string, string> } } }>(node, ['-n', systemNamespace, 'get', 'networkpolicy', `${release}-etcd-robustness-operator`]);
    assert.ok(operatorPods.every((p) => selects(p.metadata?.labels, operatorPolicy?.spec.podSelector.matchLabels)), "the chart's policy selects the operator Pods");
  });

  test('config/samples/robustnessrun-against-cluster.yaml: kills, pauses and partitions, Passed, with Events, metrics and a report', async () => {
    // The sample as written, 35 s of its 60 (CI time).
    const sampleRun = parse(readFileSync(sample('robustnessrun-against-cluster.yaml'), 'utf8')) as { spec: { duration: string } };
    sampleRun.spec.duration = '35s';
    await kubectlIn(namespace, ['apply', '-f', '-'], stringify(sampleRun));
    const run = await waitFinished('demo-faults', 8 * 60_000);
    assert.equal(run.status?.phase, 'Passed', `the run: ${JSON.stringify(run.status)}`);
    assert.equal(run.status?.verdict, 'linearizable');
    assert.ok((run.status?.faults?.injected ?? 0) > 0, 'faults were injected');
    assert.equal(run.status?.faults?.failed, 0, 'no fault failed');
    assert.ok((run.status?.operations?.ok ?? 0) > 1000, `operations: ${JSON.stringify(run.status?.operations)}`);

    const reasons = await eventReasons('demo-faults');
    for (const reason of ['RunStarted', 'FaultInjected', 'FaultHealed', 'RunPassed']) assert.ok(reasons.has(reason), `Event ${reason} (${[...reasons].join(', ')})`);

    // It ran in a runner Pod of its own (a Job in the release namespace, under the runner ServiceAccount):
    // its live series are scraped from that Pod, which serves them for a while after the run.
    const runners = await runnerPods('demo-faults');
    assert.equal(runners.length, 1, `one runner Pod: ${runners.map((p) => p.metadata?.name).join(', ')}`);
    const runner = runners[0]!;
    assert.equal(runner.spec?.serviceAccountName, `${release}-etcd-robustness-operator-runner`);
    assert.equal(runner.metadata?.labels?.['etcd.robustness.io/run-number'], '1');
    for (const [k, v] of Object.entries(runnerPodSelector)) assert.equal(runner.metadata?.labels?.[k], v, `the members' NetworkPolicy admits the runner (${k})`);
    assert.equal(runner.status?.phase === 'Running' || runner.status?.phase === 'Succeeded', true, `runner Pod ${runner.status?.phase}`);
    const runnerMetrics = await httpsGet(`https://${runner.status!.podIP!}:8443/metrics`, scraperToken);
    assert.equal(runnerMetrics.status, 200, runnerMetrics.body);
    const operations = samples(runnerMetrics.body, 'etcd_robustness_operations_total').filter((s) => s.labels['run'] === `${namespace}/demo-faults`);
    assert.ok(operations.reduce((sum, s) => sum + s.value, 0) > 1000, 'etcd_robustness_operations_total of the run, from its runner Pod');
    assert.equal((await httpsGet(`https://${runner.status!.podIP!}:8443/metrics`)).status, 401, "the runner's /metrics needs a token");
    // The finished run is counted by the operator, which outlives the runner.
    const operatorTexts = await Promise.all(
      (await operatorPodList()).map(async (p) => {
        const answer = await httpsGet(`https://${p.status!.podIP!}:8443/metrics`, scraperToken);
        assert.equal(answer.status, 200, `${p.metadata!.name!}: ${answer.body}`);
        return answer.body;
      }),
    );
    const passed = operatorTexts.flatMap((text) => samples(text, 'etcd_robustness_runs_total')).filter((s) => s.labels['run'] === `${namespace}/demo-faults` && s.labels['verdict'] === 'linearizable');
    assert.equal(passed.reduce((sum, s) => sum + s.value, 0), 1, 'one run counted linearizable');
    assert.equal(samples(runnerMetrics.body, 'etcd_robustness_runs_total').length, 0, 'and not by the runner too');

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

  test('the failpoint image with client and peer TLS from Secrets: kills, pauses, partitions, delays and gofail panics, two at a time, Passed; beside it two runs against demo: three runs against two clusters at once, each in its own runner Pod', async () => {
    await createTlsSecrets('chaos');
    await kubectlIn(namespace, ['apply', '-f', '-'], clusterManifest('chaos', { failpoints: true, tls: true }));
    const available = await waitAvailable(3, 6 * 60_000, 'chaos');
    assert.ok(available.status?.members?.every((m) => m.clientUrl?.startsWith('https://') === true && m.peerUrl?.startsWith('https://') === true), JSON.stringify(available.status?.members));
    await waitAvailable(3, 5 * 60_000);
    // Two shared runs against demo (one with faults) go at the same time as chaos-faults.
    const sharedRun = (name: string, extra: string[]): string =>
      [
        'apiVersion: etcd.robustness.io/v1alpha1',
        'kind: RobustnessRun',
        `metadata: {name: ${name}}`,
        'spec:',
        '  clusterRef: {name: demo}',
        '  mode: shared',
        '  duration: 25s',
        '  seed: 11',
        '  traffic: {profile: etcd, qps: {target: 50}}',
        '  runner: {resources: {requests: {cpu: 50m, memory: 96Mi}}}',
        ...extra,
        '',
      ].join('\n');
    const beside = ['demo-shared-faults', 'demo-shared'];
    await kubectlIn(namespace, ['apply', '-f', '-'], [
      sharedRun('demo-shared-faults', ['  faults: {allowShared: true, interval: {min: 2s, max: 4s}, duration: {min: 1s, max: 2s}, choices: [{fault: pause}, {fault: kill, target: follower}]}']),
      sharedRun('demo-shared', []),
    ].join('---\n'));
    await kubectlIn(namespace, ['apply', '-f', '-'], runManifest('chaos-faults', 'chaos', [
      '  duration: 35s',
      '  faults:',
      '    maxConcurrentFaults: 2',
      '    interval: {min: 2s, max: 4s}',
      '    duration: {min: 1s, max: 3s}',
      '    choices:',
      '      - {fault: kill, target: follower}',
      '      - {fault: pause}',
      '      - {fault: partition, target: minority}',
      '      - {fault: delay}',
      '      - {fault: raftBeforeSavePanic}',
      '      - {fault: raftAfterSavePanic}',
    ]));
    const run = await waitFinished('chaos-faults', 8 * 60_000);
    assert.equal(run.status?.phase, 'Passed', `the run: ${JSON.stringify(run.status)}`);
    assert.equal(run.status?.verdict, 'linearizable');
    assert.equal(run.status?.faults?.failed, 0, 'no fault failed');
    const events = await kubectlJson<EventList>(node, ['-n', namespace, 'get', 'events.events.k8s.io']);
    const injected = events?.items.filter((e) => e.regarding.name === 'chaos-faults' && e.reason === 'FaultInjected').map((e) => e.note ?? '') ?? [];
    assert.ok(injected.some((note) => /Panic/.test(note)), `a gofail panic was injected: ${injected.join(' | ')}`);
    assert.ok(injected.length >= 4, `several faults: ${injected.join(' | ')}`);

    const finished = [run, ...(await Promise.all(beside.map((name) => waitFinished(name, 6 * 60_000))))];
    for (const other of finished.slice(1)) {
      assert.equal(other.status?.phase, 'Passed', `${other.metadata.name}: ${JSON.stringify(other.status)}`);
      assert.equal(other.status?.verdict, 'linearizable');
    }
    assert.ok((finished[1]!.status?.faults?.injected ?? 0) > 0, 'faults were injected into demo too');
    // At once: every run started before any ended.
    const starts = finished.map((r) => Date.parse(r.status!.lastRun!.startTime));
    const ends = finished.map((r) => Date.parse(r.status!.lastRun!.endTime!));
    assert.ok(Math.max(...starts) < Math.min(...ends), `the runs overlapped: ${finished.map((r) => `${r.metadata.name} ${r.status?.lastRun?.startTime} .. ${r.status?.lastRun?.endTime}`).join('; ')}`);
    // Each in a runner Pod of its own, with the resources its spec asked for (the operator's default otherwise).
    const pods = await Promise.all(['chaos-faults', ...beside].map(async (name) => runnerPods(name)));
    assert.equal(new Set(pods.flat().map((p) => p.metadata?.name)).size, 3, `three runner Pods: ${pods.flat().map((p) => p.metadata?.name).join(', ')}`);
    assert.deepEqual(pods.map((list) => list.length), [1, 1, 1]);
    assert.deepEqual(pods.map((list) => list[0]!.spec?.containers[0]?.resources?.requests?.['cpu']), ['100m', '50m', '50m']);
    // Deleting a run deletes its Jobs.
    await kubectlIn(namespace, ['delete', 'robustnessrun', ...beside, '--wait=true']);
    const jobs = await kubectlJson<List<{ metadata: { name: string } }>>(node, ['-n', systemNamespace, 'get', 'jobs', '-l', `etcd.robustness.io/run-namespace=${namespace},etcd.robustness.io/run in (${beside.join(',')})`]);
    assert.deepEqual(jobs?.items.map((j) => j.metadata.name), [], 'their Jobs went with them');
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

  test('a self-test run (stale reads through a lagging member) ends Failed with the violation', async () => {
    // The kills and panics before restarted members under the kubelet's crash back-off: start from a whole cluster.
    await waitAvailable(3, 5 * 60_000, 'chaos');
    await kubectlIn(namespace, ['apply', '-f', '-'], runManifest('chaos-selftest', 'chaos', ['  duration: 12s', '  selfTest:', '    staleReads: {}']));
    const run = await waitFinished('chaos-selftest', 5 * 60_000);
    assert.equal(run.status?.phase, 'Failed', `the run: ${JSON.stringify(run.status)}`);
    assert.equal(run.status?.verdict, 'violation');
    assert.ok((run.status?.violations ?? []).some((v) => v.check === 'linearizability'), `violations: ${JSON.stringify(run.status?.violations)}`);
    assert.ok((await eventReasons('chaos-selftest')).has('ViolationDetected'));
    assert.deepEqual(await activeAgentFaults('chaos'), [], 'the lag was healed');
  });

  test('a held crash on a member Pod keeps etcd down for its duration (etcd-launcher), without the kubelet restarting the container', async () => {
    await waitAvailable(3, 5 * 60_000, 'chaos');
    const restarts = async (): Promise<Record<string, number>> =>
      Object.fromEntries((await memberPods('chaos')).map((p) => [p.metadata!.name!, p.status?.containerStatuses?.find((c) => c.name === 'etcd')?.restartCount ?? -1]));
    const before = await restarts();
    await kubectlIn(namespace, ['apply', '-f', '-'], runManifest('chaos-crash', 'chaos', [
      '  duration: 25s',
      '  faults:',
      '    interval: {min: 2s, max: 3s}',
      '    duration: {min: 4s, max: 4s}',
      '    choices: [{fault: crash, target: follower}]',
    ]));
    const run = await waitFinished('chaos-crash', 5 * 60_000);
    assert.equal(run.status?.phase, 'Passed', `the run: ${JSON.stringify(run.status)}`);
    assert.equal(run.status?.verdict, 'linearizable');
    assert.equal(run.status?.faults?.failed, 0, 'no fault failed: each crash stayed down, unanswering, until healed');
    assert.ok((run.status?.faults?.injected ?? 0) >= 2, `crashes: ${JSON.stringify(run.status?.faults)}`);
    const events = await kubectlJson<EventList>(node, ['-n', namespace, 'get', 'events.events.k8s.io']);
    const healed = events?.items.filter((e) => e.regarding.name === 'chaos-crash' && e.reason === 'FaultHealed').map((e) => e.note ?? '') ?? [];
    assert.ok(healed.length >= 2 && healed.every((note) => /crash on .* stayed down until healed/.test(note)), `FaultHealed: ${healed.join(' | ')}`);
    // The launcher started etcd again inside the running container: the kubelet restarted nothing.
    assert.deepEqual(await restarts(), before, 'etcd containers were not restarted by the kubelet');
    assert.deepEqual(await activeAgentFaults('chaos'), [], 'every hold was healed');
    await waitAvailable(3, 2 * 60_000, 'chaos');
  });

  test('a continuous schedule across the leading operator Pod force-deleted mid-run: the run goes on in its runner Pod and Passes, the other replica leads and starts the next runs, the history stays bounded, no fault is left', async () => {
    await waitAvailable(3, 5 * 60_000, 'chaos');
    await kubectlIn(namespace, ['apply', '-f', '-'], runManifest('chaos-takeover', 'chaos', [
      '  schedule: {kind: continuous, window: 15s, historyLimit: 2}',
      '  faults:',
      '    interval: {min: 1s, max: 2s}',
      '    duration: {min: 5s, max: 10s}',
      '    choices: [{fault: pause}, {fault: partition, target: minority}]',
    ]));
    const during = await eventually('a fault injected by the run', 5 * 60_000, async () => {
      const current = await getRun('chaos-takeover');
      return (current?.status?.faults?.injected ?? 0) > 0 ? current : undefined;
    }, describeCluster, 500);
    const interrupted = during.status!.runNumber!;
    const leaderBefore = await leaseHolder();
    await kubectlIn(systemNamespace, ['delete', 'pod', leaderBefore, '--grace-period=0', '--force']);
    const leaderAfter = await eventually('another operator replica to lead', 3 * 60_000, async () => {
      const holder = await leaseHolder();
      return holder !== '' && holder !== leaderBefore ? holder : undefined;
    }, describeCluster, 1000);
    assert.notEqual(leaderAfter, leaderBefore);
    // The run did not die with the operator: its runner Pod drove it to the end.
    const survived = await eventually(`run ${interrupted} to finish`, 4 * 60_000, async () => {
      const current = await getRun('chaos-takeover');
      return current?.status?.history?.find((r) => r.number === interrupted);
    }, describeCluster, 1000);
    assert.equal(survived.phase, 'Passed', `the run across the leader's death: ${JSON.stringify(survived)}`);
    // The new leader goes on with the schedule: the next run starts once it ended, and only the last two runs are kept.
    await eventually(`run ${interrupted + 1} of the continuous schedule to start`, 4 * 60_000, async () => ((await getRun('chaos-takeover'))?.status?.runNumber ?? 0) > interrupted ? true : undefined, describeCluster, 1000);
    await kubectlIn(namespace, ['patch', 'robustnessrun', 'chaos-takeover', '--type=merge', '-p', '{"spec":{"schedule":{"suspend":true}}}']);
    const done = await eventually('the last run to finish with the schedule suspended', 4 * 60_000, async () => {
      const current = await getRun('chaos-takeover');
      return condition(current?.status?.conditions, 'Running')?.status === 'False' && (current?.status?.history?.[0]?.number ?? 0) === current?.status?.runNumber ? current : undefined;
    }, describeCluster, 1000);
    const history = done.status?.history ?? [];
    assert.equal(history.length, 2, `the history keeps historyLimit runs: ${JSON.stringify(history)}`);
    assert.deepEqual(history.map((r) => r.number), [done.status!.runNumber!, done.status!.runNumber! - 1], 'newest first');
    for (const record of history) assert.notEqual(record.verdict, 'violation', JSON.stringify(record));
    // Faults are leases: whatever was injected, its agent healed it.
    await eventually('no fault left on any agent', 3 * 60_000, async () => ((await activeAgentFaults('chaos')).length === 0 ? true : undefined), async () => JSON.stringify(await activeAgentFaults('chaos')), 2000);
    await kubectlIn(namespace, ['delete', 'robustnessrun', 'chaos-takeover', '--wait=true']);
    // A cron schedule on the now idle chaos cluster: its minutes go by during the gated upgrade (on its own
    // cluster) and the cron test after it checks them.
    await kubectlIn(namespace, ['apply', '-f', '-'], runManifest('chaos-cron', 'chaos', ['  duration: 8s', '  schedule: {kind: cron, cron: "* * * * *", historyLimit: 1}']));
  });

  test('config/samples/etcdcluster-upgrade-gated.yaml: a gated rolling upgrade 3.5.35 -> 3.6.16 of member Pods', async () => {
    // The sample as written, with 10 s gates instead of a minute each (five gates).
    const gated = parse(readFileSync(sample('etcdcluster-upgrade-gated.yaml'), 'utf8')) as { spec: { upgradeGate: { minDuration: string; runTemplate: { spec: { duration?: string } } } } };
    gated.spec.upgradeGate.minDuration = '10s';
    gated.spec.upgradeGate.runTemplate.spec.duration = '10s';
    await kubectlIn(namespace, ['apply', '-f', '-'], stringify(gated));
    const before = await waitAvailable(3, 6 * 60_000, 'gated');
    assert.deepEqual(before.status?.members?.map((m) => m.version), ['3.5.35', '3.5.35', '3.5.35']);
    await kubectlIn(namespace, ['patch', 'etcdcluster', 'gated', '--type=merge', '-p', '{"spec":{"version":"3.6.16"}}']);
    const done = await eventually(
      'the upgrade to finish',
      15 * 60_000,
      async () => {
        const current = await cluster('gated');
        const phase = current?.status?.upgrade?.phase;
        return (phase === 'Succeeded' || phase === 'Blocked' || phase === 'Refused' || phase === 'RolledBack') && current?.status?.upgrade?.to === '3.6.16' ? current : undefined;
      },
      async () => `${JSON.stringify((await cluster('gated'))?.status?.upgrade)}\n${await describeCluster()}`,
      2000,
    );
    const upgrade = done.status!.upgrade!;
    assert.equal(upgrade.phase, 'Succeeded', JSON.stringify(upgrade));
    assert.deepEqual(
      upgrade.gates.map((g) => [g.step, g.phase]),
      // After each member but the last, whose gate is the end gate.
      [['before', 'Passed'], ...upgrade.order.slice(0, -1).map((m) => [`after-${m}`, 'Passed']), ['end', 'Passed']],
    );
    const after = await waitAvailable(3, 5 * 60_000, 'gated');
    assert.deepEqual(after.status?.members?.map((m) => m.version), ['3.6.16', '3.6.16', '3.6.16']);
    for (const pod of await memberPods('gated')) {
      assert.equal(pod.spec?.containers.find((c) => c.name === 'etcd')?.image, 'gcr.io/etcd-development/etcd:v3.6.16', `${pod.metadata?.name} runs the new image`);
    }
    await kubectlIn(namespace, ['delete', 'etcdcluster', 'gated', '--wait=true', '--timeout=5m']);
  });

  test('a cron schedule: the next run starts at its minute although the leading operator Pod was force-deleted between the runs', async () => {
    // Between runs, with time to spare before the next minute: the leader's successor must start that run.
    const first = await eventually('a finished run of the cron schedule, 35 s or more before the next minute', 4 * 60_000, async () => {
      const current = await getRun('chaos-cron');
      const last = current?.status?.history?.[0];
      const secondsLeft = 60 - new Date().getUTCSeconds();
      return last !== undefined && current?.status?.phase !== 'Running' && current?.status?.runNumber === last.number && secondsLeft >= 35 ? current : undefined;
    }, describeCluster, 1000);
    const firstRecord = first.status!.history![0]!;
    const firstStart = new Date(firstRecord.startTime);
    assert.ok(firstStart.getUTCSeconds() < 15, `run ${firstRecord.number} started at its minute: ${firstStart.toISOString()}`);
    const leaderBefore = await leaseHolder();
    await kubectlIn(systemNamespace, ['delete', 'pod', leaderBefore, '--grace-period=0', '--force']);
    const next = firstRecord.number + 1;
    const second = await eventually(`run ${next} of the cron schedule to finish`, 4 * 60_000, async () => {
      const current = await getRun('chaos-cron');
      return current?.status?.history?.[0]?.number === next ? current : undefined;
    }, describeCluster, 1000);
    assert.notEqual(await leaseHolder(), leaderBefore, `run ${next} was started by the other replica`);
    const record = second.status!.history![0]!;
    const secondStart = new Date(record.startTime);
    const due = Math.ceil((firstStart.getTime() + 1) / 60_000) * 60_000;
    assert.ok(secondStart.getTime() >= due && secondStart.getTime() - due < 15_000, `run ${next} started at ${secondStart.toISOString()}, due at ${new Date(due).toISOString()}`);
    assert.equal(record.phase, 'Passed', JSON.stringify(record));
    assert.equal(second.status?.history?.length, 1, 'historyLimit 1');
    await kubectlIn(namespace, ['delete', 'robustnessrun', 'chaos-cron', '--wait=true']);
    await kubectlIn(namespace, ['delete', 'etcdcluster', 'chaos', '--wait=true', '--timeout=5m']);
    await kubectlIn(namespace, ['delete', 'secret', 'chaos-client-tls', 'chaos-peer-tls']);
  });

  test('config/samples/etcdcluster-two-node.yaml and two-node-failover.yaml on member Pods: failovers through the witness Lease, linearizable, watches valid', async () => {
    await kubectlIn(namespace, ['apply', '-f', sample('etcdcluster-two-node.yaml')]);
    await waitAvailable(2, 5 * 60_000, 'pair');
    // The sample scenario, shortened for CI (its full 5 minutes are the closing note's measurement).
    const scenario = parse(readFileSync(sample('two-node-failover.yaml'), 'utf8')) as { spec: { duration: string } };
    scenario.spec.duration = '100s';
    await kubectlIn(namespace, ['apply', '-f', '-'], stringify(scenario));
    const run = await waitFinished('two-node-failover', 10 * 60_000);
    const status = run.status!;
    if (status.phase !== 'Passed') {
      const notes = (await kubectlJson<EventList>(node, ['-n', namespace, 'get', 'events.events.k8s.io']))?.items.filter((e) => ['two-node-failover', 'pair'].includes(e.regarding.name ?? '')).map((e) => `${e.reason}: ${e.note ?? ''}`);
      assert.fail(`the run: ${JSON.stringify(status)}\n${(notes ?? []).join('\n')}\n${await describeCluster()}`);
    }
    assert.equal(status.verdict, 'linearizable');
    assert.deepEqual(status.violations ?? [], []);
    const writable = status.lastRun?.faultToWritable;
    assert.ok(writable && writable.recovered >= 3, `time to writable: ${JSON.stringify(writable)}`);
    console.log(`two-node-failover on Pods: ${JSON.stringify(writable)}, faults ${JSON.stringify(status.faults)}, ${JSON.stringify(status.operations)}`);

    const events = await kubectlJson<EventList>(node, ['-n', namespace, 'get', 'events.events.k8s.io']);
    const failovers = events?.items.filter((e) => e.regarding.name === 'pair' && e.reason === 'FailoverCompleted') ?? [];
    assert.ok(failovers.length >= 2, `failovers: ${failovers.map((e) => e.note ?? '').join(' | ')}`);
    const lease = await kubectlJson<{ metadata: { annotations?: Record<string, string> } }>(node, ['-n', namespace, 'get', 'lease', 'pair-witness']);
    assert.ok(lease !== undefined, 'the witness record is the Lease pair-witness');
    // The pair is whole again: two Ready member Pods (the fenced ones and their PVCs are gone), no fault left.
    const whole = await waitAvailable(2, 5 * 60_000, 'pair');
    assert.equal(whole.status?.witness?.phase, 'paired', JSON.stringify(whole.status?.witness));
    assert.ok(whole.status?.witness?.lastFailover?.writableAt !== undefined && (whole.status.witness.fenced ?? []).length >= 1, JSON.stringify(whole.status?.witness));
    assert.deepEqual(await activeAgentFaults('pair'), [], 'every fault healed');
    await kubectlIn(namespace, ['delete', 'etcdcluster', 'pair', '--wait=true', '--timeout=5m']);
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

/** An EtcdCluster of three members with the fault agent, as the sample but smaller requests. */
function clusterManifest(name: string, options: { failpoints?: boolean; tls?: boolean } = {}): string {
  return [
    'apiVersion: etcd.robustness.io/v1alpha1',
    'kind: EtcdCluster',
    `metadata: {name: ${name}}`,
    'spec:',
    '  version: "3.6.16"',
    '  replicas: 3',
    '  storage: {size: 1Gi}',
    '  resources: {requests: {cpu: 150m, memory: 128Mi}, limits: {memory: 1Gi}}',
    `  image: {failpoints: ${options.failpoints === true}}`,
    '  agent: {enabled: true}',
    ...(options.tls === true ? [`  tls: {client: {secretName: ${name}-client-tls}, peer: {secretName: ${name}-peer-tls}}`] : []),
    '',
  ].join('\n');
}

/** A RobustnessRun against `cluster` in exclusive mode at 100 QPS; `spec` adds its own lines. */
function runManifest(name: string, cluster: string, spec: string[]): string {
  return [
    'apiVersion: etcd.robustness.io/v1alpha1',
    'kind: RobustnessRun',
    `metadata: {name: ${name}}`,
    'spec:',
    `  clusterRef: {name: ${cluster}}`,
    '  mode: exclusive',
    '  seed: 7',
    '  traffic: {profile: etcd, qps: {target: 100}}',
    ...spec,
    '',
  ].join('\n');
}
