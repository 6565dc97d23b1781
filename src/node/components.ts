/** The command lines of the node's processes. Pure: what they are started with, not how. */
import type { NodeLayout, NodeNetwork } from './layout.ts';
import type { NodePki } from './pki.ts';

export const nodeName = 'etcd-robustness-node';
export const clusterDomain = 'cluster.local';

/** The port the API server listens on, on the bridge's address (a free address: the bridge is the node's own). */
const apiserverPort = 6443;

/** The API server's URL: the bridge's address and apiserverPort. */
export function apiserverUrl(network: NodeNetwork): string {
  return `https://${network.bridgeIp}:${apiserverPort}`;
}

export interface ComponentPorts {
  kubeletHealthz: number;
  controllerManager: number;
  scheduler: number;
  proxyHealthz: number;
  proxyMetrics: number;
  corednsReady: number;
}

export interface KubeconfigFiles {
  kubelet: string;
  controllerManager: string;
  scheduler: string;
  kubeProxy: string;
  coredns: string;
}

export function apiserverArgs(o: { layout: NodeLayout; network: NodeNetwork; pki: NodePki; etcdEndpoints: string[]; serviceCidr: string }): string[] {
  const { pki } = o;
  return [
    `--etcd-servers=${o.etcdEndpoints.join(',')}`,
    // On the bridge: Pods reach it through the kubernetes Service (10.96.0.1), whose endpoint the default
    // reconciler keeps at this address.
    `--bind-address=${o.network.bridgeIp}`,
    `--advertise-address=${o.network.bridgeIp}`,
    `--secure-port=${apiserverPort}`,
    `--cert-dir=${o.layout.pki}/apiserver-generated`,
    `--tls-cert-file=${pki.apiserver.cert}`,
    `--tls-private-key-file=${pki.apiserver.key}`,
    `--client-ca-file=${pki.ca.cert}`,
    `--service-cluster-ip-range=${o.serviceCidr}`,
    `--service-account-issuer=https://kubernetes.default.svc.${clusterDomain}`,
    `--service-account-key-file=${pki.serviceAccount.publicKey}`,
    `--service-account-signing-key-file=${pki.serviceAccount.privateKey}`,
    '--authorization-mode=Node,RBAC',
    '--enable-admission-plugins=NodeRestriction',
    '--allow-privileged=true',
    `--kubelet-client-certificate=${pki.apiserverKubeletClient.cert}`,
    `--kubelet-client-key=${pki.apiserverKubeletClient.key}`,
    `--kubelet-certificate-authority=${pki.ca.cert}`,
    // Needed: otherwise the API server looks the node's name up in the machine's DNS resolver.
    '--kubelet-preferred-address-types=InternalIP',
    '--profiling=false',
  ];
}

/** What the controller-manager and the scheduler share: one identity for everything, serving on loopback only. */
function controlPlaneArgs(kubeconfig: string, port: number): string[] {
  return [`--kubeconfig=${kubeconfig}`, `--authentication-kubeconfig=${kubeconfig}`, `--authorization-kubeconfig=${kubeconfig}`, '--bind-address=127.0.0.1', `--secure-port=${port}`, '--leader-elect=false', '--profiling=false'];
}

export function controllerManagerArgs(o: { layout: NodeLayout; pki: NodePki; kubeconfig: string; port: number; serviceCidr: string; podCidr: string }): string[] {
  return [
    ...controlPlaneArgs(o.kubeconfig, o.port),
    `--service-account-private-key-file=${o.pki.serviceAccount.privateKey}`,
    `--root-ca-file=${o.pki.ca.cert}`,
    `--cluster-signing-cert-file=${o.pki.ca.cert}`,
    `--cluster-signing-key-file=${o.pki.ca.key}`,
    '--use-service-account-credentials=true',
    `--service-cluster-ip-range=${o.serviceCidr}`,
    `--cluster-cidr=${o.podCidr}`,
    '--cluster-name=etcd-robustness-node',
    // Its default (/usr/libexec/kubernetes/...) would be created on the machine.
    `--flex-volume-plugin-dir=${o.layout.volumePluginDir}`,
  ];
}

export function schedulerArgs(o: { kubeconfig: string; port: number }): string[] {
  return controlPlaneArgs(o.kubeconfig, o.port);
}

export function kubeletArgs(o: { layout: NodeLayout; network: NodeNetwork; kubeconfig: string }): string[] {
  return [
    `--config=${o.layout.kubeletConfig}`,
    `--kubeconfig=${o.kubeconfig}`,
    `--root-dir=${o.layout.kubeletRoot}`,
    `--cert-dir=${o.layout.kubeletRoot}/pki`,
    `--hostname-override=${nodeName}`,
    // Needed: an InternalIP that is not loopback, or `kubectl logs/exec` find no address for the node.
    `--node-ip=${o.network.bridgeIp}`,
  ];
}

export function containerdArgs(layout: NodeLayout): string[] {
  return ['--config', layout.containerdConfig];
}

export function kubeProxyArgs(layout: NodeLayout): string[] {
  return [`--config=${layout.kubeProxyConfig}`];
}

export function corednsArgs(layout: NodeLayout): string[] {
  return ['-conf', layout.corefile];
}

/**
 * containerd's environment: a proxy on a closed loopback port, so that an image the node does not have is
 * never pulled from the internet (containerd's CRI falls back to the real registry even with mirrors).
 */
export function containerdEnv(): NodeJS.ProcessEnv {
  const env = systemEnv();
  for (const name of ['HTTP_PROXY', 'HTTPS_PROXY', 'http_proxy', 'https_proxy']) env[name] = 'http://127.0.0.1:9';
  env['NO_PROXY'] = '';
  env['no_proxy'] = '';
  return env;
}

/** The environment of the node's processes: the caller's, with the system folders (runc, mount, iptables) on PATH. */
export function systemEnv(): NodeJS.ProcessEnv {
  const dropped = new Set(['HTTP_PROXY', 'HTTPS_PROXY', 'http_proxy', 'https_proxy', 'NO_PROXY', 'no_proxy', 'KUBECONFIG']);
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !dropped.has(name)));
  env['PATH'] = [...(process.env['PATH'] ?? '').split(':').filter((p) => p !== ''), '/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'].join(':');
  return env;
}
