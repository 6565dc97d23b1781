/**
 * The Kubernetes objects of the `kubernetes` member placement (src/controller/placement/kubernetes.ts),
 * built as plain data from an EtcdCluster: one Pod and one PVC per member (the operator controls
 * membership, so no StatefulSet), a headless Service for the peers' DNS names, a client Service, a
 * PodDisruptionBudget that keeps quorum, the fault agents' token Secret and their TLS Secret (a CA made
 * for the cluster and one serving certificate it signed for every member's agent). The member Pod itself
 * is built in ./kubernetes-pod.ts.
 *
 * Ports inside a member's Pod (the Pod has one network namespace, so no two may clash):
 *
 *   | port | who listens                  | on        | what                                             |
 *   | ---- | ---------------------------- | --------- | ------------------------------------------------ |
 *   | 2379 | etcd                         | 0.0.0.0   | client API (the advertised client URL)           |
 *   | 2380 | etcd, or the agent's proxy   | 0.0.0.0   | the advertised peer URL                          |
 *   | 2381 | etcd                         | 0.0.0.0   | metrics, /health, /livez, /readyz (plain HTTP,   |
 *   |      |                              |           | also with TLS: the kubelet's probes use it)      |
 *   | 2382 | etcd (gofail)                | 127.0.0.1 | failpoints, only for the agent (failpoint images)|
 *   | 2383 | etcd                         | 127.0.0.1 | peer listener behind the agent's proxy           |
 *   | 9095 | agent                        | 0.0.0.0   | fault agent API (HTTPS, bearer token)            |
 *
 * Without the agent etcd listens for peers on 2380 itself. With it, every peer connection goes through
 * the proxy (etcd's own peer listener is on loopback only, so no peer can go around it).
 */
import type {
  V1NetworkPolicy,
  V1NetworkPolicyPeer,
  V1OwnerReference,
  V1PersistentVolumeClaim,
  V1Pod,
  V1PodDisruptionBudget,
  V1Secret,
  V1Service,
} from '@kubernetes/client-node';
import { etcdClusterKind, robustnessApiVersion, type EtcdCluster, type MemberLaunch } from '../../domain/index.ts';

export const memberPorts = {
  client: 2379,
  peer: 2380,
  metrics: 2381,
  gofail: 2382,
  /** etcd's own peer listener when the agent's peer proxy holds the peer port. */
  peerBehindProxy: 2383,
  agent: 9095,
} as const;

export const labelKeys = {
  name: 'app.kubernetes.io/name',
  instance: 'app.kubernetes.io/instance',
  managedBy: 'app.kubernetes.io/managed-by',
  cluster: 'etcd.robustness.io/cluster',
  member: 'etcd.robustness.io/member',
} as const;
export const managedBy = 'etcd-robustness-operator';
/** On the Pod and the PVC: the member's MemberLaunch as JSON, so the Pod can be recreated from the PVC. */
export const launchAnnotation = 'etcd.robustness.io/launch';
/**
 * On the PVC: the etcd version (without the leading v) the member starts with, which upgradeMember
 * changes; on the Pod: the version it was built for (its image). Absent on objects made before upgrades
 * existed: the version is then the image's tag, or the cluster's spec.version.
 */
export const versionAnnotation = 'etcd.robustness.io/version';
/**
 * twoNodeWitness, on the PVC (it outlives the Pod): the witness epoch that fenced the member (it never
 * starts again), the failover whose survivor recovery was done on it, and `recovering` while its etcd
 * still starts with --force-new-cluster (./kubernetes-two-node.ts).
 */
export const twoNodeAnnotations = {
  fencedEpoch: 'etcd.robustness.io/fenced-epoch',
  recoveredEpoch: 'etcd.robustness.io/recovered-epoch',
  recovering: 'etcd.robustness.io/recovering',
} as const;
/** The key of the agent token in the `<cluster>-agent-token` Secret. */
export const agentTokenKey = 'token';
/** The keys of the `<cluster>-agent-tls` Secret (a kubernetes.io/tls Secret with the CA beside). */
export const agentTlsKeys = { ca: 'ca.crt', cert: 'tls.crt', key: 'tls.key' } as const;

/** Where things are inside the containers. */
export const memberPaths = {
  dataVolume: '/var/lib/etcd',
  dataDir: '/var/lib/etcd/data',
  clientTls: '/etc/etcd/tls/client',
  peerTls: '/etc/etcd/tls/peer',
  agentToken: '/etc/etcd-robustness/agent',
  agentTls: '/etc/etcd-robustness/agent-tls',
  /** The volume the etcd-launcher init container copies the launcher onto (the etcd image has no shell). */
  launcher: '/etc/etcd-robustness/launcher',
} as const;

