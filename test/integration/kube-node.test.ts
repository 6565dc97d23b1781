// The test node (src/node) for real: a kubelet, containerd and runc running Pods from the images of
// `npm run build:images`, Service IPs through kube-proxy, DNS through CoreDNS, PVCs on local PVs, Pod
// Security admission, `kubectl logs/exec`; then close() leaves nothing on the machine.
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { nodeBinaries } from '../../src/local/binaries.ts';
import { imageNamed, KubeNode, NodeBusyError, nodeLeftovers, NodeStartError, nodeStateRoot, readImagesManifest, type ImagesManifest } from '../../src/node/index.ts';
import { nodeLayout } from '../../src/node/layout.ts';
import { mountsUnder, pidsWithArgument, podCgroups } from '../../src/node/machine.ts';
import { snapshotSysctls } from '../../src/node/owner.ts';

// The images the chart and the operator name (see charts/etcd-robustness-operator/values.yaml).
const operatorImage = 'ghcr.io/etcd-robustness/etcd-robustness-operator:0.1.0';
const etcdImage = 'gcr.io/etcd-development/etcd:v3.6.16';

let node: KubeNode;
let images: ImagesManifest;
let machineBefore: MachineState;

interface MachineState {
  sysctls: Record<string, string>;
  links: string[];
  nftTables: string[];
  iptables: string;
}

/** What the node must leave as it found it. */
function machineState(): MachineState {
  const links = (JSON.parse(execFileSync('ip', ['-j', 'link', 'show'], { encoding: 'utf8' })) as { ifname: string }[]).map((l) => l.ifname).sort();
  const nftTables = execFileSync('nft', ['list', 'tables'], { encoding: 'utf8' }).split('\n').filter((l) => l !== '').sort();
  const iptables = ['iptables-save', 'ip6tables-save'].map((tool) => execFileSync(tool, { encoding: 'utf8' }).split('\n').filter((l) => !l.startsWith('#')).map((l) => l.replace(/\[\d+:\d+\]/, '')).join('\n')).join('\n');
  return { sysctls: snapshotSysctls(), links, nftTables, iptables };
}

async function kubectlOk(args: string[], stdin?: string): Promise<string> {
  const result = await node.kubectl(args, stdin);
  assert.equal(result.code, 0, `kubectl ${args.join(' ')}: ${result.stderr}`);
  return result.stdout;
}

async function jsonPath(kind: string, name: string, namespace: string, expression: string): Promise<string> {
  const result = await node.kubectl(['get', kind, name, '-n', namespace, '-o', `jsonpath=${expression}`]);
  return result.code === 0 ? result.stdout : '';
}

async function waitFor(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(500);
  }
  assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

async function waitForPhase(name: string, namespace: string, phase: string, timeoutMs = 120_000): Promise<void> {
  let last = '';
  try {
    await waitFor(`Pod ${namespace}/${name} ${phase}`, timeoutMs, async () => {
      last = await jsonPath('pod', name, namespace, '{.status.phase}');
      return last === phase;
    });
  } catch (error) {
    const described = await node.kubectl(['describe', 'pod', name, '-n', namespace]);
    throw new Error(`${(error as Error).message} (phase ${last || 'none'})\n${described.stdout.slice(-3000)}`, { cause: error });
  }
}

/** Requests keep test Pods out of BestEffort: a machine-wide OOM kills BestEffort containers first. */
const requests = { requests: { cpu: '10m', memory: '32Mi' }, limits: { memory: '256Mi' } };

/** What Pod Security `restricted` asks of a Pod and its containers. */
const restrictedPod = { runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, fsGroup: 65532, seccompProfile: { type: 'RuntimeDefault' } };
const restrictedContainer = { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] }, readOnlyRootFilesystem: true };

function pod(name: string, namespace: string, spec: Record<string, unknown>, labels: Record<string, string> = {}): string {
  return JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace, labels }, spec: { terminationGracePeriodSeconds: 2, ...spec } });
}

/**
 * Starts a node in another process (`etcd-robustness dev --runtime=kubernetes`), runs a Pod on it and
 * SIGKILLs that process, as a test runner killing a test would. Returns what it left on the machine.
 */
