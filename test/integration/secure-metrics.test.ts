// Secure metrics serving against a real kube-apiserver (RBAC authorization, ServiceAccount tokens from
// the TokenRequest API): the operator serves /metrics and the gates over HTTPS and asks the API server
// about every request (TokenReview, SubjectAccessReview). No token: 401; a token without the permission:
// 403; the metrics-reader ClusterRole (config/rbac, the same rule as the chart's): 200; a gate needs `get`
// on the object it judges, in that object's namespace. A real Prometheus scrapes it as the chart's
// ServiceMonitor does (HTTPS, a bearer token, the self-signed certificate not verified).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { selfSignedCertificate, type ServingCertificate } from '../../src/controller/kit/index.ts';
import { Operator } from '../../src/controller/operator.ts';
import { ConfigMapReportStore } from '../../src/controller/report-store/index.ts';
import { LocalPlacement } from '../../src/controller/placement/local.ts';
import { packageRoot } from '../../src/local/index.ts';
import { TestApiserver } from '../helpers/kube-apiserver.ts';
import { eventually, installCrds, kubectlOk } from '../helpers/operator.ts';
import { TestPrometheus } from '../helpers/prometheus.ts';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

describe('secure metrics serving on a real kube-apiserver', { timeout: 180_000 }, () => {
  let apiserver: TestApiserver;
  let operator: Operator;
  let tls: ServingCertificate;
  let root: string;
  const tokens: Record<string, string> = {};

  /** A ServiceAccount's token (TokenRequest), the kind Prometheus and Argo Rollouts present. */
  async function serviceAccountToken(namespace: string, name: string): Promise<string> {
    await kubectlOk(apiserver, ['-n', namespace, 'create', 'serviceaccount', name]);
    return (await kubectlOk(apiserver, ['-n', namespace, 'create', 'token', name, '--duration=1h'])).trim();
  }

  function get(url: string, token?: string): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const request = https.get(url, { ca: tls.cert, headers: token === undefined ? {} : { Authorization: `Bearer ${token}` }, timeout: 10_000 }, (response) => {
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (body += chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body }));
      });
      request.on('error', reject);
    });
  }

  const metricsUrl = (): string => operator.metricsUrl;
  const gateUrl = (plural: string, namespace: string, name: string): string => new URL(`/gates/${plural}/${namespace}/${name}`, operator.metricsUrl).href;

  before(async () => {
    apiserver = await TestApiserver.start();
    root = mkdtempSync(path.join(os.tmpdir(), 'secure-metrics-'));
    await installCrds(apiserver);
    for (const namespace of ['ops', 'team-a', 'team-b']) await kubectlOk(apiserver, ['create', 'namespace', namespace]);
    // The same rule as the chart's <release>-metrics-reader ClusterRole.
    await kubectlOk(apiserver, ['apply', '-f', path.join(packageRoot, 'config', 'rbac', 'metrics_reader_role.yaml')]);
    tokens['none'] = await serviceAccountToken('ops', 'nobody');
    tokens['prometheus'] = await serviceAccountToken('ops', 'prometheus');
    await kubectlOk(apiserver, ['create', 'clusterrolebinding', 'prometheus-metrics', '--clusterrole=metrics-reader', '--serviceaccount=ops:prometheus']);
    // A reader of team-a's EtcdClusters only (what Argo Rollouts' analysis would be given).
    tokens['teamA'] = await serviceAccountToken('team-a', 'rollouts');
    await kubectlOk(apiserver, ['-n', 'team-a', 'create', 'role', 'read-clusters', '--verb=get', '--resource=etcdclusters.etcd.robustness.io']);
    await kubectlOk(apiserver, ['-n', 'team-a', 'create', 'rolebinding', 'rollouts', '--role=read-clusters', '--serviceaccount=team-a:rollouts']);
    // An EtcdCluster in each team's namespace; the operator watches neither (nothing is started), the gates read them anyway.
    for (const namespace of ['team-a', 'team-b']) {
      await kubectlOk(apiserver, ['-n', namespace, 'apply', '-f', '-'], 'apiVersion: etcd.robustness.io/v1alpha1\nkind: EtcdCluster\nmetadata: {name: demo}\nspec: {replicas: 3, version: 3.6.16}\n');
    }
    tls = await selfSignedCertificate('test operator', ['127.0.0.1']);
    operator = await Operator.start({
      kubeConfig: apiserver.kubeConfig,
      placement: new LocalPlacement({ root }),
      reports: new ConfigMapReportStore({ kubeConfig: apiserver.kubeConfig }),
      namespaces: ['ops'],
      identity: 'secure-metrics',
      host: '127.0.0.1',
      metricsPort: 0,
      healthPort: 0,
      secureMetrics: { tls },
    });
  });

  after(async () => {
    await operator?.close();
    await apiserver?.close();
    if (root !== undefined) rmSync(root, { recursive: true, force: true });
  });

  test('/metrics: HTTPS; no token 401, an unknown token 401, a token without RBAC 403, the metrics-reader role 200', async () => {
    assert.match(metricsUrl(), /^https:\/\/127\.0\.0\.1:\d+\/metrics$/);
    const anonymous = await get(metricsUrl());
    assert.equal(anonymous.status, 401);
    assert.equal(anonymous.headers['www-authenticate'], 'Bearer');
    assert.doesNotMatch(anonymous.body, /controller_runtime/);
    assert.equal((await get(metricsUrl(), 'not-a-token')).status, 401);

    const forbidden = await get(metricsUrl(), tokens['none']);
    assert.equal(forbidden.status, 403);
    assert.match(forbidden.body, /user "system:serviceaccount:ops:nobody" may not get \/metrics/);

    const allowed = await get(metricsUrl(), tokens['prometheus']);
    assert.equal(allowed.status, 200, allowed.body);
    assert.match(allowed.body, /^# HELP /m);
    assert.match(allowed.body, /controller_runtime_reconcile_total|workqueue_depth/);
  });

  test('a gate needs get on the object it judges, in its namespace', async () => {
    const teamA = await get(gateUrl('etcdclusters', 'team-a', 'demo'), tokens['teamA']);
    assert.equal(teamA.status, 503, teamA.body);
    assert.deepEqual(
      (({ passing, kind, name }) => ({ passing, kind, name }))(JSON.parse(teamA.body) as { passing: boolean; kind: string; name: string }),
      { passing: false, kind: 'etcdcluster', name: 'team-a/demo' },
    );
    const otherNamespace = await get(gateUrl('etcdclusters', 'team-b', 'demo'), tokens['teamA']);
    assert.equal(otherNamespace.status, 403);
    assert.match(otherNamespace.body, /may not get etcdclusters\.etcd\.robustness\.io "demo" in namespace "team-b"/);
    assert.doesNotMatch(otherNamespace.body, /passing/, "nothing of team-b's verdict");
    // Not the runs of team-a either: the role names etcdclusters only.
    assert.equal((await get(gateUrl('robustnessruns', 'team-a', 'demo'), tokens['teamA'])).status, 403);
    // Reading /metrics gives no gate, and a gate reader cannot read /metrics.
    assert.equal((await get(gateUrl('etcdclusters', 'team-a', 'demo'), tokens['prometheus'])).status, 403);
    assert.equal((await get(metricsUrl(), tokens['teamA'])).status, 403);
    assert.equal((await get(gateUrl('etcdclusters', 'team-a', 'demo'))).status, 401);
  });

  test('health stays plain HTTP without a token (the kubelet probes it); the metrics port answers no plain HTTP', async () => {
    assert.match(operator.healthUrl, /^http:\/\//);
    const health = await fetch(`${operator.healthUrl}/healthz`, { signal: AbortSignal.timeout(5000) });
    assert.equal(health.status, 200);
    const plainUrl = metricsUrl().replace(/^https:/, 'http:');
    const plain = await fetch(plainUrl, { signal: AbortSignal.timeout(5000) }).then(
      (response) => response.status,
      () => 'refused',
    );
    assert.notEqual(plain, 200);
  });

  test("Prometheus scrapes it as the chart's ServiceMonitor does: HTTPS, a bearer token, the self-signed certificate", async () => {
    const url = new URL(metricsUrl());
    const prometheus = await TestPrometheus.start({ target: url.host, metricsPath: url.pathname, secure: { bearerToken: tokens['prometheus']! } });
    try {
      await eventually('the operator target is up', 30_000, async () => ((await prometheus.targetHealth()).includes('up') ? true : undefined), async () => JSON.stringify(await prometheus.targetHealth()));
      const up = await prometheus.query('up{job="etcd-robustness-operator"}');
      assert.equal(up[0]?.value[1], '1');
    } finally {
      await prometheus.close();
    }
  });
});