/** Where the operator's image (the agent's) carries tools/etcd-launcher (see the Dockerfile). */
export const imageLauncherPath = '/usr/local/bin/etcd-launcher';

export const defaultClusterDomain = 'cluster.local';
/** How long etcd has to stop on a graceful delete (the Pod's terminationGracePeriodSeconds). */
export const memberGracePeriodSeconds = 30;

export const peerServiceName = (cluster: EtcdCluster): string => `${cluster.metadata.name}-peers`;
export const clientServiceName = (cluster: EtcdCluster): string => `${cluster.metadata.name}-client`;
export const disruptionBudgetName = (cluster: EtcdCluster): string => cluster.metadata.name;
export const agentSecretName = (cluster: EtcdCluster): string => `${cluster.metadata.name}-agent-token`;
export const agentTlsSecretName = (cluster: EtcdCluster): string => `${cluster.metadata.name}-agent-tls`;
export const networkPolicyName = (cluster: EtcdCluster): string => `${cluster.metadata.name}-members`;
export const dataClaimName = (member: string): string => `${member}-data`;
export const clusterNamespace = (cluster: EtcdCluster): string => cluster.metadata.namespace ?? 'default';

/** The labels on every object of the cluster. */
export function clusterLabels(cluster: EtcdCluster): Record<string, string> {
  return {
    [labelKeys.name]: 'etcd',
    [labelKeys.instance]: cluster.metadata.name,
    [labelKeys.managedBy]: managedBy,
    [labelKeys.cluster]: cluster.metadata.name,
  };
}

export function memberLabels(cluster: EtcdCluster, member: string): Record<string, string> {
  return { ...clusterLabels(cluster), [labelKeys.member]: member };
}

/** What selects the cluster's member Pods (Services, the PDB). */
export function memberSelector(cluster: EtcdCluster): Record<string, string> {
  return { [labelKeys.name]: 'etcd', [labelKeys.cluster]: cluster.metadata.name };
}

/** The label selector (list calls) for every object this placement made for the cluster. */
export function clusterLabelSelector(cluster: EtcdCluster): string {
  return `${labelKeys.cluster}=${cluster.metadata.name},${labelKeys.managedBy}=${managedBy}`;
}

export function ownerReferences(cluster: EtcdCluster): V1OwnerReference[] {
  const uid = cluster.metadata.uid;
  if (uid === undefined || uid === '') throw new Error(`EtcdCluster ${cluster.metadata.name} has no metadata.uid`);
  return [{ apiVersion: robustnessApiVersion, kind: etcdClusterKind, name: cluster.metadata.name, uid, controller: true, blockOwnerDeletion: true }];
}

/** A majority of the cluster's voting members. */
export const quorum = (replicas: number): number => Math.floor(replicas / 2) + 1;

export interface MemberAddresses {
  clientUrl: string;
  peerUrl: string;
  /** The member's stable DNS name (the Pod's hostname in the headless Service's subdomain). */
  host: string;
}

export function memberAddresses(cluster: EtcdCluster, member: string, clusterDomain: string): MemberAddresses {
  const host = `${member}.${peerServiceName(cluster)}.${clusterNamespace(cluster)}.svc.${clusterDomain}`;
  const clientScheme = cluster.spec.tls?.client ? 'https' : 'http';
  const peerScheme = cluster.spec.tls?.peer ? 'https' : 'http';
  return { host, clientUrl: `${clientScheme}://${host}:${memberPorts.client}`, peerUrl: `${peerScheme}://${host}:${memberPorts.peer}` };
}

/**
 * The client Service's URL: clients that must outlive a member's replacement (a run's spread clients and
 * its watch, against a two-node pair whose members are replaced at each failover) use it.
 */
export function clientServiceUrl(cluster: EtcdCluster, clusterDomain: string): string {
  const scheme = cluster.spec.tls?.client ? 'https' : 'http';
  return `${scheme}://${clientServiceName(cluster)}.${clusterNamespace(cluster)}.svc.${clusterDomain}:${memberPorts.client}`;
}

/** The agent's URL: https, except on a Pod made before the agents served TLS (`tls` false). */
export const agentUrlOf = (host: string, tls = true): string => `${tls ? 'https' : 'http'}://${host}:${memberPorts.agent}`;

/** The names the agents' serving certificate holds: every member's host name in the peer Service's domain. */
export function agentCertificateHosts(cluster: EtcdCluster, clusterDomain: string): string[] {
  return [`*.${peerServiceName(cluster)}.${clusterNamespace(cluster)}.svc.${clusterDomain}`];
}

