// The test node's pure parts: its configuration files keep traffic on the node's bridge, and its address
// arithmetic finds clashes with the machine's own networks.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { parse, parseAllDocuments } from 'yaml';
import { cniConfig, containerdConfig, corefile, kubeletConfig, kubeProxyConfig } from '../../src/node/config-files.ts';
import { nodeLayout, nodeNetwork } from '../../src/node/layout.ts';
import { cidrRange, cidrsOverlap, guardRuleset } from '../../src/node/network.ts';
import type { NodePki } from '../../src/node/pki.ts';
import { storageManifests } from '../../src/node/storage.ts';

const layout = nodeLayout('/var/tmp/node-test');
const network = nodeNetwork(7);
const pair = { cert: '/pki/x.crt', key: '/pki/x.key' };
const pki: NodePki = {
  ca: pair, apiserver: pair, apiserverKubeletClient: pair, kubeletServing: pair, admin: pair, kubelet: pair,
  controllerManager: pair, scheduler: pair, kubeProxy: pair, coredns: pair, serviceAccount: { privateKey: '/pki/sa.key', publicKey: '/pki/sa.pub' },
};

describe('node network', () => {
  test('CIDR ranges and overlaps', () => {
    assert.deepEqual(cidrRange('10.244.7.0/24'), [0x0af40700, 0x0af407ff]);
    assert.equal(cidrsOverlap('10.244.7.0/24', '10.0.0.0/8'), true);
    assert.equal(cidrsOverlap('10.244.7.0/24', '10.244.8.0/24'), false);
    assert.equal(cidrsOverlap('10.96.0.0/24', '10.96.0.1/32'), true);
    assert.equal(cidrsOverlap('192.0.2.0/24', '10.96.0.0/24'), false);
  });

  test('the N-th network is erkN with 10.244.N.1 on it', () => {
    assert.deepEqual(network, { index: 7, bridge: 'erk7', bridgeIp: '10.244.7.1', podCidr: '10.244.7.0/24' });
  });

  test('the guard drops forwarding between the bridge and any other interface, both ways', () => {
    const rules = guardRuleset('erk7');
    assert.match(rules, /iifname "erk7" oifname != "erk7" counter drop/);
    assert.match(rules, /oifname "erk7" iifname != "erk7" counter drop/);
  });
});

describe('node configuration files', () => {
  test('CNI: the bridge without gateway or masquerade, only the Service CIDR routed', () => {
    const conf = JSON.parse(cniConfig(layout, network, '10.96.0.0/24')) as { name: string; plugins: Record<string, unknown>[] };
    const bridge = conf.plugins[0]!;
    assert.equal(conf.name, 'erk7');
    assert.equal(bridge['isGateway'], false);
    assert.equal(bridge['isDefaultGateway'], false);
    assert.equal(bridge['ipMasq'], false);
    const ipam = bridge['ipam'] as { routes: { dst: string }[]; dataDir: string; ranges: { subnet: string }[][] };
    assert.deepEqual(ipam.routes.map((r) => r.dst), ['10.96.0.0/24']);
    assert.equal(ipam.dataDir, layout.cniNetworks);
    assert.equal(ipam.ranges[0]![0]!.subnet, '10.244.7.0/24');
  });

  test('containerd: the settings this machine needs, everything in the node folder', () => {
    const text = containerdConfig(layout, 'example.com/pause:1');
    assert.match(text, /restrict_oom_score_adj = true/);
    assert.match(text, /SystemdCgroup = false/);
    assert.match(text, /sandbox_image = "example.com\/pause:1"/);
    assert.match(text, /bin_dir = "\/usr\/lib\/cni"/);
    assert.match(text, /netns_mounts_under_state_dir = true/);
    for (const line of text.split('\n').filter((l) => /^\s*(root|state|address|Root|conf_dir) = "\//.test(l))) {
      assert.match(line, /"\/var\/tmp\/node-test\//, line);
    }
  });

  test('kubelet: cgroupfs, no kernel DNS resolver, the bridge address, logs in the node folder', () => {
    const config = parse(kubeletConfig(layout, network, pki, 1234)) as Record<string, unknown>;
    assert.equal(config['cgroupDriver'], 'cgroupfs');
    assert.equal(config['failCgroupV1'], false);
    assert.equal(config['resolvConf'], '');
    assert.deepEqual(config['clusterDNS'], ['10.244.7.1']);
    assert.equal(config['address'], '10.244.7.1');
    assert.equal(config['podLogsDir'], layout.podLogs);
    assert.equal(config['makeIPTablesUtilChains'], false);
    assert.deepEqual(config['enforceNodeAllocatable'], []);
  });

  test('kube-proxy: iptables, NodePorts on the bridge only, conntrack sysctls untouched', () => {
    const config = parse(kubeProxyConfig('/k', network, 'n', 1, 2)) as Record<string, unknown>;
    assert.equal(config['mode'], 'iptables');
    assert.deepEqual(config['nodePortAddresses'], ['10.244.7.1/32']);
    assert.equal(config['healthzBindAddress'], '127.0.0.1:1');
    assert.deepEqual(config['conntrack'], { maxPerCore: 0, min: 0, tcpEstablishedTimeout: '0s', tcpCloseWaitTimeout: '0s' });
  });

  test('CoreDNS serves the cluster zone on the bridge and never forwards', () => {
    const text = corefile(network, '/k', 9);
    assert.match(text, /bind 10\.244\.7\.1/);
    assert.match(text, /kubernetes cluster\.local/);
    assert.doesNotMatch(text, /forward|proxy/);
  });
});

describe('node storage', () => {
  test('a default no-provisioner StorageClass and N local PVs pinned to the node', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'node-pvs-'));
    try {
      const docs = parseAllDocuments(storageManifests(dir, 'node-a', { count: 3, size: '1Gi' })).map((d) => d.toJS() as { kind: string; metadata: { name: string; annotations?: Record<string, string> }; spec?: Record<string, unknown> });
      assert.equal(docs.length, 4);
      const sc = docs[0]!;
      assert.equal(sc.kind, 'StorageClass');
      assert.equal(sc.metadata.annotations?.['storageclass.kubernetes.io/is-default-class'], 'true');
      const pvs = docs.slice(1);
      assert.deepEqual(pvs.map((p) => p.metadata.name), ['node-pv-00', 'node-pv-01', 'node-pv-02']);
      assert.equal(pvs[0]!.spec?.['persistentVolumeReclaimPolicy'], 'Retain');
      assert.equal((pvs[2]!.spec?.['local'] as { path: string }).path, path.join(dir, 'node-pv-02'));
      assert.match(JSON.stringify(pvs[0]!.spec?.['nodeAffinity']), /"values":\["node-a"\]/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
