// Where the kubernetes placement gets a cluster's client CA, on a real kube-apiserver: ca.crt of the
// Secret spec.tls.client names, handed to the reconciler (clientTls) and to runs (the fault runtime).
// A missing Secret, a Secret without ca.crt or with no certificate in it is an error naming both; the
// operator says so on the EtcdCluster (Available False, a Warning Event), starts no member, and goes on
// by itself once the Secret is right. No kubelet runs here: no Pod starts and no etcd answers.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { CoreV1Api, type V1Secret } from '@kubernetes/client-node';
import { clientTlsUnavailableReason } from '../../src/controller/etcdcluster/reconciler.ts';
import { Operator } from '../../src/controller/operator.ts';
import { ConfigMapReportStore } from '../../src/controller/report-store/index.ts';
import { clientCaKey, KubernetesPlacement } from '../../src/controller/placement/kubernetes.ts';
import { ClientTlsUnavailableError, type Condition, type EtcdCluster } from '../../src/domain/index.ts';
import { TestApiserver } from '../helpers/kube-apiserver.ts';
import { eventually, installCrds, kubectlJson, kubectlOk } from '../helpers/operator.ts';
import { placementFixtures } from '../helpers/placement-fixtures.ts';
import { TestCa, type IssuedCertificate } from '../helpers/tls.ts';

const namespace = 'client-tls';
const operatorImage = 'example.test/op:1';
const { etcdCluster } = placementFixtures(namespace, { version: '3.6.16' });

interface EventList {
  items: { reason: string; note?: string; type: string; regarding: { kind: string; name: string } }[];
}

const statusCode = (error: unknown): number | undefined => (error as { code?: number }).code;

/** A kubernetes.io/tls Secret with the given keys (each PEM, base64 in data). */
function tlsSecret(name: string, data: Record<string, Buffer>): V1Secret {
  return {
    metadata: { name, namespace },
    type: 'kubernetes.io/tls',
    data: Object.fromEntries(Object.entries(data).map(([key, value]) => [key, value.toString('base64')])),
  };
}

/** What the placement must refuse with: a ClientTlsUnavailableError naming the Secret and the key. */
function refusal(secret: string, key: string | undefined, message: RegExp): (error: unknown) => boolean {
  return (error: unknown) => {
    assert.ok(error instanceof ClientTlsUnavailableError, `a ClientTlsUnavailableError, got ${String(error)}`);
    assert.equal(error.secret, `${namespace}/${secret}`);
    assert.equal(error.key, key);
    assert.ok(error.message.includes(`${namespace}/${secret}`), `the message names the Secret: ${error.message}`);
    if (key !== undefined) assert.ok(error.message.includes(key), `the message names the key: ${error.message}`);
    assert.match(error.message, message);
    return true;
  };
}