/** Whether a member's Pod runs its agent with TLS (Pods made before the agents served TLS do not). */
export function podAgentServesTls(pod: V1Pod): boolean {
  const agent = pod.spec?.containers.find((c) => c.name === 'agent');
  return agent?.args?.some((arg) => arg.startsWith('--tls-cert-file=')) ?? false;
}

/**
 * `repository:tag` of etcd `version` (default spec.version); the gofail build is `<repository>-failpoints`
 * (see EtcdClusterSpec.image). spec.image.tag names the image of spec.version only: a member on another
 * version (the middle of a rolling upgrade) runs `v<version>`.
 */
export function etcdImage(cluster: EtcdCluster, version: string = cluster.spec.version): string {
  const { repository, tag, failpoints } = cluster.spec.image;
  const chosen = tag !== undefined && version === cluster.spec.version ? tag : `v${version}`;
  return `${repository}${failpoints ? '-failpoints' : ''}:${chosen}`;
}

/** An etcd release version as a member version may be (`3.6.16`, `3.6.0-rc.1`): it becomes an image tag. */
export const memberVersionPattern = /^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?$/;

/** The version a member's Pod was built for: its annotation, else its etcd image's `v<version>` tag. */
export function podVersion(pod: V1Pod): string | undefined {
  const annotated = pod.metadata?.annotations?.[versionAnnotation];
  if (annotated !== undefined && memberVersionPattern.test(annotated)) return annotated;
  const image = pod.spec?.containers.find((c) => c.name === 'etcd')?.image;
  const tag = image === undefined ? undefined : /:v(\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?)$/.exec(image)?.[1];
  return tag;
}

/** The version recorded on a member's PVC, if valid. */
export function claimVersion(claim: V1PersistentVolumeClaim | undefined): string | undefined {
  const annotated = claim?.metadata?.annotations?.[versionAnnotation];
  return annotated !== undefined && memberVersionPattern.test(annotated) ? annotated : undefined;
}

/** etcd serves /livez and /readyz from 3.5.12 on (3.6 always). */
export function servesLivez(version: string): boolean {
  const match = /^v?(\d+)\.(\d+)\.(\d+)/.exec(version);
  if (!match) return true; // a custom tag: assume a current etcd
  const [major, minor, patch] = [Number(match[1]), Number(match[2]), Number(match[3])];
  if (major !== 3) return major > 3;
  return minor > 5 || (minor === 5 && patch >= 12);
}

// ---- names ----

const dnsLabel = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export class ManifestNameError extends Error {
  override name = 'ManifestNameError';
}

/** Member names become Pod hostnames, cluster names Service names: both must be DNS labels. */
export function checkNames(cluster: EtcdCluster, member?: string): void {
  const name = cluster.metadata.name;
  if (!dnsLabel.test(name) || peerServiceName(cluster).length > 63 || agentSecretName(cluster).length > 253) {
    throw new ManifestNameError(`cluster name "${name}" must be a DNS label of at most ${63 - '-peers'.length} characters`);
  }
  if (member !== undefined && (!dnsLabel.test(member) || member.length > 63)) {
    throw new ManifestNameError(`member name "${member}" must be a DNS label of at most 63 characters`);
  }
}

// ---- cluster objects ----

export function peerService(cluster: EtcdCluster): V1Service {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: peerServiceName(cluster), namespace: clusterNamespace(cluster), labels: clusterLabels(cluster), ownerReferences: ownerReferences(cluster) },
    spec: {
      clusterIP: 'None',
      // Members must find each other by name before they are Ready: a cluster bootstraps that way.
      publishNotReadyAddresses: true,
      selector: memberSelector(cluster),
      ports: [
        { name: 'client', port: memberPorts.client, targetPort: memberPorts.client, protocol: 'TCP' },
        { name: 'peer', port: memberPorts.peer, targetPort: memberPorts.peer, protocol: 'TCP' },
      ],
    },
  };
}

export function clientService(cluster: EtcdCluster): V1Service {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: clientServiceName(cluster), namespace: clusterNamespace(cluster), labels: clusterLabels(cluster), ownerReferences: ownerReferences(cluster) },
    spec: {
      type: 'ClusterIP',
      selector: memberSelector(cluster),
      ports: [{ name: 'client', port: memberPorts.client, targetPort: 'client', protocol: 'TCP' }],
    },
  };
}

export function disruptionBudget(cluster: EtcdCluster): V1PodDisruptionBudget {
  return {
    apiVersion: 'policy/v1',
    kind: 'PodDisruptionBudget',
    metadata: { name: disruptionBudgetName(cluster), namespace: clusterNamespace(cluster), labels: clusterLabels(cluster), ownerReferences: ownerReferences(cluster) },
    spec: {
      minAvailable: quorum(cluster.spec.replicas),
      selector: { matchLabels: memberSelector(cluster) },
      // A member that is not Ready does not count towards quorum anyway: let a drain evict it.
      unhealthyPodEvictionPolicy: 'AlwaysAllow',
    },
  };
}

