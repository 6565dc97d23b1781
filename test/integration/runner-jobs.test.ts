// The operator's side of runner Pods against a real kube-apiserver: the RobustnessRun reconciler makes a
// Job per run, a second reconciler (the next leader after a restart) finds it and waits, a Job that ends
// without the runner reporting ends the run (RunnerFailed) and is counted, and deleting the run deletes
// its Jobs before the finalizer goes. No controller manager runs here: the test writes the Job's status
// the way the Job controller would, and removes the foreground-deletion finalizer the way the garbage
// collector would. The runner Pod itself runs on the real node (test/integration/in-cluster.test.ts);
// here `runInRunnerPod` is checked to leave alone a run that is not its to drive.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { BatchV1Api, type V1Job } from '@kubernetes/client-node';
import { EventRecorder, Informer, type KubeObject } from '../../src/controller/kit/index.ts';
import { KubernetesPlacement } from '../../src/controller/placement/kubernetes.ts';
import { ConfigMapReportStore } from '../../src/controller/report-store/index.ts';
import { RobustnessRunReconciler } from '../../src/controller/robustnessrun/reconciler.ts';
import { jobEnd, RunnerJobs, type RunnerPodOptions } from '../../src/controller/robustnessrun/runner-jobs.ts';
import { runInRunnerPod } from '../../src/controller/robustnessrun/runner.ts';
import type { RobustnessRunResource } from '../../src/domain/index.ts';
import { Registry } from '../../src/run/index.ts';
import { TestApiserver } from '../helpers/kube-apiserver.ts';
import { eventually, installCrds, kubectlJson, kubectlOk } from '../helpers/operator.ts';

const namespace = 'runs';
const system = 'runner-system';
const key = `${namespace}/r1`;
const clusterKey = `${namespace}/c1`;

const runnerOptions: RunnerPodOptions = {
  namespace: system,
  serviceAccount: 'ero-runner',
  image: 'example.test/op:1',
  agentImage: 'example.test/op:1',
  podLabels: { 'app.kubernetes.io/name': 'ero-runner' },
  resources: { requests: { cpu: '100m' } },
};

