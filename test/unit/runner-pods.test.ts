// Runner Pods as pure logic: the Job's name and manifest, a Job's end, the operator's and the runner's
// flags, the members' NetworkPolicy admitting runners, and spec.runner in a manifest.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { V1Job } from '@kubernetes/client-node';
import { parseOperatorArgs } from '../../src/commands/operator.ts';
import { parseRunnerArgs } from '../../src/commands/runner.ts';
import { UsageError } from '../../src/commands/usage.ts';
import { memberNetworkPolicy } from '../../src/controller/placement/kubernetes-manifests.ts';
import { jobEnd, resourcesFromJson, runnerJob, runnerJobName, RunnerResourcesError, type RunnerPodOptions } from '../../src/controller/robustnessrun/runner-jobs.ts';
import type { EtcdCluster, RobustnessRunResource } from '../../src/domain/index.ts';
import { ManifestError, parseRobustnessRun } from '../../src/run/manifest.ts';

const options: RunnerPodOptions = {
  namespace: 'ero-system',
  serviceAccount: 'ero-runner',
  image: 'example.test/ero:1',
  agentImage: 'example.test/ero:1',
  podLabels: { 'app.kubernetes.io/name': 'ero-runner', 'app.kubernetes.io/instance': 'ero' },
  resources: { requests: { cpu: '100m' } },
};

function resource(spec: RobustnessRunResource['spec'] = { clusterRef: { name: 'c1' } }, name = 'nightly'): RobustnessRunResource {
  return { apiVersion: 'etcd.robustness.io/v1alpha1', kind: 'RobustnessRun', metadata: { name, namespace: 'team-a', uid: 'u1' }, spec };
}

describe('runner Jobs', () => {
  test('the name: a DNS label of at most 63 characters, one per run number, different for the same name in two namespaces', () => {
    const long = 'a'.repeat(253);
    for (const name of ['nightly', long, 'x.y-z']) {
      const job = runnerJobName('team-a', name, 12345);
      assert.ok(job.length <= 63, job);
      assert.match(job, /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
      assert.ok(job.endsWith('-12345'));
    }
    assert.notEqual(runnerJobName('team-a', 'nightly', 1), runnerJobName('team-b', 'nightly', 1));
    assert.notEqual(runnerJobName('team-a', 'nightly', 1), runnerJobName('team-a', 'nightly', 2));
  });

  test('the manifest: one Pod never retried, a deadline past the run timeout, the runner ServiceAccount, a restricted Pod, the run named', () => {
    const job = runnerJob(resource(), 3, 600_000, options);
    assert.equal(job.metadata?.namespace, 'ero-system');
    assert.equal(job.spec?.backoffLimit, 0);
    assert.ok((job.spec?.activeDeadlineSeconds ?? 0) > 600 + 120, 'room for the timeout and the runner grace period');
    const pod = job.spec.template.spec!;
    assert.equal(pod.restartPolicy, 'Never');
    assert.equal(pod.serviceAccountName, 'ero-runner');
    assert.equal(pod.securityContext?.runAsNonRoot, true);
    const container = pod.containers[0]!;
    assert.equal(container.image, 'example.test/ero:1');
    assert.equal(container.securityContext?.readOnlyRootFilesystem, true);
    assert.deepEqual(container.securityContext?.capabilities?.drop, ['ALL']);
    assert.deepEqual(container.args?.slice(0, 4), ['runner', '--run=team-a/nightly', '--run-number=3', `--job=${job.metadata?.name}`]);
    assert.deepEqual(container.resources, { requests: { cpu: '100m' } }, "the operator's default");
    const labels = job.spec.template.metadata!.labels!;
    assert.equal(labels['app.kubernetes.io/name'], 'ero-runner');
    assert.equal(labels['etcd.robustness.io/run'], 'nightly');
    assert.equal(labels['etcd.robustness.io/run-namespace'], 'team-a');
    assert.equal(labels['etcd.robustness.io/run-number'], '3');
    assert.equal(pod.nodeSelector, undefined);
    // Runs at once spread over nodes: a runner prefers a node without another runner.
    const spread = pod.affinity?.podAntiAffinity?.preferredDuringSchedulingIgnoredDuringExecution?.[0];
    assert.equal(spread?.podAffinityTerm.topologyKey, 'kubernetes.io/hostname');
    assert.deepEqual(spread?.podAffinityTerm.labelSelector?.matchLabels, { 'app.kubernetes.io/component': 'runner' });
    assert.equal(labels['app.kubernetes.io/component'], 'runner');
  });

  test("spec.runner's resources, nodeSelector and tolerations go to the Pod as given", () => {
    const job = runnerJob(
      resource({ clusterRef: { name: 'c1' }, runner: { resources: { limits: { memory: '1Gi' } }, nodeSelector: { pool: 'chaos' }, tolerations: [{ key: 'chaos', operator: 'Exists', effect: 'NoSchedule' }] } }),
      1,
      60_000,
      options,
    );
    const pod = job.spec!.template.spec!;
    assert.deepEqual(pod.containers[0]!.resources, { limits: { memory: '1Gi' } });
    assert.deepEqual(pod.nodeSelector, { pool: 'chaos' });
    assert.deepEqual(pod.tolerations, [{ key: 'chaos', operator: 'Exists', effect: 'NoSchedule' }]);
  });

  test("a Job's end as its conditions say", () => {
    const job = (conditions: { type: string; status: string; reason?: string; message?: string }[]): V1Job => ({ status: { conditions } });
    assert.equal(jobEnd(job([])), undefined);
    assert.equal(jobEnd(job([{ type: 'Failed', status: 'False' }])), undefined);
    assert.deepEqual(jobEnd(job([{ type: 'Complete', status: 'True' }])), { succeeded: true, message: 'completed' });
    assert.deepEqual(jobEnd(job([{ type: 'Failed', status: 'True', reason: 'BackoffLimitExceeded', message: 'Job has reached the specified backoff limit' }])), {
      succeeded: false,
      message: 'BackoffLimitExceeded: Job has reached the specified backoff limit',
    });
  });

  test('--runner-resources JSON: requests and limits of quantities, anything else named', () => {
    assert.deepEqual(resourcesFromJson('{"requests":{"cpu":"100m","memory":"128Mi"},"limits":{"memory":"1Gi"}}'), { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '1Gi' } });
    const refused = (text: string): string => {
      try {
        resourcesFromJson(text);
      } catch (error) {
        assert.ok(error instanceof RunnerResourcesError);
        return error.message;
      }
      assert.fail(`accepted ${text}`);
    };
    assert.match(refused('{'), /^not JSON/);
    assert.match(refused('[]'), /must be a JSON object/);
    assert.match(refused('{"request":{}}'), /unknown field "request"/);
    assert.match(refused('{"limits":{"memory":"lots"}}'), /limits\.memory: "lots" is not a quantity/);
    assert.match(refused('{"limits":{"cpu":1}}'), /limits\.cpu: 1 is not a quantity/);
  });
});

