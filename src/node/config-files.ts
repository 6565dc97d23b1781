/**
 * The node components' configuration files, as text. Each setting marked "needed" was a hard failure on
 * this kind of machine without it (a VM without CAP_SYS_RESOURCE in the sandbox, cgroup v1, no systemd
 * cgroup driver); the network settings keep every packet on loopback and the node's own bridge.
 */
import { stringify } from 'yaml';
import type { NodeLayout, NodeNetwork } from './layout.ts';
import type { NodePki } from './pki.ts';

/** TOML string literal (containerd's config). */
const toml = (text: string): string => JSON.stringify(text);

export function containerdConfig(layout: NodeLayout, pauseImage: string): string {
  const cri = 'plugins."io.containerd.grpc.v1.cri"';
  return [
    'version = 2',
    `root = ${toml(layout.containerdRoot)}`,
    `state = ${toml(layout.containerdState)}`,
    // Plugins that would create folders outside the node's own (or that this machine cannot use).
    'disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]',
    '[grpc]',
    `  address = ${toml(layout.containerdSocket)}`,
    '[ttrpc]',
    `  address = ${toml(`${layout.containerdSocket}.ttrpc`)}`,
    '[debug]',
    '  address = ""',
    '[metrics]',
    '  address = ""',
    `[${cri}]`,
    `  sandbox_image = ${toml(pauseImage)}`,
    // Needed: the sandbox has no CAP_SYS_RESOURCE; without it runc cannot start any Pod sandbox.
    '  restrict_oom_score_adj = true',
    // The Pods' network namespaces live in the node's folder, not /run/netns.
    '  netns_mounts_under_state_dir = true',
    '  stream_server_address = "127.0.0.1"',
    '  stream_server_port = "0"',
    '  enable_selinux = false',
    `[${cri}.containerd]`,
    '  snapshotter = "overlayfs"',
    '  default_runtime_name = "runc"',
    `[${cri}.containerd.runtimes.runc]`,
    '  runtime_type = "io.containerd.runc.v2"',
    `[${cri}.containerd.runtimes.runc.options]`,
    // Needed: cgroupfs, like the kubelet (no systemd here).
    '  SystemdCgroup = false',
    `  Root = ${toml(layout.runcRoot)}`,
    `[${cri}.cni]`,
    '  bin_dir = "/usr/lib/cni"',
    `  conf_dir = ${toml(layout.cniConfDir)}`,
    '  max_conf_num = 1',
    '',
  ].join('\n');
}

/**
 * The Pods' network: the node's bridge, no gateway and no masquerade (no default route in a Pod, so
 * nothing leaves the machine), and one route: the Service CIDR through the bridge, where kube-proxy's
 * rules turn Service IPs into Pod (or API server) addresses.
 */
export function cniConfig(layout: NodeLayout, network: NodeNetwork, serviceCidr: string): string {
  const prefix = network.podCidr.replace(/\.0\/24$/, '');
  return `${JSON.stringify({
    cniVersion: '1.0.0',
    name: network.bridge,
    plugins: [{
      type: 'bridge',
      bridge: network.bridge,
      isGateway: false,
      isDefaultGateway: false,
      ipMasq: false,
      // A Pod reaching itself through its own Service.
      hairpinMode: true,
      ipam: {
        type: 'host-local',
        dataDir: layout.cniNetworks,
        ranges: [[{ subnet: network.podCidr, rangeStart: `${prefix}.10`, rangeEnd: `${prefix}.254`, gateway: network.bridgeIp }]],
        routes: [{ dst: serviceCidr, gw: network.bridgeIp }],
      },
    }],
  }, null, 2)}\n`;
}

export function kubeletConfig(layout: NodeLayout, network: NodeNetwork, pki: NodePki, healthzPort: number): string {
  return stringify({
    apiVersion: 'kubelet.config.k8s.io/v1beta1',
    kind: 'KubeletConfiguration',
    address: network.bridgeIp,
    port: 10250,
    readOnlyPort: 0,
    healthzBindAddress: '127.0.0.1',
    healthzPort,
    tlsCertFile: pki.kubeletServing.cert,
    tlsPrivateKeyFile: pki.kubeletServing.key,
    authentication: { anonymous: { enabled: false }, webhook: { enabled: true }, x509: { clientCAFile: pki.ca.cert } },
    authorization: { mode: 'Webhook' },
    containerRuntimeEndpoint: `unix://${layout.containerdSocket}`,
    // Needed on this machine: cgroup v1 with the cgroupfs driver, swap accounting off.
    cgroupDriver: 'cgroupfs',
    failSwapOn: false,
    failCgroupV1: false,
    // Needed: the node-allocatable cgroups and the eviction manager's default thresholds fail here.
    enforceNodeAllocatable: [],
    evictionHard: {},
    // Needed: the kubelet's own iptables chains are not wanted (kube-proxy owns Service rules).
    makeIPTablesUtilChains: false,
    // Pods ask the node's CoreDNS (on the bridge), which answers cluster.local only; no machine resolver.
    clusterDNS: [network.bridgeIp],
    clusterDomain: 'cluster.local',
    resolvConf: '',
    podLogsDir: layout.podLogs,
    volumePluginDir: layout.volumePluginDir,
    // Imported images are never pulled again: image garbage collection must not delete them.
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
    serializeImagePulls: false,
    maxPods: 110,
    registerNode: true,
    // Faster status for tests; the defaults are 10 s and 5 m.
    nodeStatusUpdateFrequency: '4s',
    nodeStatusReportFrequency: '30s',
    syncFrequency: '10s',
    fileCheckFrequency: '10s',
    shutdownGracePeriod: '0s',
  });
}

export function kubeProxyConfig(kubeconfig: string, network: NodeNetwork, nodeName: string, healthzPort: number, metricsPort: number): string {
  return stringify({
    apiVersion: 'kubeproxy.config.k8s.io/v1alpha1',
    kind: 'KubeProxyConfiguration',
    clientConnection: { kubeconfig },
    mode: 'iptables',
    hostnameOverride: nodeName,
    clusterCIDR: network.podCidr,
    detectLocalMode: 'ClusterCIDR',
    // NodePorts only on the bridge's address; nothing on the machine's own interfaces or on 127.0.0.1
    // (which would need route_localnet).
    nodePortAddresses: [`${network.bridgeIp}/32`],
    iptables: { localhostNodePorts: false, masqueradeAll: false },
    healthzBindAddress: `127.0.0.1:${healthzPort}`,
    metricsBindAddress: `127.0.0.1:${metricsPort}`,
    // Zero: leave the machine's conntrack sysctls alone.
    conntrack: { maxPerCore: 0, min: 0, tcpEstablishedTimeout: '0s', tcpCloseWaitTimeout: '0s' },
  });
}

/**
 * CoreDNS on the bridge: cluster.local and reverse lookups from the API, nothing else. There is no
 * `forward`: a name outside the cluster is refused instead of being sent to the machine's resolver.
 */
export function corefile(network: NodeNetwork, kubeconfig: string, readyPort: number): string {
  return [
    `cluster.local:53 in-addr.arpa:53 ip6.arpa:53 {`,
    `    bind ${network.bridgeIp}`,
    '    errors',
    `    ready 127.0.0.1:${readyPort}`,
    '    kubernetes cluster.local in-addr.arpa ip6.arpa {',
    `        kubeconfig ${kubeconfig}`,
    '        pods insecure',
    '        ttl 5',
    '    }',
    '    cache 5',
    '}',
    '',
  ].join('\n');
}
