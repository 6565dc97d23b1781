// Smoke tests proving the environment is real: a kube-apiserver built by test/bin/build.sh, on its own
// etcd, driven with @kubernetes/client-node and with kubectl.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { CoreV1Api, Watch, type V1ConfigMap } from '@kubernetes/client-node';
import { TestApiserver } from '../helpers/kube-apiserver.ts';

const widgetCrd = `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.smoke.example.com
spec:
  group: smoke.example.com
  scope: Namespaced
  names: { plural: widgets, singular: widget, kind: Widget }
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              required: [size]
              properties:
                size: { type: integer, minimum: 1, maximum: 5 }
`;

const widget = (name: string, size: string): string => `
apiVersion: smoke.example.com/v1
kind: Widget
metadata: { name: ${name}, namespace: default }
spec: { size: ${size} }
`;

describe('real kube-apiserver', { timeout: 180_000 }, () => {
  let apiserver: TestApiserver;

  before(async () => {
    apiserver = await TestApiserver.start();
  });

  after(async () => {
    await apiserver?.close();
  });

  test('client-node creates a namespace and a ConfigMap, watches it and reads it back', async () => {
    const core = apiserver.kubeConfig.makeApiClient(CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: 'smoke' } } });

    const seen: { type: string; data: Record<string, string> | undefined }[] = [];
    let watchError: unknown;
    const modified = Promise.withResolvers<undefined>();
    const controller = await new Watch(apiserver.kubeConfig).watch(
      '/api/v1/namespaces/smoke/configmaps',
      { fieldSelector: 'metadata.name=probe' },
      (type: string, object: V1ConfigMap) => {
        seen.push({ type, data: object.data });
        if (type === 'MODIFIED') modified.resolve(undefined);
      },
      (error: unknown) => {
        watchError = error;
      },
    );
    try {
      await core.createNamespacedConfigMap({ namespace: 'smoke', body: { metadata: { name: 'probe' }, data: { value: '1' } } });
      await core.patchNamespacedConfigMap({ name: 'probe', namespace: 'smoke', body: [{ op: 'replace', path: '/data/value', value: '2' }] });
      await modified.promise;
    } finally {
      controller.abort();
    }
    assert.equal(watchError ?? undefined, undefined);
    assert.deepEqual(seen, [
      { type: 'ADDED', data: { value: '1' } },
      { type: 'MODIFIED', data: { value: '2' } },
    ]);
    const read = await core.readNamespacedConfigMap({ name: 'probe', namespace: 'smoke' });
    assert.deepEqual(read.data, { value: '2' });
  });

  test('kubectl applies a CRD and a custom object server-side, and rejects an invalid object', async () => {
    const crd = await apiserver.kubectl(['apply', '--server-side', '-f', '-'], widgetCrd);
    assert.equal(crd.code, 0, crd.stderr);
    const established = await apiserver.kubectl(['wait', '--for=condition=Established', '--timeout=60s', 'crd/widgets.smoke.example.com']);
    assert.equal(established.code, 0, established.stderr);

    const valid = await apiserver.kubectl(['apply', '--server-side', '-f', '-'], widget('good', '3'));
    assert.equal(valid.code, 0, valid.stderr);
    const got = await apiserver.kubectl(['get', 'widget', 'good', '-o', 'jsonpath={.spec.size}']);
    assert.equal(got.stdout, '3');

    const invalid = await apiserver.kubectl(['apply', '--server-side', '-f', '-'], widget('bad', '9'));
    assert.notEqual(invalid.code, 0);
    assert.match(invalid.stderr, /spec\.size/);
    const missing = await apiserver.kubectl(['get', 'widget', 'bad']);
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /NotFound|not found/);
  });
});
