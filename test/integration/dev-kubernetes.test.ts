// `etcd-robustness dev --runtime=kubernetes`, as a newcomer runs it: it starts the real single-node
// cluster with every image of npm run build:images imported and prints the KUBECONFIG; kubectl sees the
// node Ready with the operator image on it; Ctrl-C removes the node and everything it made.
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { nodeBinaries } from '../../src/local/binaries.ts';
import { nodeLeftovers, readImagesManifest } from '../../src/node/index.ts';
import { nodeLayout } from '../../src/node/layout.ts';

let dev: ChildProcess | undefined;

after(async () => {
  if (dev && dev.exitCode === null && dev.signalCode === null) {
    // A failed test still stops the node cleanly (SIGKILL would leave it for the next start to reclaim).
    dev.kill('SIGTERM');
    await new Promise((resolve) => dev!.once('exit', resolve));
  }
});

function kubectl(kubeconfig: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(nodeBinaries().kubectl, args, { env: { ...process.env, KUBECONFIG: kubeconfig }, timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr });
    });
  });
}

async function waitFor(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(1000);
  }
  assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

test('etcd-robustness dev --runtime=kubernetes: a Ready node with the images, removed on Ctrl-C', { timeout: 600_000 }, async () => {
  const images = readImagesManifest();
  const child = spawn(process.execPath, ['src/cli.ts', 'dev', '--runtime=kubernetes'], { stdio: ['ignore', 'pipe', 'pipe'] });
  dev = child;
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  await waitFor('dev to print KUBECONFIG', 300_000, async () => Promise.resolve(/^export KUBECONFIG=(.+)$/m.test(stdout) || child.exitCode !== null));
  const kubeconfig = /^export KUBECONFIG=(.+)$/m.exec(stdout)?.[1];
  assert.ok(kubeconfig, `dev printed no KUBECONFIG (exit ${child.exitCode}): ${stdout}\n${stderr.slice(-2000)}`);
  assert.match(stdout, /^kubectl: .+\/kubectl$/m);
  assert.match(stdout, /^helm: .+\/helm$/m);

  const nodes = await kubectl(kubeconfig, ['get', 'nodes', '-o', 'jsonpath={range .items[*]}{.metadata.name} {.status.conditions[?(@.type=="Ready")].status}{"\\n"}{end}']);
  assert.equal(nodes.code, 0, nodes.stderr);
  assert.match(nodes.stdout.trim(), /^\S+ True$/);
  // The kubelet reports the images containerd holds: every one of build:images is there.
  const reported = await kubectl(kubeconfig, ['get', 'nodes', '-o', 'jsonpath={.items[0].status.images[*].names}']);
  for (const image of images.images) assert.ok(reported.stdout.includes(image.name), `${image.name} is on the node (${reported.stdout})`);
  // Nothing is installed: no operator until the user runs helm install.
  const deployments = await kubectl(kubeconfig, ['get', 'deployments', '--all-namespaces', '-o', 'name']);
  assert.equal(deployments.stdout.trim(), '');

  child.kill('SIGINT');
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  assert.equal(code, 0, stderr.slice(-2000));
  assert.match(stdout, /SIGINT: stopping the node and removing everything it made/);
  assert.deepEqual(await nodeLeftovers(nodeLayout()), []);
});
