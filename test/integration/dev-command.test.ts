// The newcomer's path of the README, as a test: `etcd-robustness dev` starts a real kube-apiserver with
// the CRDs and the operator (local runtime); kubectl, with the KUBECONFIG it prints, applies the samples;
// the EtcdCluster becomes Available, the RobustnessRun passes; Ctrl-C stops everything. With --data-dir
// (--dir), a restart finds the same resources and members; a second dev on the same folder is refused.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { DevProcess, kubectlWith as kubectl, waitFor } from '../helpers/dev.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'dev-command-'));
let dev: DevProcess | undefined;

after(async () => {
  await dev?.stop('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

async function jsonPath(kubeconfig: string, kind: string, name: string, expression: string): Promise<string> {
  const result = await kubectl(kubeconfig, ['get', kind, name, '-o', `jsonpath=${expression}`]);
  return result.code === 0 ? result.stdout : '';
}

test('etcd-robustness dev: kubectl applies the samples, the cluster becomes Available, the run passes, Ctrl-C stops everything', { timeout: 600_000 }, async () => {
  dev = new DevProcess(['--dir', dir]);
  const kubeconfig = await dev.kubeconfig(120_000);
  assert.match(dev.stdout, /^kubectl: .+kubectl/m);

  const cluster = await kubectl(kubeconfig, ['apply', '-f', 'config/samples/etcdcluster.yaml']);
  assert.equal(cluster.code, 0, cluster.stderr);
  await waitFor('EtcdCluster demo Available with 3 ready members', 120_000, async () => {
    const ready = await jsonPath(kubeconfig, 'etcdcluster', 'demo', '{.status.readyMembers}/{.status.conditions[?(@.type=="Available")].status}');
    return ready === '3/True';
  });

  const run = readFileSync('config/samples/robustnessrun-against-cluster.yaml', 'utf8').replace('duration: 60s', 'duration: 15s');
  const applied = await kubectl(kubeconfig, ['apply', '-f', '-'], run);
  assert.equal(applied.code, 0, applied.stderr);
  await waitFor('RobustnessRun demo-faults to finish', 240_000, async () => {
    const phase = await jsonPath(kubeconfig, 'robustnessrun', 'demo-faults', '{.status.phase}');
    return phase !== '' && phase !== 'Pending' && phase !== 'Running';
  });
  assert.equal(await jsonPath(kubeconfig, 'robustnessrun', 'demo-faults', '{.status.phase}/{.status.verdict}'), 'Passed/linearizable');
  const printed = await kubectl(kubeconfig, ['get', 'robustnessrun', 'demo-faults']);
  assert.match(printed.stdout, /demo-faults\s+demo\s+once\s+Passed\s+linearizable/);

  const code = await dev.stop('SIGINT');
  assert.equal(code, 0, dev.stderr.slice(-2000));
  assert.match(dev.stdout, /SIGINT: stopping the operator, its members and the apiserver/);
});

test('etcd-robustness dev --data-dir: a restart finds the same EtcdCluster and RobustnessRun, and the members on their data; a second dev on the folder is refused', { timeout: 300_000 }, async () => {
  dev = new DevProcess(['--data-dir', dir]);
  const kubeconfig = await dev.kubeconfig(120_000);

  const second = new DevProcess(['--data-dir', dir]);
  const code = await new Promise<number | null>((resolve) => second.child.once('close', (c: number | null) => resolve(c)));
  assert.equal(code, 64, second.stderr);
  assert.match(second.stderr, new RegExp(`--data-dir: ${dir} is in use by another etcd-robustness dev \\(pid ${dev.child.pid}, still running\\)`));

  assert.equal(await jsonPath(kubeconfig, 'robustnessrun', 'demo-faults', '{.status.phase}/{.status.verdict}'), 'Passed/linearizable');
  assert.equal(await jsonPath(kubeconfig, 'etcdcluster', 'demo', '{.metadata.name}'), 'demo');
  await waitFor('EtcdCluster demo Available again with 3 ready members', 120_000, async () => {
    const ready = await jsonPath(kubeconfig, 'etcdcluster', 'demo', '{.status.readyMembers}/{.status.conditions[?(@.type=="Available")].status}');
    return ready === '3/True';
  });
  // Restarted on their data, not created again: the operator says so.
  assert.match(dev.stderr, /EtcdCluster default\/demo: restarting demo-0/);
  assert.equal(await dev.stop('SIGINT'), 0, dev.stderr.slice(-2000));
});