describe('runner flags', () => {
  const env = { POD_NAMESPACE: 'ero-system' };

  test('the operator: runner Pods with a ServiceAccount, the agent image by default, labels that the members NetworkPolicy admits', () => {
    const args = parseOperatorArgs(['--runner-service-account=ero-runner', '--runner-pod-labels=app.kubernetes.io/name=ero-runner', '--runner-resources={"requests":{"cpu":"50m"}}', '--member-network-policy=app.kubernetes.io/name=ero', '--agent-image=example.test/ero:2'], env);
    assert.ok(args !== 'help');
    assert.deepEqual(args.runners, { namespace: 'ero-system', serviceAccount: 'ero-runner', image: 'example.test/ero:2', podLabels: { 'app.kubernetes.io/name': 'ero-runner' }, resources: { requests: { cpu: '50m' } } });
    assert.deepEqual(args.memberNetworkPolicy?.runnerPodLabels, { 'app.kubernetes.io/name': 'ero-runner' });
    const none = parseOperatorArgs([], env);
    assert.ok(none !== 'help');
    assert.equal(none.runners, undefined, 'without the flag runs execute in the operator process');
  });

  test('the operator refuses runner flags that cannot work, saying why', () => {
    const refused = (argv: string[], environment: NodeJS.ProcessEnv = env): string => {
      try {
        parseOperatorArgs(argv, environment);
      } catch (error) {
        assert.ok(error instanceof UsageError);
        return error.message;
      }
      assert.fail(`accepted ${argv.join(' ')}`);
    };
    assert.match(refused(['--runner-image=x']), /--runner-image: needs --runner-service-account/);
    assert.match(refused(['--runner-service-account=r', '--runtime=local']), /need --runtime kubernetes/);
    assert.match(refused(['--runner-service-account=r'], {}), /needs POD_NAMESPACE/);
    assert.match(refused(['--runner-service-account=r', '--report-dir=/reports']), /runner Pods store reports in ConfigMaps/);
    assert.match(refused(['--runner-service-account=r', '--runner-pod-labels=oops']), /"oops" is not a label KEY=VALUE/);
    assert.match(refused(['--runner-service-account=r', '--runner-resources={"limits":{"cpu":"x"}}']), /--runner-resources: limits\.cpu/);
  });

  test('the runner command: the run, its number and the Job; bad values named', () => {
    const args = parseRunnerArgs(['--run=team-a/nightly', '--run-number=4', '--job=run-nightly-1234abcd-4', '--bind-address=0.0.0.0', '--linger=30s']);
    assert.ok(args !== 'help');
    assert.deepEqual([args.namespace, args.name, args.runNumber, args.job, args.lingerMs, args.metricsPort, args.healthPort], ['team-a', 'nightly', 4, 'run-nightly-1234abcd-4', 30_000, 8443, 8081]);
    assert.equal(parseRunnerArgs(['-h']), 'help');
    const refused = (argv: string[]): string => {
      try {
        parseRunnerArgs(argv);
      } catch (error) {
        assert.ok(error instanceof UsageError);
        return error.message;
      }
      assert.fail(`accepted ${argv.join(' ')}`);
    };
    assert.match(refused(['--run-number=1']), /--run NAMESPACE\/NAME is required/);
    assert.match(refused(['--run=nightly', '--run-number=1']), /"nightly" is not NAMESPACE\/NAME/);
    assert.match(refused(['--run=a/b']), /--run-number N is required/);
    assert.match(refused(['--run=a/b', '--run-number=0']), /"0" is not a run number/);
    assert.match(refused(['--run=a/b', '--run-number=1', '--metrics-port=9', '--health-port=9']), /must differ/);
    assert.match(refused(['--run=a/b', '--run-number=1', '--linger=soon']), /--linger/);
  });
});

