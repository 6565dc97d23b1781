/**
 * Where the test node keeps everything: one well-known folder per machine, so that the next start can
 * find and reclaim what a killed predecessor left (its owner record says what it changed).
 */
import path from 'node:path';

/**
 * The machine-wide folder of the test node. Fixed (not under TMPDIR, which differs between shells) so that
 * every process finds a predecessor's leftovers; short, because Unix socket paths live under it.
 */
export const nodeStateRoot = '/var/tmp/etcd-robustness-node';

/** The prefix of the bridge (and CNI network) names the node creates: `erk<N>`. */
export const bridgePrefix = 'erk';

/** The Service CIDR: fixed, since only one node runs at a time. */
export const serviceCidr = '10.96.0.0/24';
export const kubernetesServiceIp = '10.96.0.1';

export interface NodeLayout {
  root: string;
  ownerFile: string;
  pki: string;
  logs: string;
  etcd: string;
  containerdRoot: string;
  containerdState: string;
  containerdConfig: string;
  containerdSocket: string;
  runcRoot: string;
  cniConfDir: string;
  cniNetworks: string;
  kubeletRoot: string;
  kubeletConfig: string;
  podLogs: string;
  volumePluginDir: string;
  kubeProxyConfig: string;
  corefile: string;
  kubeconfigs: string;
  /** The admin kubeconfig (system:masters). */
  adminKubeconfig: string;
  manifests: string;
  pvs: string;
}

export function nodeLayout(root: string = nodeStateRoot): NodeLayout {
  const at = (...parts: string[]): string => path.join(root, ...parts);
  return {
    root,
    ownerFile: at('owner.json'),
    pki: at('pki'),
    logs: at('logs'),
    etcd: at('etcd'),
    containerdRoot: at('containerd', 'root'),
    containerdState: at('containerd', 'state'),
    containerdConfig: at('containerd', 'config.toml'),
    containerdSocket: at('containerd', 'containerd.sock'),
    runcRoot: at('containerd', 'runc'),
    cniConfDir: at('cni', 'net.d'),
    cniNetworks: at('cni', 'networks'),
    kubeletRoot: at('kubelet'),
    kubeletConfig: at('kubelet-config.yaml'),
    podLogs: at('pod-logs'),
    volumePluginDir: at('volume-plugins'),
    kubeProxyConfig: at('kube-proxy-config.yaml'),
    corefile: at('Corefile'),
    kubeconfigs: at('kubeconfigs'),
    adminKubeconfig: at('kubeconfigs', 'admin.kubeconfig'),
    manifests: at('manifests'),
    pvs: at('pvs'),
  };
}

/** The node's addresses, all on its own bridge. */
export interface NodeNetwork {
  /** N of `erk<N>` and 10.244.N.0/24. */
  index: number;
  bridge: string;
  /** The bridge's own address: the node's InternalIP, the API server's and CoreDNS's address. */
  bridgeIp: string;
  /** The Pods' subnet (10.244.N.0/24). */
  podCidr: string;
}

export function nodeNetwork(index: number): NodeNetwork {
  return { index, bridge: `${bridgePrefix}${index}`, bridgeIp: `10.244.${index}.1`, podCidr: `10.244.${index}.0/24` };
}