async function killedPredecessor(): Promise<string[]> {
  const child = spawn(process.execPath, ['src/cli.ts', 'dev', '--runtime=kubernetes'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  try {
    await waitFor('the predecessor to print its KUBECONFIG', 300_000, () => Promise.resolve(/^export KUBECONFIG=/m.test(output) || child.exitCode !== null));
    const kubeconfig = /^export KUBECONFIG=(.+)$/m.exec(output)?.[1];
    assert.ok(kubeconfig, `the predecessor did not start: ${output.slice(-3000)}`);
    const kubectl = (args: string[], stdin?: string): Promise<string> => new Promise((resolve, reject) => {
      const run = execFile(nodeBinaries().kubectl, [`--kubeconfig=${kubeconfig}`, ...args], { timeout: 60_000 }, (error, stdout, stderr) => (error ? reject(new Error(`kubectl ${args.join(' ')}: ${stderr}`)) : resolve(stdout)));
      if (stdin !== undefined) run.stdin?.end(stdin);
    });
    await kubectl(['apply', '-f', '-'], pod('left-behind', 'default', { containers: [{ name: 'etcd', image: etcdImage, imagePullPolicy: 'Never', command: ['etcd', '--data-dir=/tmp/etcd'], resources: requests }] }));
    await kubectl(['wait', '--for=condition=Ready', 'pod/left-behind', '--timeout=120s']);
  } finally {
    child.kill('SIGKILL');
    await new Promise((resolve) => (child.exitCode === null && child.signalCode === null ? child.once('exit', resolve) : resolve(undefined)));
  }
  return nodeLeftovers(nodeLayout());
}

test('a start that fails names the component and its log, and leaves nothing behind', { timeout: 300_000 }, async () => {
  const before = machineState();
  await assert.rejects(
    KubeNode.start({ pauseImage: { name: 'localhost/missing:1', file: '/nonexistent/pause.tar' }, progress: () => undefined }),
    (error: unknown) => {
      assert.ok(error instanceof NodeStartError, String(error));
      assert.equal(error.component, 'containerd');
      assert.match(error.message, /\/nonexistent\/pause\.tar does not exist/);
      assert.match(error.message, /containerd\.log \(last lines\)/);
      return true;
    },
  );
  assert.deepEqual(await nodeLeftovers(nodeLayout()), []);
  assert.deepEqual(machineState(), before);
});

describe('the test node: a real single-node cluster', { timeout: 900_000 }, () => {
  let predecessorLeft: string[] = [];

  before(async () => {
    images = readImagesManifest();
    machineBefore = machineState();
    predecessorLeft = await killedPredecessor();
    node = await KubeNode.start({
      images: [imageNamed(images, operatorImage).file, imageNamed(images, etcdImage).file],
      pvPool: { count: 4, size: '1Gi' },
      progress: (line) => console.log(`node: ${line}`),
    });
    console.log(`node memory (MiB): ${JSON.stringify(node.memory())}`);
  });

  after(async () => {
    await node?.close();
  });

  test('a killed predecessor left its node behind (shims, containers, mounts, cgroups, bridge); start() removed it', async () => {
    const has = (prefix: string, text = ''): boolean => predecessorLeft.some((l) => l.startsWith(prefix) && l.includes(text));
    assert.ok(has('process', 'containerd-shim'), predecessorLeft.join('\n'));
    assert.ok(has('mount', '/rootfs'), predecessorLeft.join('\n'));
    assert.ok(has('cgroup', 'kubepods'), predecessorLeft.join('\n'));
    assert.ok(has('bridge', 'erk'), predecessorLeft.join('\n'));
    // The node started after it is a fresh one: the predecessor's Pod is gone with its etcd.
    const pods = await kubectlOk(['get', 'pods', '--all-namespaces', '-o', 'name']);
    assert.equal(pods.trim(), '');
  });

  test('only one node runs at a time: a second start is refused while this one runs', async () => {
    await assert.rejects(KubeNode.start({ progress: () => undefined }), (error: unknown) => error instanceof NodeBusyError && error.ownerPid === process.pid);
    assert.equal(existsSync(`/sys/class/net/${node.network.bridge}`), true);
  });

  test('the node is Ready with its InternalIP on its own bridge; the machine still does not forward', async () => {
    const nodes = JSON.parse(await kubectlOk(['get', 'nodes', '-o', 'json'])) as { items: { metadata: { name: string }; status: { addresses: { type: string; address: string }[]; conditions: { type: string; status: string }[] } }[] };
    assert.equal(nodes.items.length, 1);
    const [only] = nodes.items;
    assert.equal(only!.metadata.name, node.nodeName);
    assert.equal(only!.status.conditions.find((c) => c.type === 'Ready')?.status, 'True');
    assert.equal(only!.status.addresses.find((a) => a.type === 'InternalIP')?.address, node.network.bridgeIp);
    const bridge = execFileSync('ip', ['-4', '-o', 'addr', 'show', 'dev', node.network.bridge], { encoding: 'utf8' });
    assert.match(bridge, new RegExp(`inet ${node.network.bridgeIp.replaceAll('.', '\\.')}/24`));
    assert.equal(readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim(), machineBefore.sysctls['net.ipv4.ip_forward']);
    assert.equal(readFileSync(`/proc/sys/net/ipv4/conf/${node.network.bridge}/forwarding`, 'utf8').trim(), '1');
  });

  test('a Pod from an imported image runs; kubectl logs and exec work', async () => {
    // Named the way the operator names members: a hostname under a headless Service.
    await kubectlOk(['apply', '-f', '-'], pod('etcd', 'default', {
      hostname: 'etcd-0',
      subdomain: 'etcd-peers',
      containers: [{
        name: 'etcd',
        image: etcdImage,
        imagePullPolicy: 'Never',
        command: ['etcd', '--data-dir=/tmp/etcd', '--listen-client-urls=http://0.0.0.0:2379', '--advertise-client-urls=http://etcd-0.etcd-peers.default.svc:2379'],
        ports: [{ containerPort: 2379, name: 'client' }],
        resources: requests,
      }],
    }, { app: 'etcd' }));
    for (const [name, clusterIP] of [['etcd', undefined], ['etcd-peers', 'None']] as const) {
      await kubectlOk(['apply', '-f', '-'], JSON.stringify({
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name, namespace: 'default' },
        spec: { selector: { app: 'etcd' }, ports: [{ name: 'client', port: 2379 }], ...(clusterIP ? { clusterIP } : {}) },
      }));
    }
    await waitForPhase('etcd', 'default', 'Running');
    await waitFor('etcd to log that it serves clients', 60_000, async () => {
      const logs = await node.kubectl(['logs', 'etcd', '-n', 'default']);
      return logs.code === 0 && /serving client traffic|ready to serve client requests/.test(logs.stdout);
    });
    const health = await kubectlOk(['exec', 'etcd', '-n', 'default', '--', 'etcdctl', 'endpoint', 'health']);
    assert.match(health, /is healthy/);
    const podIp = await jsonPath('pod', 'etcd', 'default', '{.status.podIP}');
    assert.ok(podIp.startsWith(node.network.podCidr.replace(/0\/24$/, '')), `Pod IP ${podIp} is in ${node.network.podCidr}`);
  });

  test('a Pod reaches the API server at https://kubernetes.default.svc and etcd through its Service and its per-Pod name; no default route, no outside names', async () => {
    const script = `
      const fs = require('node:fs'), https = require('node:https'), dns = require('node:dns').promises;
      const sa = '/var/run/secrets/kubernetes.io/serviceaccount/';
      const http = require('node:http'), net = require('node:net');
      const etcdHealth = () => new Promise((resolve) => {
        http.get('http://etcd.default.svc:2379/health', (res) => {
          let body = ''; res.on('data', (c) => body += c); res.on('end', () => resolve(body));
        }).on('error', (e) => resolve(e.code));
      });
      const outsideConnect = () => new Promise((resolve) => {
        const socket = net.connect({ host: '192.0.2.1', port: 53, timeout: 3000 });
        socket.on('connect', () => { socket.destroy(); resolve('connected'); });
        socket.on('timeout', () => { socket.destroy(); resolve('timeout'); });
        socket.on('error', (e) => resolve(e.code));
      });
      const get = (p) => new Promise((resolve) => {
        https.get('https://kubernetes.default.svc' + p, { ca: fs.readFileSync(sa + 'ca.crt'), headers: { Authorization: 'Bearer ' + fs.readFileSync(sa + 'token', 'utf8') } }, (res) => {
          let body = ''; res.on('data', (c) => body += c); res.on('end', () => resolve({ status: res.statusCode, body }));
        }).on('error', (e) => resolve({ error: e.message }));
      });
      (async () => {
        const version = await get('/version');
        const pods = await get('/api/v1/namespaces/default/pods');
        const service = await dns.lookup('kubernetes.default.svc').then((a) => a.address, (e) => e.code);
        const outside = await dns.lookup('example.com').then((a) => a.address, (e) => e.code);
        const member = await dns.lookup('etcd-0.etcd-peers.default.svc.cluster.local').then((a) => a.address, (e) => e.code);
        const health = await etcdHealth();
        const connect = await outsideConnect();
        const routes = fs.readFileSync('/proc/net/route', 'utf8').trim().split('\\n').slice(1).map((l) => l.split('\\t')[1]);
        console.log(JSON.stringify({ version: version.status, gitVersion: version.body && JSON.parse(version.body).gitVersion, pods: pods.status, service, outside, member, health, connect, routes }));
      })();`;
    await kubectlOk(['apply', '-f', '-'], pod('api-client', 'default', {
      restartPolicy: 'Never',
      securityContext: restrictedPod,
      containers: [{ name: 'client', image: operatorImage, imagePullPolicy: 'Never', command: ['node', '-e', script], resources: requests, securityContext: restrictedContainer }],
    }));
    await waitForPhase('api-client', 'default', 'Succeeded');
    const output = JSON.parse((await kubectlOk(['logs', 'api-client', '-n', 'default'])).trim().split('\n').pop() ?? '{}') as { version: number; gitVersion: string; pods: number; service: string; outside: string; member: string; health: string; connect: string; routes: string[] };
    assert.equal(output.version, 200, 'GET /version with the Pod token through the Service');
    assert.equal(output.gitVersion, node.binaries.version);
    // Authenticated as the default ServiceAccount, which RBAC does not let list Pods.
    assert.equal(output.pods, 403);
    assert.equal(output.service, '10.96.0.1');
    // A Service IP to a Pod on the same bridge (kube-proxy's DNAT, forwarding on the bridge), and the
    // per-Pod name of a headless Service.
    assert.match(output.health, /"health":"true"/);
    assert.equal(output.member, await jsonPath('pod', 'etcd', 'default', '{.status.podIP}'));
    // Nothing off the bridge: no route to the machine's network.
    assert.equal(output.connect, 'ENETUNREACH');
    assert.notEqual(output.outside, undefined);
    assert.ok(!/^\d+\.\d+\.\d+\.\d+$/.test(output.outside), `example.com must not resolve from a Pod (got ${output.outside})`);
    // /proc/net/route destinations in little-endian hex: the Pod subnet and the Service CIDR only.
    assert.ok(!output.routes.includes('00000000'), `a Pod has no default route (routes ${output.routes.join(', ')})`);
    assert.equal(output.routes.length, 2, `routes ${output.routes.join(', ')}`);
  });

  test('an image the node does not have is never pulled from outside the machine', async () => {
    await kubectlOk(['apply', '-f', '-'], pod('no-such-image', 'default', {
      containers: [{ name: 'c', image: 'docker.io/library/busybox:1.36', imagePullPolicy: 'IfNotPresent', resources: requests }],
    }));
    let message = '';
    await waitFor('the pull to fail', 60_000, async () => {
      message = await jsonPath('pod', 'no-such-image', 'default', '{.status.containerStatuses[0].state.waiting.message}');
      return message !== '';
    });
    // containerd's only way out is a proxy on a closed loopback port.
    assert.match(message, /127\.0\.0\.1:9: connect: connection refused/);
    await kubectlOk(['delete', 'pod', 'no-such-image', '-n', 'default', '--wait=false']);
  });

  test('Pod Security restricted: a root Pod is refused, a compliant Pod with a PVC on the default StorageClass runs as 65532 and writes its volume', async () => {
    await kubectlOk(['create', 'namespace', 'locked']);
    await kubectlOk(['label', 'namespace', 'locked', 'pod-security.kubernetes.io/enforce=restricted']);
    const refused = await node.kubectl(['apply', '-f', '-'], pod('root', 'locked', {
      containers: [{ name: 'etcd', image: etcdImage, imagePullPolicy: 'Never', resources: requests, securityContext: { runAsUser: 0 } }],
    }));
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /violates PodSecurity "restricted/);

    await kubectlOk(['apply', '-f', '-'], JSON.stringify({
      apiVersion: 'v1',
      kind: 'PersistentVolumeClaim',
      metadata: { name: 'data', namespace: 'locked' },
      spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } },
    }));
    // WaitForFirstConsumer: no Pod uses it yet.
    await sleep(2000);
    assert.equal(await jsonPath('pvc', 'data', 'locked', '{.status.phase}'), 'Pending');
    await kubectlOk(['apply', '-f', '-'], pod('writer', 'locked', {
      securityContext: restrictedPod,
      volumes: [{ name: 'data', persistentVolumeClaim: { claimName: 'data' } }],
      containers: [{
        name: 'writer',
        image: operatorImage,
        imagePullPolicy: 'Never',
        command: ['node', '-e', "require('node:fs').writeFileSync('/data/proof', String(process.getuid())); setInterval(() => {}, 1 << 30)"],
        volumeMounts: [{ name: 'data', mountPath: '/data' }],
        resources: requests,
        securityContext: restrictedContainer,
      }],
    }));
    await waitForPhase('writer', 'locked', 'Running');
    assert.equal(await jsonPath('pvc', 'data', 'locked', '{.status.phase}'), 'Bound');
    const pv = await jsonPath('pvc', 'data', 'locked', '{.spec.volumeName}');
    await waitFor('the writer to write its proof', 30_000, async () => (await node.kubectl(['exec', 'writer', '-n', 'locked', '--', 'node', '-e', "process.stdout.write(require('node:fs').readFileSync('/data/proof', 'utf8'))"])).stdout === '65532');
    const capabilities = await kubectlOk(['exec', 'writer', '-n', 'locked', '--', 'node', '-e', "process.stdout.write(/CapEff:\\s+(\\w+)/.exec(require('node:fs').readFileSync('/proc/self/status', 'utf8'))[1])"]);
    assert.equal(capabilities, '0000000000000000');
    // The file is in the PV's folder on the node, owned by the Pod's uid.
    const hostPath = await jsonPath('pv', pv, 'default', '{.spec.local.path}');
    assert.equal(statSync(path.join(hostPath, 'proof')).uid, 65532);

    // Deleting the claim releases the PV; the node's reclaimer wipes it and makes it Available again.
    await kubectlOk(['delete', 'pod', 'writer', '-n', 'locked', '--wait=true']);
    await kubectlOk(['delete', 'pvc', 'data', '-n', 'locked', '--wait=true']);
    await waitFor(`PV ${pv} Available again`, 60_000, async () => (await jsonPath('pv', pv, 'default', '{.status.phase}')) === 'Available');
    assert.deepEqual(readdirSync(hostPath), []);
  });

  test('close() leaves nothing: processes, mounts, cgroups, bridge, rules, sysctls, files', async () => {
    const { bridge } = node.network;
    await node.close();
    const layout = nodeLayout();
    assert.deepEqual(await nodeLeftovers(layout), []);
    assert.deepEqual(pidsWithArgument(nodeStateRoot), []);
    assert.deepEqual(mountsUnder(nodeStateRoot), []);
    assert.deepEqual(podCgroups(), []);
    assert.equal(existsSync(nodeStateRoot), false);
    assert.equal(existsSync(`/sys/class/net/${bridge}`), false);
    const now = machineState();
    assert.deepEqual(now.sysctls, machineBefore.sysctls);
    assert.deepEqual(now.links, machineBefore.links);
    assert.deepEqual(now.nftTables, machineBefore.nftTables);
    assert.equal(now.iptables, machineBefore.iptables);
    const links = existsSync('/var/log/containers') ? readdirSync('/var/log/containers') : [];
    assert.deepEqual(links.filter((l) => l.includes('_default_') || l.includes('_locked_')), []);
  });
});
