// The chart's Grafana dashboard ConfigMap, rendered by the real helm (test/bin/build.sh builds it): only
// when grafanaDashboard.enabled, labelled for Grafana's dashboard sidecar, holding exactly
// config/grafana/etcd-robustness.json (Grafana's ${datasource} and {{label}} legends untouched by Helm).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { packageRoot } from '../../src/local/index.ts';
import { chartDir, parseManifests, TestHelm } from '../helpers/helm.ts';

const dashboardPath = path.join(packageRoot, 'config', 'grafana', 'etcd-robustness.json');
const release = 'ero';
const releaseNamespace = 'ero-system';
const configMapName = 'ero-etcd-robustness-operator-grafana-dashboard';

interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  data?: Record<string, string>;
}

describe('Helm chart: the Grafana dashboard ConfigMap', { timeout: 120_000 }, () => {
  let helm: TestHelm | undefined;
  const dashboard = readFileSync(dashboardPath, 'utf8');

  before(() => {
    helm = new TestHelm();
  });

  after(() => {
    helm?.close();
  });

  const render = async (values: readonly string[]): Promise<Manifest[]> => parseManifests<Manifest>(await helm!.template(releaseNamespace, values));

  const dashboardConfigMaps = (manifests: Manifest[]): Manifest[] =>
    manifests.filter((m) => m.kind === 'ConfigMap' && m.data !== undefined && 'etcd-robustness.json' in m.data);

  test('absent by default', async () => {
    const manifests = await render([]);
    assert.ok(manifests.some((m) => m.kind === 'Deployment'), 'the default rendering has no Deployment: nothing was rendered');
    assert.deepEqual(dashboardConfigMaps(manifests), []);
  });

  test('enabled: a ConfigMap in the release namespace, labelled for the sidecar, holding the dashboard byte for byte', async () => {
    const found = dashboardConfigMaps(await render(['--set', 'grafanaDashboard.enabled=true']));
    assert.equal(found.length, 1, `expected one dashboard ConfigMap, found ${found.length}`);
    const configMap = found[0]!;
    assert.equal(configMap.apiVersion, 'v1');
    assert.equal(configMap.metadata.name, configMapName);
    assert.equal(configMap.metadata.namespace, releaseNamespace);
    assert.equal(configMap.metadata.labels?.['grafana_dashboard'], '1');
    assert.equal(configMap.metadata.labels?.['app.kubernetes.io/instance'], release);
    const json = configMap.data?.['etcd-robustness.json'] ?? '';
    assert.equal(json, dashboard);
    assert.equal((JSON.parse(json) as { uid: string }).uid, 'etcd-robustness');
    assert.ok(json.includes('"uid": "${datasource}"'), 'the ${datasource} references did not survive');
    assert.match(json, /"legendFormat": "\{\{type\}\} \{\{outcome\}\}"/);
  });

  test('custom sidecar label and value, extra labels and annotations, and another namespace are honoured', async () => {
    const found = dashboardConfigMaps(
      await render([
        '--set',
        'grafanaDashboard.enabled=true',
        '--set',
        'grafanaDashboard.sidecarLabel=dashboards.example.com/load',
        '--set',
        'grafanaDashboard.sidecarLabelValue=true',
        '--set',
        'grafanaDashboard.labels.team=storage',
        '--set',
        'grafanaDashboard.annotations.grafana_folder=etcd',
        '--set',
        'grafanaDashboard.namespace=monitoring',
      ]),
    );
    assert.equal(found.length, 1);
    const { metadata, data } = found[0]!;
    assert.equal(metadata.namespace, 'monitoring');
    // A boolean-looking value stays a string: label values must be strings.
    assert.equal(metadata.labels?.['dashboards.example.com/load'], 'true');
    assert.equal(metadata.labels?.['grafana_dashboard'], undefined);
    assert.equal(metadata.labels?.['team'], 'storage');
    assert.deepEqual(metadata.annotations, { grafana_folder: 'etcd' });
    assert.equal(data?.['etcd-robustness.json'], dashboard);
  });

  test('helm lint --strict passes with the dashboard enabled', async () => {
    const result = await helm!.run(['lint', '--strict', chartDir, '--set', 'grafanaDashboard.enabled=true', '--set', 'grafanaDashboard.annotations.grafana_folder=etcd']);
    assert.equal(result.code, 0, `${result.stdout}\n${result.stderr}`);
  });
});
