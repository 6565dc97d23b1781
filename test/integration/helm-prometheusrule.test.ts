// The chart's PrometheusRule (prometheusRule.enabled) with the real helm of test/bin/build.sh: absent by
// default; when enabled, one monitoring.coreos.com/v1 PrometheusRule whose groups are exactly those of
// config/prometheus/etcd-robustness.rules.yaml (Prometheus' {{ $labels }} templates left alone by Helm),
// also from the packaged chart (files/ travels with it); accepted with --dry-run=server by a real
// kube-apiserver holding a PrometheusRule CRD with the upstream schema's constraints on groups and rules.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parse } from 'yaml';
import { packageRoot } from '../../src/local/index.ts';
import { chartDir, parseManifests, TestHelm } from '../helpers/helm.ts';
import { TestApiserver } from '../helpers/kube-apiserver.ts';

const rulesFile = path.join(packageRoot, 'config', 'prometheus', 'etcd-robustness.rules.yaml');
const releaseNamespace = 'ero-system';

interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  spec?: { groups?: unknown };
}

/**
 * monitoring.coreos.com/v1 PrometheusRule, namespaced, with the constraints of the Prometheus Operator's
 * CRD on what the chart renders: groups need a unique name and rules, a rule needs expr and either
 * alert or record, labels and annotations are string maps, durations match Prometheus' syntax.
 */
const prometheusRuleCrd = `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: { name: prometheusrules.monitoring.coreos.com }
spec:
  group: monitoring.coreos.com
  scope: Namespaced
  names: { kind: PrometheusRule, listKind: PrometheusRuleList, plural: prometheusrules, singular: prometheusrule }
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          required: [spec]
          properties:
            apiVersion: { type: string }
            kind: { type: string }
            metadata: { type: object }
            spec:
              type: object
              properties:
                groups:
                  type: array
                  x-kubernetes-list-type: map
                  x-kubernetes-list-map-keys: [name]
                  items:
                    type: object
                    required: [name]
                    properties:
                      name: { type: string, minLength: 1 }
                      interval: { type: string, pattern: '^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$' }
                      rules:
                        type: array
                        items:
                          type: object
                          required: [expr]
                          x-kubernetes-validations:
                            - rule: "has(self.alert) != has(self.record)"
                              message: a rule is either an alert or a record
                          properties:
                            alert: { type: string }
                            record: { type: string }
                            expr: { x-kubernetes-int-or-string: true }
                            for: { type: string, pattern: '^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$' }
                            keep_firing_for: { type: string, minLength: 1 }
                            labels: { type: object, additionalProperties: { type: string } }
                            annotations: { type: object, additionalProperties: { type: string } }
`;


const rulesGroups = (): unknown => (parse(readFileSync(rulesFile, 'utf8')) as { groups: unknown }).groups;

describe("the chart's PrometheusRule", { timeout: 180_000 }, () => {
  let helm: TestHelm | undefined;
  let apiserver: TestApiserver | undefined;

  before(() => {
    helm = new TestHelm();
  });

  after(async () => {
    await apiserver?.close();
    helm?.close();
  });

  async function render(chart: string, values: readonly string[] = []): Promise<{ text: string; manifests: Manifest[] }> {
    const text = await helm!.template(releaseNamespace, values, chart);
    return { text, manifests: parseManifests<Manifest>(text) };
  }

  const prometheusRules = (manifests: Manifest[]): Manifest[] => manifests.filter((m) => m.kind === 'PrometheusRule');

  test('absent with the default values', async () => {
    const { manifests } = await render(chartDir);
    assert.ok(manifests.length > 0);
    assert.deepEqual(prometheusRules(manifests), []);
    const disabled = await render(chartDir, ['--set', 'prometheusRule.enabled=false', '--set', 'serviceMonitor.enabled=true']);
    assert.deepEqual(prometheusRules(disabled.manifests), []);
  });

  test('enabled: one PrometheusRule with the groups of config/prometheus/, labels and namespace from the values; helm lint passes', async () => {
    const lint = await helm!.run(['lint', '--strict', chartDir, '--set', 'prometheusRule.enabled=true']);
    assert.equal(lint.code, 0, `${lint.stdout}\n${lint.stderr}`);

    const { text, manifests } = await render(chartDir, ['--set', 'prometheusRule.enabled=true', '--set', 'prometheusRule.labels.release=prom']);
    const [rule, ...others] = prometheusRules(manifests);
    assert.ok(rule !== undefined && others.length === 0, 'exactly one PrometheusRule');
    assert.equal(rule.apiVersion, 'monitoring.coreos.com/v1');
    assert.equal(rule.metadata.name, 'ero-etcd-robustness-operator');
    assert.equal(rule.metadata.namespace, releaseNamespace);
    assert.equal(rule.metadata.labels?.['release'], 'prom');
    assert.equal(rule.metadata.labels?.['app.kubernetes.io/instance'], 'ero');
    assert.deepEqual(rule.spec?.groups, rulesGroups());
    // Helm did not evaluate Prometheus' templates.
    assert.match(text, /\{\{ \$labels\.run \}\}/);

    const elsewhere = await render(chartDir, ['--set', 'prometheusRule.enabled=true', '--set', 'prometheusRule.namespace=monitoring']);
    assert.equal(prometheusRules(elsewhere.manifests)[0]?.metadata.namespace, 'monitoring');
  });

  test('the packaged chart carries the rules too', async () => {
    const out = path.join(helm!.home, 'package');
    const packaged = await helm!.run(['package', chartDir, '--destination', out]);
    assert.equal(packaged.code, 0, packaged.stderr);
    const archives = readdirSync(out).filter((f) => f.endsWith('.tgz'));
    assert.equal(archives.length, 1, archives.join(', '));
    const { manifests } = await render(path.join(out, archives[0]!), ['--set', 'prometheusRule.enabled=true']);
    assert.deepEqual(prometheusRules(manifests)[0]?.spec?.groups, rulesGroups());
  });

  test('a kube-apiserver with the PrometheusRule schema accepts it (--dry-run=server)', async () => {
    apiserver = await TestApiserver.start();
    const crd = await apiserver.kubectl(['apply', '-f', '-'], prometheusRuleCrd);
    assert.equal(crd.code, 0, crd.stderr);
    const established = await apiserver.kubectl(['wait', '--for=condition=Established', '--timeout=30s', 'crd/prometheusrules.monitoring.coreos.com']);
    assert.equal(established.code, 0, established.stderr);
    const namespace = await apiserver.kubectl(['create', 'namespace', releaseNamespace]);
    assert.equal(namespace.code, 0, namespace.stderr);

    const { text } = await render(chartDir, ['--set', 'prometheusRule.enabled=true', '--show-only', 'templates/prometheusrule.yaml']);
    const applied = await apiserver.kubectl(['apply', '--dry-run=server', '-f', '-'], text);
    assert.equal(applied.code, 0, `${applied.stderr}\n${applied.stdout}`);
    assert.match(applied.stdout, /prometheusrule\.monitoring\.coreos\.com\/ero-etcd-robustness-operator created \(server dry run\)/);

    // The schema bites: a rule without expr is refused, so the acceptance above means something.
    const broken = text.replace(/^(\s+)expr: vector\(0\.99\)$/m, '$1labels: {}');
    assert.notEqual(broken, text);
    const refused = await apiserver.kubectl(['apply', '--dry-run=server', '-f', '-'], broken);
    assert.notEqual(refused.code, 0, refused.stdout);
    assert.match(refused.stderr, /expr: Required value/);
  });
});
