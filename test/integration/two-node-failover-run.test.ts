// The two-node-failover scenario (config/samples/etcdcluster-two-node.yaml and two-node-failover.yaml)
// end to end, shortened: the
// operator (--runtime=local, Lease witness on a real kube-apiserver) runs the RobustnessRun against the
// two-node-plus-witness cluster while its seeded faults crash and partition the pair. The live checker
// must find the history linearizable and the watches valid across every failover, and the run records
// the time from each fault to the cluster being writable again.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import type { RobustnessRunResource } from '../../src/domain/index.ts';
import type { TestApiserver } from '../helpers/kube-apiserver.ts';
import { eventually, kubectlJson, kubectlOk, LocalOperatorEnvironment } from '../helpers/operator.ts';
import { eventReasons, waitPair } from '../helpers/two-node.ts';

const namespace = 'scenario';
let env: LocalOperatorEnvironment | undefined;
let apiserver: TestApiserver;

before(async () => {
  env = await LocalOperatorEnvironment.start(namespace, 'op-scenario');
  apiserver = env.apiserver;
});

after(async () => {
  await env?.close();
});

test('two-node-failover: crashes and a partition of the pair, every failover linearizable with valid watches', { timeout: 600_000 }, async () => {
  await kubectlOk(apiserver, ['-n', namespace, 'apply', '-f', 'config/samples/etcdcluster-two-node.yaml']);
  const run = readFileSync('config/samples/two-node-failover.yaml', 'utf8');
  await waitPair(apiserver, namespace, 'pair');
  await kubectlOk(apiserver, ['-n', namespace, 'apply', '-f', '-'], run.replace('duration: 5m', 'duration: 90s'));
  const finished = await eventually(
    'the run finished',
    300_000,
    async () => {
      const r = await kubectlJson<RobustnessRunResource>(apiserver, ['-n', namespace, 'get', 'robustnessrun', 'two-node-failover']);
      return r?.status?.lastRun?.endTime !== undefined ? r : undefined;
    },
    async () => JSON.stringify((await kubectlJson<RobustnessRunResource>(apiserver, ['-n', namespace, 'get', 'robustnessrun', 'two-node-failover']))?.status ?? null),
    1000,
  );
  const status = finished.status!;
  const last = status.lastRun!;
  assert.equal(last.phase, 'Passed', `the run ended ${last.phase}: ${last.reason ?? ''}`);
  assert.equal(last.verdict, 'linearizable');
  assert.deepEqual(status.violations ?? [], []);
  assert.ok((status.faults?.injected ?? 0) >= 3, `faults injected: ${JSON.stringify(status.faults)}`);
  const writable = last.faultToWritable;
  assert.ok(writable && writable.recovered >= 3, `time to writable: ${JSON.stringify(writable)}`);
  console.log(`two-node-failover: ${JSON.stringify(writable)}, faults ${JSON.stringify(status.faults)}, ${JSON.stringify(status.operations)}`);

  const clusterEvents = await eventReasons(apiserver, namespace, 'pair');
  const failovers = clusterEvents.filter((e) => e.reason === 'FailoverCompleted');
  assert.ok(failovers.length >= 2, `failovers: ${clusterEvents.map((e) => e.reason).join(',')}`);
  const runEvents = (await eventReasons(apiserver, namespace, 'two-node-failover')).map((e) => e.reason);
  assert.ok(runEvents.includes('RunPassed'), runEvents.join(','));
  // The pair is whole again after the run.
  await waitPair(apiserver, namespace, 'pair');
});
