// `etcd-robustness dev --runtime=kubernetes`, as a newcomer runs it: it starts the real single-node
// cluster with every image of npm run build:images imported and prints the KUBECONFIG; kubectl sees the
// node Ready with the operator image on it; Ctrl-C removes the node and everything it made.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { nodeLeftovers, readImagesManifest } from '../../src/node/index.ts';
import { nodeLayout } from '../../src/node/layout.ts';
import { DevProcess, kubectlWith as kubectl } from '../helpers/dev.ts';

let dev: DevProcess | undefined;

// A failed test still stops the node cleanly (SIGKILL would leave it for the next start to reclaim).
after(async () => {
  await dev?.stop('SIGTERM');
});

test('etcd-robustness dev --runtime=kubernetes: a Ready node with the images, removed on Ctrl-C', { timeout: 600_000 }, async () => {
  const images = readImagesManifest();
  dev = new DevProcess(['--runtime=kubernetes']);
  const kubeconfig = await dev.kubeconfig(300_000);
  const stdout = (): string => dev!.stdout;
  assert.match(stdout(), /^kubectl: .+\/kubectl$/m);
  assert.match(stdout(), /^helm: .+\/helm$/m);

  const nodes = await kubectl(kubeconfig, ['get', 'nodes', '-o', 'jsonpath={range .items[*]}{.metadata.name} {.status.conditions[?(@.type=="Ready")].status}{"\\n"}{end}']);
  assert.equal(nodes.code, 0, nodes.stderr);
  assert.match(nodes.stdout.trim(), /^\S+ True$/);
  // The kubelet reports the images containerd holds: every one of build:images is there.
  const reported = await kubectl(kubeconfig, ['get', 'nodes', '-o', 'jsonpath={.items[0].status.images[*].names}']);
  for (const image of images.images) assert.ok(reported.stdout.includes(image.name), `${image.name} is on the node (${reported.stdout})`);
  // Nothing is installed: no operator until the user runs helm install.
  const deployments = await kubectl(kubeconfig, ['get', 'deployments', '--all-namespaces', '-o', 'name']);
  assert.equal(deployments.stdout.trim(), '');

  const code = await dev.stop('SIGINT');
  assert.equal(code, 0, dev.stderr.slice(-2000));
  assert.match(stdout(), /SIGINT: stopping the node and removing everything it made/);
  assert.deepEqual(await nodeLeftovers(nodeLayout()), []);
});