test("the members' NetworkPolicy admits the agents' port from the operator's and the runners' Pods", () => {
  const cluster = { apiVersion: 'etcd.robustness.io/v1alpha1', kind: 'EtcdCluster', metadata: { name: 'c1', namespace: 'team-a', uid: 'u' }, spec: {} } as unknown as EtcdCluster;
  const policy = memberNetworkPolicy(cluster, { namespace: 'ero-system', podLabels: { app: 'ero' }, runnerPodLabels: { app: 'ero-runner' } });
  const agentRule = policy.spec!.ingress!.find((rule) => rule.ports?.some((p) => p.port === 9095));
  assert.deepEqual(
    agentRule?._from?.map((peer) => peer.podSelector?.matchLabels),
    [{ app: 'ero' }, { app: 'ero-runner' }],
  );
  assert.ok(agentRule?._from?.every((peer) => peer.namespaceSelector?.matchLabels?.['kubernetes.io/metadata.name'] === 'ero-system'));
  const withoutRunners = memberNetworkPolicy(cluster, { namespace: 'ero-system', podLabels: { app: 'ero' } });
  assert.equal(withoutRunners.spec!.ingress!.find((rule) => rule.ports?.some((p) => p.port === 9095))?._from?.length, 1);
});

describe('spec.runner in a manifest', () => {
  const manifest = (runner: string): string => `apiVersion: etcd.robustness.io/v1alpha1\nkind: RobustnessRun\nmetadata:\n  name: demo\nspec:\n  runner:\n${runner}`;
  const parse = (text: string) => parseRobustnessRun(text, { file: 'run.yaml', defaultMode: 'exclusive' });
  const problems = (text: string): string[] => {
    try {
      parse(text);
    } catch (error) {
      if (error instanceof ManifestError) return error.issues.map((i) => `${i.line}:${i.column} ${i.path}: ${i.problem}`);
      throw error;
    }
    assert.fail('accepted');
  };

  test('read as given', () => {
    const run = parse(manifest('    resources: {requests: {cpu: 100m}, limits: {memory: 1Gi}}\n    nodeSelector: {pool: chaos}\n    tolerations:\n      - {key: chaos, operator: Exists, effect: NoSchedule}\n'));
    assert.deepEqual(run.spec.runner, { resources: { requests: { cpu: '100m' }, limits: { memory: '1Gi' } }, nodeSelector: { pool: 'chaos' }, tolerations: [{ key: 'chaos', operator: 'Exists', effect: 'NoSchedule' }] });
    assert.equal(parse(manifest('    {}\n')).spec.runner !== undefined, true);
  });

  test('what the CRD refuses, with the line and the path', () => {
    const found = problems(manifest('    resources: {requests: {cpu: lots}}\n    nodeSelector: {pool: 5}\n    tolerations:\n      - {operator: Maybe}\n      - chaos\n    image: x\n'));
    assert.equal(found.length, 5, found.join('\n'));
    assert.match(found.find((p) => p.includes('spec.runner.resources.requests.cpu'))!, /^7:/);
    assert.ok(found.some((p) => p.includes('spec.runner.nodeSelector.pool')), found.join('\n'));
    assert.ok(found.some((p) => /spec\.runner\.tolerations\[0\]\.operator: .*Exists/.test(p)), found.join('\n'));
    assert.ok(found.some((p) => /spec\.runner\.tolerations\[1\]: must be a mapping/.test(p)), found.join('\n'));
    assert.ok(found.some((p) => /spec\.runner\.image: unknown field/.test(p)), found.join('\n'));
  });
});