describe('client TLS from Secrets with the kubernetes placement on a real kube-apiserver', { timeout: 240_000 }, () => {
  let apiserver: TestApiserver;
  let core: CoreV1Api;
  let placement: KubernetesPlacement;
  let ca: TestCa;
  let server: IssuedCertificate;

  before(async () => {
    ca = TestCa.create();
    server = ca.issue('server', { commonName: 'etcd-member', usage: 'serverAuth', dnsNames: [`*.secure-peers.${namespace}.svc.cluster.local`] });
    apiserver = await TestApiserver.start();
    core = apiserver.kubeConfig.makeApiClient(CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: namespace } } });
    placement = new KubernetesPlacement({ kubeConfig: apiserver.kubeConfig, operatorImage });
  });

  after(async () => {
    await placement?.close();
    await apiserver?.close();
    ca?.close();
  });

  const replaceSecret = async (secret: V1Secret): Promise<void> => {
    const name = secret.metadata!.name!;
    await core.deleteNamespacedSecret({ name, namespace }).catch((error: unknown) => {
      if (statusCode(error) !== 404) throw error;
    });
    await core.createNamespacedSecret({ namespace, body: secret });
  };

  test('the placement reads ca.crt of spec.tls.client, and names the Secret and the key when it cannot', async () => {
    assert.equal(await placement.clientTls(etcdCluster('plain')), undefined, 'no spec.tls.client: plain http, no CA');
    const secure = etcdCluster('secure', { tls: { client: { secretName: 'secure-client-tls' } } });

    await assert.rejects(placement.clientTls(secure), refusal('secure-client-tls', undefined, /not found/));
    await assert.rejects(placement.faultRuntime(secure), refusal('secure-client-tls', undefined, /not found/), 'a run cannot start without the CA either');

    await replaceSecret(tlsSecret('secure-client-tls', { 'tls.crt': server.cert, 'tls.key': server.key }));
    await assert.rejects(placement.clientTls(secure), refusal('secure-client-tls', clientCaKey, /missing \(the Secret has tls\.crt, tls\.key\)/));

    await replaceSecret(tlsSecret('secure-client-tls', { 'tls.crt': server.cert, 'tls.key': server.key, [clientCaKey]: Buffer.from('not a certificate\n') }));
    await assert.rejects(placement.clientTls(secure), refusal('secure-client-tls', clientCaKey, /holds no PEM certificate/));

    await replaceSecret(tlsSecret('secure-client-tls', { 'tls.crt': server.cert, 'tls.key': server.key, [clientCaKey]: ca.ca }));
    const tls = await placement.clientTls(secure);
    assert.deepEqual(tls, { ca: ca.ca }, 'the CA and nothing else: the members serve TLS, clients present no certificate');
    const runtime = await placement.faultRuntime(secure);
    try {
      assert.deepEqual(runtime.clientTls, { ca: ca.ca }, 'the run and its faults get the same CA');
    } finally {
      await runtime.close();
    }
  });

  test('the operator reports an unusable client TLS Secret on the EtcdCluster, starts nothing, and goes on once it is fixed', async () => {
    await installCrds(apiserver);
    const operator = await Operator.start({
      kubeConfig: apiserver.kubeConfig,
      placement: new KubernetesPlacement({ kubeConfig: apiserver.kubeConfig, operatorImage }),
      reports: new ConfigMapReportStore({ kubeConfig: apiserver.kubeConfig }),
      namespaces: [namespace],
      identity: 'client-tls-test',
      host: '127.0.0.1',
      metricsPort: 0,
      healthPort: 0,
    });
    try {
      const manifest = `apiVersion: etcd.robustness.io/v1alpha1
kind: EtcdCluster
metadata: {name: guarded, namespace: ${namespace}}
spec: {version: "3.6.16", replicas: 3, storage: {size: 1Gi}, tls: {client: {secretName: guarded-client-tls}}}
`;
      await kubectlOk(apiserver, ['apply', '-f', '-'], manifest);
      const get = (): Promise<EtcdCluster | undefined> => kubectlJson<EtcdCluster>(apiserver, ['-n', namespace, 'get', 'etcdcluster', 'guarded']);
      const available = (c: EtcdCluster | undefined): Condition | undefined => c?.status?.conditions?.find((x) => x.type === 'Available');
      const describe = async (): Promise<string> => JSON.stringify((await get())?.status ?? null);

      const missing = await eventually(
        'Available False with the client TLS reason',
        30_000,
        async () => {
          const condition = available(await get());
          return condition?.reason === clientTlsUnavailableReason ? condition : undefined;
        },
        describe,
      );
      assert.equal(missing.status, 'False');
      assert.match(missing.message ?? '', new RegExp(`Secret ${namespace}/guarded-client-tls: not found`));
      assert.equal((await get())?.status?.phase, 'Pending');
      const events = (await kubectlJson<EventList>(apiserver, ['-n', namespace, 'get', 'events.events.k8s.io']))!;
      const warning = events.items.find((e) => e.reason === clientTlsUnavailableReason && e.regarding.name === 'guarded');
      assert.ok(warning, `a ${clientTlsUnavailableReason} Event: ${JSON.stringify(events.items.map((e) => e.reason))}`);
      assert.equal(warning.type, 'Warning');
      assert.match(warning.note ?? '', /guarded-client-tls/);
      const pods = await core.listNamespacedPod({ namespace, labelSelector: 'etcd.robustness.io/cluster=guarded' });
      assert.deepEqual(pods.items, [], 'no member is started that the operator could not talk to');

      // The Secret appears without ca.crt: the message now names the key.
      await replaceSecret(tlsSecret('guarded-client-tls', { 'tls.crt': server.cert, 'tls.key': server.key }));
      await eventually(
        'the condition to name ca.crt',
        30_000,
        async () => (available(await get())?.message?.includes(`key ${clientCaKey}: missing`) === true ? true : undefined),
        describe,
      );

      // With the CA the operator goes on by itself: the first member's Pod, with its client listener on TLS.
      await replaceSecret(tlsSecret('guarded-client-tls', { 'tls.crt': server.cert, 'tls.key': server.key, [clientCaKey]: ca.ca }));
      const pod = await eventually('the first member Pod', 30_000, async () => {
        const list = await core.listNamespacedPod({ namespace, labelSelector: 'etcd.robustness.io/cluster=guarded' });
        return list.items[0];
      });
      const etcd = pod.spec?.containers.find((c) => c.name === 'etcd');
      assert.ok(etcd?.args?.includes('--listen-client-urls=https://0.0.0.0:2379'));
      await eventually(
        'Available to leave the client TLS reason',
        30_000,
        async () => {
          const condition = available(await get());
          return condition !== undefined && condition.reason !== clientTlsUnavailableReason ? true : undefined;
        },
        describe,
      );

    } finally {
      await operator.close();
    }
  });
});
