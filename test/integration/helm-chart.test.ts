// The Helm chart and the kustomize bases against a real kube-apiserver: helm (built from Go modules by
// test/bin/build.sh) lints and renders charts/etcd-robustness-operator with several values, and every
// rendering applies with --dry-run=server; the RBAC is the least-privilege table below, rule for rule; the
// CRD copies in the chart and in config/ equal the generated crds/.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { V1Deployment, V1PolicyRule, V1RoleBinding } from '@kubernetes/client-node';
import { packageRoot } from '../../src/local/index.ts';
import { chartDir, parseManifests, TestHelm } from '../helpers/helm.ts';
import { TestApiserver, type KubectlResult } from '../helpers/kube-apiserver.ts';

const releaseNamespace = 'ero-system';
const release = 'ero';
const fullname = 'ero-etcd-robustness-operator';

interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [field: string]: unknown;
}

interface RoleObject extends Manifest {
  rules: V1PolicyRule[];
}

/** One row of the expected permission tables. */
interface Permission {
  apiGroup: string;
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}

/** What the operator may do in the namespaces it watches: exactly this, no more. */
const operatorPermissions: Permission[] = [
  { apiGroup: 'etcd.robustness.io', resources: ['etcdclusters'], verbs: ['get', 'list', 'watch', 'update', 'patch'] },
  { apiGroup: 'etcd.robustness.io', resources: ['robustnessruns'], verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'] },
  {
    apiGroup: 'etcd.robustness.io',
    resources: ['etcdclusters/status', 'robustnessruns/status'],
    verbs: ['get', 'update', 'patch'],
  },
  { apiGroup: 'etcd.robustness.io', resources: ['etcdclusters/finalizers', 'robustnessruns/finalizers'], verbs: ['update'] },
  { apiGroup: '', resources: ['pods'], verbs: ['get', 'list', 'watch', 'create', 'delete'] },
  { apiGroup: '', resources: ['persistentvolumeclaims'], verbs: ['get', 'list', 'watch', 'create', 'update', 'delete'] },
  { apiGroup: '', resources: ['services'], verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'] },
  { apiGroup: '', resources: ['secrets'], verbs: ['get', 'list', 'watch', 'create', 'delete'] },
  { apiGroup: '', resources: ['configmaps'], verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'] },
  { apiGroup: 'coordination.k8s.io', resources: ['leases'], verbs: ['get', 'create', 'update'] },
  {
    apiGroup: 'policy',
    resources: ['poddisruptionbudgets'],
    verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'],
  },
  { apiGroup: 'events.k8s.io', resources: ['events'], verbs: ['create', 'patch'] },
];

/** With networkPolicy.enabled (the default): the operator gives each EtcdCluster a NetworkPolicy. */
const networkPolicyPermissions: Permission[] = [{ apiGroup: 'networking.k8s.io', resources: ['networkpolicies'], verbs: ['get', 'create', 'update', 'delete'] }];

/** Secure metrics serving: TokenReviews and SubjectAccessReviews, nothing else cluster-wide. */
const authPermissions: Permission[] = [
  { apiGroup: 'authentication.k8s.io', resources: ['tokenreviews'], verbs: ['create'] },
  { apiGroup: 'authorization.k8s.io', resources: ['subjectaccessreviews'], verbs: ['create'] },
];

/** Runner Pods (runner.enabled, the default): what a runner may do in the watched namespaces. */
const runnerPermissions: Permission[] = [
  { apiGroup: 'etcd.robustness.io', resources: ['etcdclusters', 'robustnessruns'], verbs: ['get'] },
  { apiGroup: 'etcd.robustness.io', resources: ['robustnessruns/status'], verbs: ['get', 'patch'] },
  { apiGroup: '', resources: ['pods'], verbs: ['get', 'list', 'create', 'delete'] },
  { apiGroup: '', resources: ['persistentvolumeclaims'], verbs: ['get', 'list', 'create', 'update', 'delete'] },
  { apiGroup: '', resources: ['secrets'], verbs: ['get'] },
  { apiGroup: '', resources: ['configmaps'], verbs: ['get', 'list', 'create', 'update', 'delete'] },
  { apiGroup: 'events.k8s.io', resources: ['events'], verbs: ['create', 'patch'] },
];

/** The operator's Jobs of runner Pods, in its own namespace only. */
const runnerJobPermissions: Permission[] = [{ apiGroup: 'batch', resources: ['jobs'], verbs: ['get', 'list', 'watch', 'create', 'delete'] }];

/** Leader election, in the operator's own namespace only. */
const leaderElectionPermissions = (leaseName: string): Permission[] => [
  { apiGroup: 'coordination.k8s.io', resources: ['leases'], verbs: ['create'] },
  { apiGroup: 'coordination.k8s.io', resources: ['leases'], resourceNames: [leaseName], verbs: ['get', 'update'] },
];

/** Every single permission a table grants, as sorted `group/resource[name] verb` lines. */
function expandTable(table: Permission[]): string[] {
  return table
    .flatMap(({ apiGroup, resources, verbs, resourceNames }) =>
      resources.flatMap((resource) =>
        (resourceNames ?? ['(any)']).flatMap((name) => verbs.map((verb) => `${apiGroup}/${resource}[${name}] ${verb}`)),
      ),
    )
    .sort();
}

/** The same for rendered rules, after checking they use no wildcard and no non-resource URL. */
function expandRules(rules: V1PolicyRule[]): string[] {
  const lines: string[] = [];
  for (const rule of rules) {
    const listed = [...(rule.apiGroups ?? []), ...(rule.resources ?? []), ...(rule.verbs), ...(rule.resourceNames ?? [])];
    assert.ok(!listed.some((entry) => entry.includes('*')), `a wildcard in ${JSON.stringify(rule)}`);
    assert.equal(rule.nonResourceURLs, undefined, `non-resource URLs in ${JSON.stringify(rule)}`);
    assert.ok(rule.apiGroups?.length && rule.resources?.length && rule.verbs.length, `an empty list in ${JSON.stringify(rule)}`);
    for (const group of rule.apiGroups)
      for (const resource of rule.resources)
        for (const name of rule.resourceNames ?? ['(any)'])
          for (const verb of rule.verbs) lines.push(`${group}/${resource}[${name}] ${verb}`);
  }
  return lines.sort();
}


function only(manifests: Manifest[], kind: string, name?: string): Manifest {
  const found = manifests.filter((m) => m.kind === kind && (name === undefined || m.metadata.name === name));
  assert.equal(found.length, 1, `expected one ${kind}${name ? ` ${name}` : ''}, found ${found.length}`);
  return found[0]!;
}

const roleOf = (manifests: Manifest[], kind: 'Role' | 'ClusterRole', name?: string): RoleObject => only(manifests, kind, name) as RoleObject;
const bindingOf = (manifest: Manifest | undefined): V1RoleBinding => manifest as unknown as V1RoleBinding;
const deploymentOf = (manifests: Manifest[]): V1Deployment => only(manifests, 'Deployment');

function kinds(manifests: Manifest[]): string[] {
  return manifests.map((m) => `${m.kind}/${m.metadata.namespace ?? '-'}/${m.metadata.name}`).sort();
}

function yamlFiles(dir: string): string[] {
  try {
    return readdirSync(dir)
      .filter((file) => file.endsWith('.yaml'))
      .sort();
  } catch {
    return [];
  }
}

function assertApplied(result: KubectlResult, what: string): void {
  assert.equal(result.code, 0, `${what}: kubectl exited ${result.code}\n${result.stderr}\n${result.stdout}`);
  // A Pod template that breaks the namespace's Pod Security level is only a warning on a Deployment.
  assert.doesNotMatch(result.stderr, /would violate PodSecurity/, `${what}: ${result.stderr}`);
}

describe('Helm chart and kustomize bases', { timeout: 240_000 }, () => {
  let apiserver: TestApiserver;
  let helm: TestHelm | undefined;

  before(async () => {
    apiserver = await TestApiserver.start();
    helm = new TestHelm({ kubeconfigPath: apiserver.kubeconfigPath });
    for (const namespace of [releaseNamespace, 'team-a', 'team-b', 'etcd-robustness-system']) {
      // The operator's namespaces enforce the restricted Pod Security Standard: the chart must fit it.
      const labels = 'labels: { pod-security.kubernetes.io/enforce: restricted, pod-security.kubernetes.io/warn: restricted }';
      const created = await apiserver.kubectl(
        ['create', '-f', '-'],
        `apiVersion: v1\nkind: Namespace\nmetadata: { name: ${namespace}, ${labels} }\n`,
      );
      assert.equal(created.code, 0, created.stderr);
    }
  });

  after(async () => {
    await apiserver?.close();
    helm?.close();
  });

  async function render(values: readonly string[] = []): Promise<{ text: string; manifests: Manifest[] }> {
    const text = await helm!.template(releaseNamespace, values);
    return { text, manifests: parseManifests<Manifest>(text) };
  }

  function assertBoundToServiceAccount(binding: V1RoleBinding, roleKind: string, roleName: string, serviceAccount = fullname): void {
    assert.deepEqual(binding.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: roleKind, name: roleName });
    assert.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name: serviceAccount, namespace: releaseNamespace }]);
  }

  test('helm lint passes, strict, with the default values and with watched namespaces', async () => {
    for (const values of [[], ['--set', 'watchNamespaces={team-a,team-b}', '--set', 'reports.store=volume']]) {
      const result = await helm!.run(['lint', '--strict', chartDir, ...values]);
      assert.equal(result.code, 0, `${result.stdout}\n${result.stderr}`);
      assert.match(result.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
    }
  });

  test("the chart's and config/'s CRDs are the generated crds/ (scripts/sync-chart-crds.sh)", () => {
    const generated = yamlFiles(path.join(packageRoot, 'crds'));
    assert.deepEqual(generated, ['etcd.robustness.io_etcdclusters.yaml', 'etcd.robustness.io_robustnessruns.yaml']);
    for (const copyDir of [path.join(chartDir, 'crds'), path.join(packageRoot, 'config', 'crd', 'bases')]) {
      assert.deepEqual(yamlFiles(copyDir), generated, `${copyDir} holds other files than crds/`);
      for (const file of generated) {
        const copy = readFileSync(path.join(copyDir, file), 'utf8');
        const original = readFileSync(path.join(packageRoot, 'crds', file), 'utf8');
        assert.ok(copy === original, `${path.join(copyDir, file)} differs from crds/${file}: run scripts/sync-chart-crds.sh`);
      }
    }
    const kustomization = parseManifests<Manifest>(readFileSync(path.join(packageRoot, 'config', 'crd', 'kustomization.yaml'), 'utf8'));
    assert.deepEqual(
      kustomization[0]?.['resources'],
      generated.map((file) => `bases/${file}`),
    );
  });

  test("the chart's CRDs install server-side and the samples are valid against them", async () => {
    const crds = await apiserver.kubectl(['apply', '--server-side', '-f', path.join(chartDir, 'crds')]);
    assert.equal(crds.code, 0, crds.stderr);
    const established = await apiserver.kubectl([
      'wait',
      '--for=condition=Established',
      '--timeout=30s',
      'crd/etcdclusters.etcd.robustness.io',
      'crd/robustnessruns.etcd.robustness.io',
    ]);
    assert.equal(established.code, 0, established.stderr);
    for (const sample of ['etcdcluster.yaml', 'robustnessrun-against-cluster.yaml']) {
      const result = await apiserver.kubectl([
        'apply',
        '--dry-run=server',
        '--namespace=team-a',
        '-f',
        path.join(packageRoot, 'config', 'samples', sample),
      ]);
      assert.equal(result.code, 0, `${sample}: ${result.stderr}`);
    }
  });

  test('default values: 2 replicas with leader election, probes, a restricted Pod, applied with --dry-run=server', async () => {
    const { text, manifests } = await render();
    assert.deepEqual(kinds(manifests), [
      `ClusterRole/-/${fullname}`,
      `ClusterRole/-/${fullname}-auth`,
      `ClusterRole/-/${fullname}-metrics-reader`,
      `ClusterRole/-/${fullname}-runner`,
      `ClusterRoleBinding/-/${fullname}`,
      `ClusterRoleBinding/-/${fullname}-auth`,
      `ClusterRoleBinding/-/${fullname}-runner`,
      `ClusterRoleBinding/-/${fullname}-runner-auth`,
      `Deployment/${releaseNamespace}/${fullname}`,
      `NetworkPolicy/${releaseNamespace}/${fullname}`,
      `Role/${releaseNamespace}/${fullname}-leader-election`,
      `Role/${releaseNamespace}/${fullname}-runner-jobs`,
      `RoleBinding/${releaseNamespace}/${fullname}-leader-election`,
      `RoleBinding/${releaseNamespace}/${fullname}-runner-jobs`,
      `Service/${releaseNamespace}/${fullname}-metrics`,
      `ServiceAccount/${releaseNamespace}/${fullname}`,
      `ServiceAccount/${releaseNamespace}/${fullname}-runner`,
    ]);

    const deployment = deploymentOf(manifests);
    assert.equal(deployment.spec?.replicas, 2);
    const pod = deployment.spec?.template.spec;
    assert.equal(pod?.serviceAccountName, fullname);
    assert.equal(pod?.securityContext?.runAsNonRoot, true);
    assert.equal(pod?.securityContext?.seccompProfile?.type, 'RuntimeDefault');
    assert.equal(pod?.containers.length, 1);
    const container = pod.containers[0]!;
    assert.deepEqual(container.args, [
      'operator',
      '--runtime=kubernetes',
      '--leader-elect',
      '--leader-election-namespace=$(POD_NAMESPACE)',
      '--leader-election-id=etcd-robustness-operator',
      '--bind-address=0.0.0.0',
      '--metrics-port=8443',
      '--metrics-secure',
      '--health-port=8081',
      '--namespaces=',
      '--agent-image=ghcr.io/etcd-robustness/etcd-robustness-operator:0.1.0',
      `--member-network-policy=app.kubernetes.io/name=etcd-robustness-operator,app.kubernetes.io/instance=${release}`,
      `--runner-service-account=${fullname}-runner`,
      '--runner-image=ghcr.io/etcd-robustness/etcd-robustness-operator:0.1.0',
      `--runner-pod-labels=app.kubernetes.io/name=etcd-robustness-operator-runner,app.kubernetes.io/instance=${release}`,
      '--runner-resources={"limits":{"memory":"1Gi"},"requests":{"cpu":"100m","memory":"192Mi"}}',
    ]);
    assert.equal(container.image, 'ghcr.io/etcd-robustness/etcd-robustness-operator:0.1.0');
    assert.deepEqual(
      container.env?.map((env) => [env.name, env.valueFrom?.fieldRef?.fieldPath]),
      [
        ['POD_NAME', 'metadata.name'],
        ['POD_NAMESPACE', 'metadata.namespace'],
        ['POD_IP', 'status.podIP'],
      ],
    );
    assert.deepEqual(container.livenessProbe?.httpGet, { path: '/healthz', port: 8081 });
    assert.deepEqual(container.readinessProbe?.httpGet, { path: '/readyz', port: 8081 });
    assert.deepEqual(
      container.ports?.map((port) => [port.name, port.containerPort]),
      [
        ['https-metrics', 8443],
        ['http-health', 8081],
      ],
    );
    assert.equal(container.securityContext?.readOnlyRootFilesystem, true);
    assert.equal(container.securityContext?.allowPrivilegeEscalation, false);
    assert.equal(container.securityContext?.runAsNonRoot, true);
    assert.deepEqual(container.securityContext?.capabilities?.drop, ['ALL']);
    assert.ok(container.resources?.requests?.['memory'] && container.resources.limits?.['memory']);
    assert.deepEqual(
      container.volumeMounts?.map((mount) => mount.mountPath),
      ['/tmp'],
    );

    const service = only(manifests, 'Service');
    assert.deepEqual((service['spec'] as { ports: unknown }).ports, [
      { name: 'https-metrics', port: 8443, targetPort: 'https-metrics', protocol: 'TCP' },
    ]);
    assert.deepEqual(
      (service['spec'] as { selector: unknown }).selector,
      deployment.spec?.selector.matchLabels,
    );

    assertApplied(await apiserver.kubectl(['apply', '--dry-run=server', '-f', '-'], text), 'default values');
  });

  test('RBAC is least privilege: the exact table, no wildcards, bound to the ServiceAccount only', async () => {
    const { manifests } = await render();
    const clusterRole = roleOf(manifests, 'ClusterRole', fullname);
    assert.deepEqual(expandRules(clusterRole.rules), expandTable([...operatorPermissions, ...networkPolicyPermissions]));
    assertBoundToServiceAccount(bindingOf(only(manifests, 'ClusterRoleBinding', fullname)), 'ClusterRole', fullname);
    assert.deepEqual(expandRules(roleOf(manifests, 'ClusterRole', `${fullname}-auth`).rules), expandTable(authPermissions));
    assertBoundToServiceAccount(bindingOf(only(manifests, 'ClusterRoleBinding', `${fullname}-auth`)), 'ClusterRole', `${fullname}-auth`);
    // Reading /metrics: a ClusterRole (kubebuilder's metrics-reader) the chart binds only to metrics.readers.
    assert.deepEqual(roleOf(manifests, 'ClusterRole', `${fullname}-metrics-reader`).rules, [{ nonResourceURLs: ['/metrics'], verbs: ['get'] }]);
    const readers = await render(['--set', 'metrics.readers[0].kind=ServiceAccount', '--set', 'metrics.readers[0].name=prometheus', '--set', 'metrics.readers[0].namespace=monitoring']);
    const readerBinding = bindingOf(only(readers.manifests, 'ClusterRoleBinding', `${fullname}-metrics-reader`));
    assert.deepEqual(readerBinding.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: `${fullname}-metrics-reader` });
    assert.deepEqual(readerBinding.subjects, [{ kind: 'ServiceAccount', name: 'prometheus', namespace: 'monitoring' }]);

    // Runner Pods: their own ServiceAccount with the runner table; the operator's Jobs in its namespace.
    assert.deepEqual(expandRules(roleOf(manifests, 'ClusterRole', `${fullname}-runner`).rules), expandTable(runnerPermissions));
    assertBoundToServiceAccount(bindingOf(only(manifests, 'ClusterRoleBinding', `${fullname}-runner`)), 'ClusterRole', `${fullname}-runner`, `${fullname}-runner`);
    assertBoundToServiceAccount(bindingOf(only(manifests, 'ClusterRoleBinding', `${fullname}-runner-auth`)), 'ClusterRole', `${fullname}-auth`, `${fullname}-runner`);
    const jobsRole = roleOf(manifests, 'Role', `${fullname}-runner-jobs`);
    assert.equal(jobsRole.metadata.namespace, releaseNamespace);
    assert.deepEqual(expandRules(jobsRole.rules), expandTable(runnerJobPermissions));
    assertBoundToServiceAccount(bindingOf(only(manifests, 'RoleBinding', `${fullname}-runner-jobs`)), 'Role', `${fullname}-runner-jobs`);

    const leaderElection = roleOf(manifests, 'Role', `${fullname}-leader-election`);
    assert.equal(leaderElection.metadata.namespace, releaseNamespace);
    assert.deepEqual(expandRules(leaderElection.rules), expandTable(leaderElectionPermissions('etcd-robustness-operator')));
    assertBoundToServiceAccount(bindingOf(only(manifests, 'RoleBinding', `${fullname}-leader-election`)), 'Role', `${fullname}-leader-election`);

    // A lease id of the user's choice is the Lease the Role names and the operator is told to use.
    const renamed = await render(['--set', 'leaderElection.id=my-lease']);
    assert.deepEqual(
      expandRules(roleOf(renamed.manifests, 'Role', `${fullname}-leader-election`).rules),
      expandTable(leaderElectionPermissions('my-lease')),
    );
    const args = deploymentOf(renamed.manifests).spec?.template.spec?.containers[0]?.args;
    assert.ok(args?.includes('--leader-election-id=my-lease'), String(args));
  });

  test('watchNamespaces: a Role and RoleBinding per namespace and no cluster-wide access to objects', async () => {
    const { text, manifests } = await render(['--set', 'watchNamespaces={team-a,team-b}']);
    assert.deepEqual(kinds(manifests), [
      // Cluster-wide only the reviews of secure metrics serving (no object) and the metrics reader role.
      `ClusterRole/-/${fullname}-auth`,
      `ClusterRole/-/${fullname}-metrics-reader`,
      `ClusterRoleBinding/-/${fullname}-auth`,
      `ClusterRoleBinding/-/${fullname}-runner-auth`,
      `Deployment/${releaseNamespace}/${fullname}`,
      `NetworkPolicy/${releaseNamespace}/${fullname}`,
      `Role/${releaseNamespace}/${fullname}-leader-election`,
      `Role/${releaseNamespace}/${fullname}-runner-jobs`,
      `Role/team-a/${fullname}`,
      `Role/team-a/${fullname}-runner`,
      `Role/team-b/${fullname}`,
      `Role/team-b/${fullname}-runner`,
      `RoleBinding/${releaseNamespace}/${fullname}-leader-election`,
      `RoleBinding/${releaseNamespace}/${fullname}-runner-jobs`,
      `RoleBinding/team-a/${fullname}`,
      `RoleBinding/team-a/${fullname}-runner`,
      `RoleBinding/team-b/${fullname}`,
      `RoleBinding/team-b/${fullname}-runner`,
      `Service/${releaseNamespace}/${fullname}-metrics`,
      `ServiceAccount/${releaseNamespace}/${fullname}`,
      `ServiceAccount/${releaseNamespace}/${fullname}-runner`,
    ]);
    for (const namespace of ['team-a', 'team-b']) {
      const role = manifests.find((m) => m.kind === 'Role' && m.metadata.namespace === namespace && m.metadata.name === fullname) as RoleObject;
      assert.deepEqual(expandRules(role.rules), expandTable([...operatorPermissions, ...networkPolicyPermissions]));
      const binding = manifests.find((m) => m.kind === 'RoleBinding' && m.metadata.namespace === namespace && m.metadata.name === fullname);
      assertBoundToServiceAccount(bindingOf(binding), 'Role', fullname);
      const runnerRole = manifests.find((m) => m.kind === 'Role' && m.metadata.namespace === namespace && m.metadata.name === `${fullname}-runner`) as RoleObject;
      assert.deepEqual(expandRules(runnerRole.rules), expandTable(runnerPermissions));
      const runnerBinding = manifests.find((m) => m.kind === 'RoleBinding' && m.metadata.namespace === namespace && m.metadata.name === `${fullname}-runner`);
      assertBoundToServiceAccount(bindingOf(runnerBinding), 'Role', `${fullname}-runner`, `${fullname}-runner`);
    }
    const args = deploymentOf(manifests).spec?.template.spec?.containers[0]?.args;
    assert.ok(args?.includes('--namespaces=team-a,team-b'), String(args));
    assertApplied(await apiserver.kubectl(['apply', '--dry-run=server', '-f', '-'], text), 'watchNamespaces');
  });

  test('reports on a volume: a claim, mounted, and --report-dir; applied with --dry-run=server', async () => {
    const { text, manifests } = await render(['--set', 'reports.store=volume', '--set', 'reports.volume.size=2Gi']);
    const claim = only(manifests, 'PersistentVolumeClaim', `${fullname}-reports`);
    assert.deepEqual(claim['spec'], { accessModes: ['ReadWriteMany'], resources: { requests: { storage: '2Gi' } } });
    const pod = deploymentOf(manifests).spec?.template.spec;
    assert.ok(pod?.containers[0]);
    assert.ok(pod.containers[0].args?.includes('--report-dir=/var/lib/etcd-robustness/reports'));
    assert.deepEqual(pod.containers[0].volumeMounts?.at(-1), { name: 'reports', mountPath: '/var/lib/etcd-robustness/reports' });
    assert.deepEqual(pod.volumes?.at(-1), { name: 'reports', persistentVolumeClaim: { claimName: `${fullname}-reports` } });
    assertApplied(await apiserver.kubectl(['apply', '--dry-run=server', '-f', '-'], text), 'reports on a volume');

    const existing = await render(['--set', 'reports.store=volume', '--set', 'reports.volume.existingClaim=mine']);
    assert.ok(!existing.manifests.some((m) => m.kind === 'PersistentVolumeClaim'));
  });

  test('serviceMonitor.enabled renders a monitoring.coreos.com/v1 ServiceMonitor for the metrics Service', async () => {
    const { manifests } = await render(['--set', 'serviceMonitor.enabled=true', '--set', 'serviceMonitor.labels.release=prom']);
    const monitor = only(manifests, 'ServiceMonitor');
    assert.equal(monitor.apiVersion, 'monitoring.coreos.com/v1');
    assert.equal(monitor.metadata.namespace, releaseNamespace);
    assert.equal(monitor.metadata.labels?.['release'], 'prom');
    const spec = monitor['spec'] as {
      selector: { matchLabels: Record<string, string> };
      namespaceSelector: unknown;
      endpoints: unknown;
    };
    // HTTPS with the Prometheus Pod's token (the operator reviews it), not verifying the self-signed certificate.
    assert.deepEqual(spec.endpoints, [
      {
        port: 'https-metrics',
        scheme: 'https',
        path: '/metrics',
        interval: '30s',
        scrapeTimeout: '10s',
        bearerTokenFile: '/var/run/secrets/kubernetes.io/serviceaccount/token',
        tlsConfig: { insecureSkipVerify: true },
      },
    ]);
    const service = only(manifests, 'Service') as Manifest & { spec: { ports: { name: string }[] } };
    assert.ok(service.spec.ports.some((p) => p.name === 'https-metrics'), 'the endpoint names a port of the Service');
    assert.deepEqual(spec.namespaceSelector, { matchNames: [releaseNamespace] });
    const serviceLabels = only(manifests, 'Service').metadata.labels ?? {};
    for (const [key, value] of Object.entries(spec.selector.matchLabels)) assert.equal(serviceLabels[key], value, key);
  });

  test('runner.podMonitor.enabled renders a PodMonitor that selects the runner Pods by the labels the operator gives them', async () => {
    const { manifests } = await render(['--set', 'runner.podMonitor.enabled=true', '--set', 'runner.podMonitor.labels.release=prom', '--set', 'runner.podMonitor.authorization.type=Bearer', '--set', 'runner.podMonitor.authorization.credentials.name=prom-token', '--set', 'runner.podMonitor.authorization.credentials.key=token']);
    const monitor = only(manifests, 'PodMonitor');
    assert.equal(monitor.apiVersion, 'monitoring.coreos.com/v1');
    assert.equal(monitor.metadata.labels?.['release'], 'prom');
    const spec = monitor['spec'] as { selector: { matchLabels: Record<string, string> }; namespaceSelector: unknown; podMetricsEndpoints: unknown };
    const flag = deploymentOf(manifests).spec?.template.spec?.containers[0]?.args?.find((a) => a.startsWith('--runner-pod-labels='));
    const runnerLabels = Object.fromEntries((flag ?? '').slice('--runner-pod-labels='.length).split(',').map((kv) => kv.split('=') as [string, string]));
    assert.deepEqual(spec.selector.matchLabels, runnerLabels);
    assert.deepEqual(spec.namespaceSelector, { matchNames: [releaseNamespace] });
    assert.deepEqual(spec.podMetricsEndpoints, [
      { port: 'https-metrics', scheme: 'https', path: '/metrics', interval: '15s', authorization: { type: 'Bearer', credentials: { name: 'prom-token', key: 'token' } }, tlsConfig: { insecureSkipVerify: true } },
    ]);
    const off = await render(['--set', 'runner.podMonitor.enabled=true', '--set', 'runner.enabled=false']);
    assert.ok(!off.manifests.some((m) => m.kind === 'PodMonitor'), 'no runners, no PodMonitor');
  });

  test('values that cannot work are refused at render time', async () => {
    const cases: [string[], RegExp][] = [
      [['--set', 'leaderElection.enabled=false'], /replicaCount > 1 needs leaderElection.enabled/],
      [['--set', 'runtime=docker'], /runtime must be kubernetes or local/],
      [['--set', 'reports.store=s3'], /reports.store must be configMap or volume/],
      [['--set', 'health.port=8443'], /metrics.port and health.port must differ/],
    ];
    for (const [values, message] of cases) {
      const result = await helm!.run(['template', release, chartDir, '--namespace', releaseNamespace, ...values]);
      assert.notEqual(result.code, 0, values.join(' '));
      assert.match(result.stderr, message);
    }
    const single = await render(['--set', 'leaderElection.enabled=false', '--set', 'replicaCount=1']);
    const args = deploymentOf(single.manifests).spec?.template.spec?.containers[0]?.args;
    assert.ok(!args?.some((arg) => arg.startsWith('--leader-elect')), String(args));
    assert.ok(!single.manifests.some((m) => m.kind === 'Role' && m.metadata.name.endsWith('-leader-election')));
    // Runner Pods need ConfigMap reports and the kubernetes runtime; otherwise no runner objects or flags.
    for (const values of [['--set', 'reports.store=volume'], ['--set', 'runtime=local'], ['--set', 'runner.enabled=false']]) {
      const without = await render(values);
      assert.ok(!without.manifests.some((m) => m.metadata.name.includes('-runner')), `${values.join(' ')}: ${kinds(without.manifests).join(', ')}`);
      assert.ok(!deploymentOf(without.manifests).spec?.template.spec?.containers[0]?.args?.some((a) => a.startsWith('--runner-')), values.join(' '));
    }
  });

  test('NetworkPolicies: the operator Pods admit metrics from networkPolicy.metrics.from, health from anywhere; members are the operator\'s to guard', async () => {
    const { text, manifests } = await render(['--set', 'networkPolicy.metrics.from[0].namespaceSelector.matchLabels.kubernetes\\.io/metadata\\.name=monitoring']);
    const policy = only(manifests, 'NetworkPolicy') as Manifest & { spec: { podSelector: { matchLabels: Record<string, string> }; policyTypes: string[]; ingress: unknown[] } };
    const deployment = deploymentOf(manifests);
    const podLabels = deployment.spec?.template.metadata?.labels ?? {};
    // It selects the operator's Pods (every label of its selector is on the Pod template) and nothing else of the chart.
    for (const [key, value] of Object.entries(policy.spec.podSelector.matchLabels)) assert.equal(podLabels[key], value, key);
    assert.deepEqual(policy.spec.podSelector.matchLabels, deployment.spec?.selector.matchLabels);
    assert.deepEqual(policy.spec.policyTypes, ['Ingress']);
    assert.deepEqual(policy.spec.ingress, [
      { ports: [{ protocol: 'TCP', port: 8443 }], from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }] },
      { ports: [{ protocol: 'TCP', port: 8081 }] },
    ]);
    // The ports it admits are the container's.
    const ports = deployment.spec?.template.spec?.containers[0]?.ports?.map((p) => p.containerPort).sort();
    assert.deepEqual(ports, [8081, 8443]);
    // The member policies admit the agents' port from Pods with exactly the operator Pods' selector labels.
    const flag = deployment.spec?.template.spec?.containers[0]?.args?.find((a) => a.startsWith('--member-network-policy='));
    const flagLabels = Object.fromEntries((flag ?? '').slice('--member-network-policy='.length).split(',').map((kv) => kv.split('=') as [string, string]));
    assert.deepEqual(flagLabels, deployment.spec?.selector.matchLabels);
    assertApplied(await apiserver.kubectl(['apply', '--dry-run=server', '-f', '-'], text), 'network policies');

    const off = await render(['--set', 'networkPolicy.enabled=false']);
    assert.ok(!off.manifests.some((m) => m.kind === 'NetworkPolicy'));
    assert.ok(!deploymentOf(off.manifests).spec?.template.spec?.containers[0]?.args?.some((a) => a.startsWith('--member-network-policy')));
    assert.deepEqual(expandRules(roleOf(off.manifests, 'ClusterRole', fullname).rules), expandTable(operatorPermissions));
  });

  test('kubectl kustomize config/default renders the same RBAC and applies with --dry-run=server', async () => {
    const rendered = await apiserver.kubectl(['kustomize', path.join(packageRoot, 'config', 'default')]);
    assert.equal(rendered.code, 0, rendered.stderr);
    const manifests = parseManifests<Manifest>(rendered.stdout);
    assert.deepEqual(kinds(manifests), [
      'ClusterRole/-/etcd-robustness-auth',
      'ClusterRole/-/etcd-robustness-metrics-reader',
      'ClusterRole/-/etcd-robustness-operator',
      'ClusterRoleBinding/-/etcd-robustness-auth',
      'ClusterRoleBinding/-/etcd-robustness-operator',
      'CustomResourceDefinition/-/etcdclusters.etcd.robustness.io',
      'CustomResourceDefinition/-/robustnessruns.etcd.robustness.io',
      'Deployment/etcd-robustness-system/etcd-robustness-operator',
      'Namespace/-/etcd-robustness-system',
      'NetworkPolicy/etcd-robustness-system/etcd-robustness-operator',
      'Role/etcd-robustness-system/etcd-robustness-leader-election',
      'RoleBinding/etcd-robustness-system/etcd-robustness-leader-election',
      'Service/etcd-robustness-system/etcd-robustness-operator-metrics',
      'ServiceAccount/etcd-robustness-system/etcd-robustness-operator',
    ]);
    assert.deepEqual(expandRules(roleOf(manifests, 'ClusterRole', 'etcd-robustness-operator').rules), expandTable(operatorPermissions));
    assert.deepEqual(expandRules(roleOf(manifests, 'ClusterRole', 'etcd-robustness-auth').rules), expandTable(authPermissions));
    assert.deepEqual(
      expandRules(roleOf(manifests, 'Role').rules),
      expandTable(leaderElectionPermissions('etcd-robustness-operator')),
    );
    for (const binding of [only(manifests, 'ClusterRoleBinding', 'etcd-robustness-operator'), only(manifests, 'ClusterRoleBinding', 'etcd-robustness-auth'), only(manifests, 'RoleBinding')].map(bindingOf)) {
      assert.deepEqual(binding.subjects, [
        { kind: 'ServiceAccount', name: 'etcd-robustness-operator', namespace: 'etcd-robustness-system' },
      ]);
    }
    const deployment = deploymentOf(manifests);
    assert.equal(deployment.spec?.replicas, 2);
    const container = deployment.spec?.template.spec?.containers[0];
    assert.equal(deployment.spec?.template.spec?.serviceAccountName, 'etcd-robustness-operator');
    assert.ok(container);
    assert.ok(container.args?.includes('--leader-elect'));
    assert.ok(container.args?.some((a) => a.startsWith('--member-network-policy=')), 'each cluster gets its members\' NetworkPolicy');
    // The operator's own policy selects its Pods and admits the ports it serves.
    const policy = only(manifests, 'NetworkPolicy') as unknown as { spec: { podSelector: { matchLabels: Record<string, string> }; ingress: { ports: { port: number }[] }[] } };
    assert.deepEqual(policy.spec.podSelector.matchLabels, deployment.spec?.selector.matchLabels);
    assert.deepEqual(policy.spec.ingress.flatMap((rule) => rule.ports.map((p) => p.port)).sort(), [8081, 8443]);
    assert.deepEqual(container.livenessProbe?.httpGet, { path: '/healthz', port: 8081 });
    assert.deepEqual(container.readinessProbe?.httpGet, { path: '/readyz', port: 8081 });

    // The CRDs are too large for a client-side apply's last-applied annotation: server-side, as the README says.
    assertApplied(
      await apiserver.kubectl(['apply', '--server-side', '--dry-run=server', '-f', '-'], rendered.stdout),
      'config/default',
    );
  });
});
