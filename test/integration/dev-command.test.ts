// The newcomer's path of the README, as a test: `etcd-robustness dev` starts a real kube-apiserver with
// the CRDs and the operator (local runtime); kubectl, with the KUBECONFIG it prints, applies the samples;
// the EtcdCluster becomes Available, the RobustnessRun passes; Ctrl-C stops everything.
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { kubeBinaries } from '../../src/local/index.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'dev-command-'));
let dev: ChildProcess | undefined;

after(async () => {
  if (dev && dev.exitCode === null) {
    dev.kill('SIGKILL');
    await new Promise((resolve) => dev!.once('exit', resolve));
  }
  rmSync(dir, { recursive: true, force: true });
});

function kubectl(kubeconfig: string, args: string[], stdin?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(kubeBinaries().kubectl, args, { env: { ...process.env, KUBECONFIG: kubeconfig }, timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr });
    });
    if (stdin !== undefined) child.stdin?.end(stdin);
  });
}

async function jsonPath(kubeconfig: string, kind: string, name: string, expression: string): Promise<string> {
  const result = await kubectl(kubeconfig, ['get', kind, name, '-o', `jsonpath=${expression}`]);
  return result.code === 0 ? result.stdout : '';
}

async function waitFor(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(1000);
  }
  assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

test('etcd-robustness dev: kubectl applies the samples, the cluster becomes Available, the run passes, Ctrl-C stops everything', { timeout: 600_000 }, async () => {
  const child = spawn(process.execPath, ['src/cli.ts', 'dev', '--dir', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  dev = child;
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  await waitFor('dev to print KUBECONFIG', 120_000, async () => Promise.resolve(/^export KUBECONFIG=(.+)$/m.test(stdout) || child.exitCode !== null));
  const kubeconfig = /^export KUBECONFIG=(.+)$/m.exec(stdout)?.[1];
  assert.ok(kubeconfig, `dev printed no KUBECONFIG (exit ${child.exitCode}): ${stdout}\n${stderr.slice(-2000)}`);
  assert.match(stdout, /^kubectl: .+kubectl/m);

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

  child.kill('SIGINT');
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  assert.equal(code, 0, stderr.slice(-2000));
  assert.match(stdout, /SIGINT: stopping the operator, its members and the apiserver/);
});