describe('runner Jobs on a real kube-apiserver', { timeout: 120_000 }, () => {
  let apiserver: TestApiserver;
  let batch: BatchV1Api;
  const registries: Registry[] = [];
  const informers: Informer<KubeObject>[] = [];

  /** `cached`: the Jobs from an informer's cache, as the operator gives them (else every read goes to the API). */
  const reconcilerOf = (identity: string, cached?: (name: string) => V1Job | undefined): RobustnessRunReconciler => {
    const registry = new Registry();
    registries.push(registry);
    return new RobustnessRunReconciler({
      kubeConfig: apiserver.kubeConfig,
      placement: new KubernetesPlacement({ kubeConfig: apiserver.kubeConfig, operatorImage: runnerOptions.image }),
      events: new EventRecorder({ kubeConfig: apiserver.kubeConfig, controller: 'etcd.robustness.io/operator', instance: identity }),
      reports: new ConfigMapReportStore({ kubeConfig: apiserver.kubeConfig }),
      registry,
      enqueue: () => undefined,
      identity,
      runners: new RunnerJobs(apiserver.kubeConfig, runnerOptions, cached),
    });
  };
  const getRun = (): Promise<RobustnessRunResource | undefined> => kubectlJson<RobustnessRunResource>(apiserver, ['-n', namespace, 'get', 'robustnessrun', 'r1']);
  const jobs = async (): Promise<V1Job[]> => (await batch.listNamespacedJob({ namespace: system })).items;

  before(async () => {
    apiserver = await TestApiserver.start();
    batch = apiserver.kubeConfig.makeApiClient(BatchV1Api);
    await installCrds(apiserver);
    await kubectlOk(apiserver, ['create', 'namespace', namespace]);
    await kubectlOk(apiserver, ['create', 'namespace', system]);
    await kubectlOk(apiserver, ['-n', namespace, 'apply', '-f', '-'], 'apiVersion: etcd.robustness.io/v1alpha1\nkind: EtcdCluster\nmetadata: {name: c1}\nspec: {replicas: 3}\n');
    const now = new Date().toISOString();
    const available = { status: { conditions: [{ type: 'Available', status: 'True', reason: 'QuorumHealthy', message: 'test', lastTransitionTime: now }] } };
    await kubectlOk(apiserver, ['-n', namespace, 'patch', 'etcdcluster', 'c1', '--subresource=status', '--type=merge', '-p', JSON.stringify(available)]);
  });

  after(async () => {
    for (const informer of informers) informer.stop();
    await apiserver?.close();
  });

  test('a run becomes a Job under the runner ServiceAccount; the next leader waits for it; a Job that ends without the runner ends the run', async () => {
    await kubectlOk(apiserver, ['-n', namespace, 'apply', '-f', '-'], [
      'apiVersion: etcd.robustness.io/v1alpha1',
      'kind: RobustnessRun',
      'metadata: {name: r1}',
      'spec:',
      '  clusterRef: {name: c1}',
      '  duration: 10s',
      '  faults: {allowShared: true, choices: [{fault: pause}]}',
      '  runner: {nodeSelector: {disk: ssd}, tolerations: [{key: dedicated, operator: Equal, value: chaos, effect: NoSchedule}]}',
      '',
    ].join('\n'));
    const first = reconcilerOf('replica-a');
    await first.reconcile(key); // the finalizer
    await first.reconcile(key); // the start
    const running = await getRun();
    assert.equal(running?.status?.phase, 'Running');
    assert.equal(running?.status?.runNumber, 1);
    assert.equal(running?.status?.recording, undefined, 'no recording folder on an operator replica');
    const listed = await jobs();
    assert.equal(listed.length, 1);
    const job = listed[0]!;
    assert.equal(job.metadata?.name, running?.status?.runnerJob);
    assert.equal(job.spec?.backoffLimit, 0, 'a run is never retried under the same number');
    const pod = job.spec.template.spec!;
    assert.equal(pod.serviceAccountName, 'ero-runner');
    assert.deepEqual(pod.nodeSelector, { disk: 'ssd' });
    assert.deepEqual(JSON.parse(JSON.stringify(pod.tolerations)), [{ key: 'dedicated', operator: 'Equal', value: 'chaos', effect: 'NoSchedule' }]);
    assert.deepEqual(pod.containers[0]?.resources?.requests, { cpu: '100m' }, "the operator's default resources");
    assert.ok(pod.containers[0]?.args?.includes(`--run=${key}`) && pod.containers[0].args.includes('--run-number=1') && pod.containers[0].args.includes(`--job=${job.metadata?.name}`), JSON.stringify(pod.containers[0]?.args));
    assert.equal(job.spec?.template.metadata?.labels?.['app.kubernetes.io/name'], 'ero-runner');
    assert.equal(first.faultsActiveOn(clusterKey), true, 'the cluster controller holds its repairs while the runner injects faults');

    // The next leader (a new process): the run is its runner's, not interrupted.
    // It reads the Jobs through an informer's cache, as the operator does.
    const informer = new Informer<KubeObject>({ kubeConfig: apiserver.kubeConfig, path: `/apis/batch/v1/namespaces/${system}/jobs`, onEvent: () => undefined });
    informers.push(informer);
    await informer.start();
    const second = reconcilerOf('replica-b', (name) => informer.get(system, name) as V1Job | undefined);
    const waiting = await second.reconcile(key);
    assert.ok((waiting.requeueAfterMs ?? 0) > 0);
    assert.equal((await getRun())?.status?.phase, 'Running', 'a run whose Job goes on is left to it');
    assert.equal(second.stopRunsOn(clusterKey), 1, 'a cluster deletion waits for the runner');
    assert.equal(second.faultsActiveOn(clusterKey), true);

    // A runner this stage is not for (another run number) does nothing.
    const skipped = await runInRunnerPod({
      kubeConfig: apiserver.kubeConfig, namespace, name: 'r1', runNumber: 2, job: job.metadata!.name!, agentImage: runnerOptions.agentImage,
      identity: 'runner-test', host: '127.0.0.1', metricsPort: 0, healthPort: 0, stopRequested: new Promise(() => undefined),
    });
    assert.deepEqual(skipped, { kind: 'skipped', why: 'status is at run 1, not 2' });

    // The Job fails (its deadline, the Pod killed) without the runner having reported: the run ends.
    const failedAt = new Date().toISOString();
    const failure = { type: 'Failed', status: 'True', reason: 'DeadlineExceeded', message: 'Job was active longer than specified deadline', lastTransitionTime: failedAt };
    const status = { startTime: failedAt, failed: 1, conditions: [{ ...failure, type: 'FailureTarget' }, failure] };
    await kubectlOk(apiserver, ['-n', system, 'patch', 'job', job.metadata!.name!, '--subresource=status', '--type=merge', '-p', JSON.stringify({ status })]);
    await eventually('the informer to see the Job fail', 30_000, () => Promise.resolve(jobEnd((informer.get(system, job.metadata!.name!) ?? {}) as V1Job) === undefined ? undefined : true));
    await second.reconcile(key);
    const ended = await getRun();
    assert.equal(ended?.status?.phase, 'Aborted', JSON.stringify(ended?.status));
    assert.equal(ended?.status?.lastRun?.number, 1);
    const succeeded = ended?.status?.conditions?.find((c) => c.type === 'Succeeded');
    assert.equal(succeeded?.reason, 'RunnerFailed');
    assert.match(succeeded?.message ?? '', /runner Pod \(Job run-r1-[0-9a-f]{8}-1\) ended before the run did: DeadlineExceeded/);
    assert.equal(ended?.status?.runnerJob, undefined);
    await second.reconcile(key); // sees the end: counted
    const text = await registries[1]!.metrics();
    assert.match(text, /etcd_robustness_runs_total\{run="runs\/r1",cluster="runs\/c1",verdict="inconclusive"\} 1/);
    assert.equal(second.faultsActiveOn(clusterKey), false);
    assert.equal(second.stopRunsOn(clusterKey), 0);
  });

  test('deleting a run deletes its Jobs: a finished one at once, a running one in the foreground (its runner gets SIGTERM and reports) before the finalizer goes', async () => {
    const reconciler = reconcilerOf('replica-c');
    // r1's Job ended (failed above): deleted in the background, nothing to wait for.
    await kubectlOk(apiserver, ['-n', namespace, 'delete', 'robustnessrun', 'r1', '--wait=false']);
    await reconciler.reconcile(key);
    assert.equal(await getRun(), undefined, 'the finalizer went at once');
    assert.deepEqual(await jobs(), []);

    await kubectlOk(apiserver, ['-n', namespace, 'apply', '-f', '-'], 'apiVersion: etcd.robustness.io/v1alpha1\nkind: RobustnessRun\nmetadata: {name: r2}\nspec: {clusterRef: {name: c1}, duration: 10s}\n');
    const key2 = `${namespace}/r2`;
    await reconciler.reconcile(key2);
    await reconciler.reconcile(key2);
    assert.equal((await jobs()).length, 1, 'r2 runs in its Job');
    await kubectlOk(apiserver, ['-n', namespace, 'delete', 'robustnessrun', 'r2', '--wait=false']);
    const waiting = await reconciler.reconcile(key2);
    assert.ok((waiting.requeueAfterMs ?? 0) > 0, 'it waits for the running Job to go');
    assert.ok((await kubectlJson<RobustnessRunResource>(apiserver, ['-n', namespace, 'get', 'robustnessrun', 'r2'])) !== undefined, 'the finalizer holds the run meanwhile');
    const deleting = await jobs();
    assert.equal(deleting.length, 1);
    assert.ok(deleting[0]!.metadata?.deletionTimestamp !== undefined, 'the Job is being deleted');
    assert.ok(deleting[0]!.metadata?.finalizers?.includes('foregroundDeletion'), 'in the foreground: its Pod first');
    // What the garbage collector does once the Pod is gone.
    await kubectlOk(apiserver, ['-n', system, 'patch', 'job', deleting[0]!.metadata.name!, '--type=merge', '-p', '{"metadata":{"finalizers":null}}']);
    await reconciler.reconcile(key2);
    assert.equal(await kubectlJson<RobustnessRunResource>(apiserver, ['-n', namespace, 'get', 'robustnessrun', 'r2']), undefined, 'the finalizer went');
    assert.deepEqual(await jobs(), []);
  });
});