export function agentSecret(cluster: EtcdCluster, token: string): V1Secret {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'Opaque',
    metadata: { name: agentSecretName(cluster), namespace: clusterNamespace(cluster), labels: clusterLabels(cluster), ownerReferences: ownerReferences(cluster) },
    data: { [agentTokenKey]: Buffer.from(token, 'utf8').toString('base64') },
  };
}

/** The agents' CA and serving certificate (PEM); the CA's key is not kept, so it can sign nothing more. */
export function agentTlsSecret(cluster: EtcdCluster, bundle: { ca: string; cert: string; key: string }): V1Secret {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'kubernetes.io/tls',
    metadata: { name: agentTlsSecretName(cluster), namespace: clusterNamespace(cluster), labels: clusterLabels(cluster), ownerReferences: ownerReferences(cluster) },
    data: {
      [agentTlsKeys.ca]: Buffer.from(bundle.ca, 'utf8').toString('base64'),
      [agentTlsKeys.cert]: Buffer.from(bundle.cert, 'utf8').toString('base64'),
      [agentTlsKeys.key]: Buffer.from(bundle.key, 'utf8').toString('base64'),
    },
  };
}

/** Who may reach the member Pods' agent port: the operator's Pods (their namespace and labels). */
export interface AgentClientPods {
  namespace: string;
  podLabels: Record<string, string>;
  /** The runner Pods' labels (in the same namespace): they inject a run's faults through the agents too. */
  runnerPodLabels?: Record<string, string>;
}

/**
 * The member Pods' ingress (they are isolated once a policy selects them): the client port and etcd's
 * metrics and health port (the kubelet's probes, Prometheus) from anywhere, the peer port only from the
 * cluster's own members, and the agent's port only from the operator's Pods and its runner Pods. Egress is not limited.
 * Enforcement is the CNI plugin's: one that does not implement NetworkPolicy ignores it.
 */
export function memberNetworkPolicy(cluster: EtcdCluster, operator: AgentClientPods): V1NetworkPolicy {
  const members: V1NetworkPolicyPeer = { podSelector: { matchLabels: memberSelector(cluster) } };
  const operatorPods: V1NetworkPolicyPeer = {
    namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': operator.namespace } },
    podSelector: { matchLabels: { ...operator.podLabels } },
  };
  const inOperatorNamespace = { matchLabels: { 'kubernetes.io/metadata.name': operator.namespace } };
  const agentClients = operator.runnerPodLabels === undefined ? [operatorPods] : [operatorPods, { namespaceSelector: inOperatorNamespace, podSelector: { matchLabels: { ...operator.runnerPodLabels } } }];
  const tcp = (port: number): { protocol: string; port: number } => ({ protocol: 'TCP', port });
  // `_from` is the client library's name of the field `from` (it serializes it so).
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name: networkPolicyName(cluster), namespace: clusterNamespace(cluster), labels: clusterLabels(cluster), ownerReferences: ownerReferences(cluster) },
    spec: {
      podSelector: { matchLabels: memberSelector(cluster) },
      policyTypes: ['Ingress'],
      ingress: [
        { ports: [tcp(memberPorts.client), tcp(memberPorts.metrics)] },
        { _from: [members], ports: [tcp(memberPorts.peer)] },
        { _from: agentClients, ports: [tcp(memberPorts.agent)] },
      ],
    },
  };
}

// ---- member objects ----

export function dataClaim(cluster: EtcdCluster, launch: MemberLaunch): V1PersistentVolumeClaim {
  const claim: V1PersistentVolumeClaim = {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: {
      name: dataClaimName(launch.name),
      namespace: clusterNamespace(cluster),
      labels: memberLabels(cluster, launch.name),
      annotations: { [launchAnnotation]: JSON.stringify(withoutVersion(launch)), [versionAnnotation]: launch.version ?? cluster.spec.version },
      ownerReferences: ownerReferences(cluster),
    },
    spec: {
      accessModes: ['ReadWriteOnce'],
      resources: { requests: { storage: cluster.spec.storage.size } },
    },
  };
  if (cluster.spec.storage.storageClassName !== undefined) claim.spec!.storageClassName = cluster.spec.storage.storageClassName;
  return claim;
}

/** The launch without its version (the version has an annotation of its own, which upgrades change). */
export function withoutVersion(launch: MemberLaunch): MemberLaunch {
  return { name: launch.name, initialCluster: launch.initialCluster, initialClusterState: launch.initialClusterState };
}
