/**
 * The Kubernetes objects of the `kubernetes` member placement (src/controller/placement/kubernetes.ts),
 * built as plain data from an EtcdCluster: one Pod and one PVC per member (the operator controls
 * membership, so no StatefulSet), a headless Service for the peers' DNS names, a client Service, a
 * PodDisruptionBudget that keeps quorum, the fault agents' token Secret and their TLS Secret (a CA made
 * for the cluster and one serving certificate it signed for every member's agent).
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
  V1Container,
  V1NetworkPolicy,
  V1NetworkPolicyPeer,
  V1OwnerReference,
  V1PersistentVolumeClaim,
  V1Pod,
  V1PodDisruptionBudget,
  V1Probe,
  V1Secret,
  V1Service,
  V1Volume,
  V1VolumeMount,
} from '@kubernetes/client-node';
import { etcdClusterKind, robustnessApiVersion, type EtcdCluster, type MemberLaunch } from '../../domain/index.ts';
import { holdFile } from '../../faults/index.ts';

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
}

/**
 * The member Pods' ingress (they are isolated once a policy selects them): the client port and etcd's
 * metrics and health port (the kubelet's probes, Prometheus) from anywhere, the peer port only from the
 * cluster's own members, and the agent's port only from the operator's Pods. Egress is not limited.
 * Enforcement is the CNI plugin's: one that does not implement NetworkPolicy ignores it.
 */
export function memberNetworkPolicy(cluster: EtcdCluster, operator: AgentClientPods): V1NetworkPolicy {
  const members: V1NetworkPolicyPeer = { podSelector: { matchLabels: memberSelector(cluster) } };
  const operatorPods: V1NetworkPolicyPeer = {
    namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': operator.namespace } },
    podSelector: { matchLabels: { ...operator.podLabels } },
  };
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
        { _from: [operatorPods], ports: [tcp(memberPorts.agent)] },
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

function tlsFlags(cluster: EtcdCluster): string[] {
  const flags: string[] = [];
  if (cluster.spec.tls?.client) {
    // Server TLS only: clients need the CA, not a certificate of their own. So no --trusted-ca-file:
    // with it etcd requires and verifies a client certificate from every client (its TLSInfo.ServerConfig),
    // and the operator, whose clients present none, could not talk to the cluster.
    flags.push(`--cert-file=${memberPaths.clientTls}/tls.crt`, `--key-file=${memberPaths.clientTls}/tls.key`);
  }
  if (cluster.spec.tls?.peer) {
    flags.push(
      `--peer-cert-file=${memberPaths.peerTls}/tls.crt`,
      `--peer-key-file=${memberPaths.peerTls}/tls.key`,
      `--peer-trusted-ca-file=${memberPaths.peerTls}/ca.crt`,
      '--peer-client-cert-auth=true',
    );
  }
  return flags;
}

/** etcd's command line for a member. */
export function etcdArgs(cluster: EtcdCluster, launch: MemberLaunch, clusterDomain: string): string[] {
  const addresses = memberAddresses(cluster, launch.name, clusterDomain);
  const clientScheme = cluster.spec.tls?.client ? 'https' : 'http';
  const peerScheme = cluster.spec.tls?.peer ? 'https' : 'http';
  const listenPeer = cluster.spec.agent.enabled ? `${peerScheme}://127.0.0.1:${memberPorts.peerBehindProxy}` : `${peerScheme}://0.0.0.0:${memberPorts.peer}`;
  return [
    `--name=${launch.name}`,
    `--data-dir=${memberPaths.dataDir}`,
    `--listen-client-urls=${clientScheme}://0.0.0.0:${memberPorts.client}`,
    `--advertise-client-urls=${addresses.clientUrl}`,
    `--listen-peer-urls=${listenPeer}`,
    `--initial-advertise-peer-urls=${addresses.peerUrl}`,
    `--initial-cluster=${launch.initialCluster}`,
    `--initial-cluster-state=${launch.initialClusterState}`,
    `--initial-cluster-token=${cluster.metadata.uid ?? cluster.metadata.name}`,
    `--listen-metrics-urls=http://0.0.0.0:${memberPorts.metrics}`,
    ...tlsFlags(cluster),
    ...(cluster.spec.image.failpoints ? faultReachFlags(launch.version ?? cluster.spec.version) : []),
  ];
}

/**
 * With the failpoint image (a test cluster), the flags that let faults reach etcd's rarer code paths, as
 * the local runtime passes them (src/local/runtime.ts faultReachFlags) and etcd's robustness suite sets
 * them: compaction commits in batches of 10 (the compaction failpoints fire on small stores) and a
 * snapshot every 200 entries with a 50-entry catch-up log (a lagging member gets a snapshot, so the
 * snapshot failpoints fire). A Pod cannot ask its binary's --help first: the names follow the version
 * (3.6 renamed the experimental flags; 3.5 has no catch-up setting).
 */
export function faultReachFlags(version: string): string[] {
  const match = /^v?(\d+)\.(\d+)\./.exec(version);
  const atLeast36 = match === null || Number(match[1]) > 3 || (Number(match[1]) === 3 && Number(match[2]) >= 6);
  return atLeast36
    ? ['--compaction-batch-limit=10', '--snapshot-count=200', '--snapshot-catchup-entries=50']
    : ['--experimental-compaction-batch-limit=10', '--snapshot-count=200'];
}

function httpProbe(path: string, periodSeconds: number, failureThreshold: number): V1Probe {
  return { httpGet: { path, port: memberPorts.metrics, scheme: 'HTTP' }, periodSeconds, timeoutSeconds: 5, failureThreshold };
}

/**
 * etcd's command. With the fault agent, etcd starts through tools/etcd-launcher, which waits while the
 * crash fault's hold file (beside the data dir, src/faults/hold.ts) holds and then execs etcd: the
 * kubelet restarts a killed etcd container at once, and the launcher keeps it down for the fault's
 * duration, as a local supervisor does.
 */
function etcdCommand(cluster: EtcdCluster): string[] {
  if (!cluster.spec.agent.enabled) return ['etcd'];
  return [`${memberPaths.launcher}/etcd-launcher`, `--hold-file=${holdFile(memberPaths.dataDir)}`, '--', 'etcd'];
}

function etcdContainer(cluster: EtcdCluster, launch: MemberLaunch, clusterDomain: string): V1Container {
  const mounts: V1VolumeMount[] = [{ name: 'data', mountPath: memberPaths.dataVolume }];
  if (cluster.spec.agent.enabled) mounts.push({ name: 'launcher', mountPath: memberPaths.launcher, readOnly: true });
  if (cluster.spec.tls?.client) mounts.push({ name: 'client-tls', mountPath: memberPaths.clientTls, readOnly: true });
  if (cluster.spec.tls?.peer) mounts.push({ name: 'peer-tls', mountPath: memberPaths.peerTls, readOnly: true });
  const ports = [
    { name: 'client', containerPort: memberPorts.client, protocol: 'TCP' },
    ...(cluster.spec.agent.enabled ? [] : [{ name: 'peer', containerPort: memberPorts.peer, protocol: 'TCP' }]),
    { name: 'metrics', containerPort: memberPorts.metrics, protocol: 'TCP' },
  ];
  const version = launch.version ?? cluster.spec.version;
  const container: V1Container = {
    name: 'etcd',
    image: etcdImage(cluster, version),
    imagePullPolicy: cluster.spec.image.pullPolicy,
    command: etcdCommand(cluster),
    args: etcdArgs(cluster, launch, clusterDomain),
    ports,
    volumeMounts: mounts,
    // Ready when etcd has a leader and commits (the client Service then sends clients to it).
    readinessProbe: httpProbe('/health', 5, 3),
    securityContext: restrictedContainer(),
  };
  if (servesLivez(version)) {
    // /livez fails only when etcd itself is stuck. Generous: a paused member (the pause fault) must
    // outlive a fault of a minute or so without the kubelet restarting it.
    container.startupProbe = httpProbe('/livez', 10, 30);
    container.livenessProbe = httpProbe('/livez', 10, 8);
  }
  if (cluster.spec.resources) container.resources = { ...cluster.spec.resources };
  if (cluster.spec.image.failpoints) container.env = [{ name: 'GOFAIL_HTTP', value: `127.0.0.1:${memberPorts.gofail}` }];
  return container;
}

/** The fault agent's command line (src/commands/agent.ts). */
export function agentArgs(cluster: EtcdCluster, member: string): string[] {
  const args = [
    'agent',
    `--member=${member}`,
    `--data-dir=${memberPaths.dataDir}`,
    `--listen=0.0.0.0:${memberPorts.agent}`,
    `--token-file=${memberPaths.agentToken}/${agentTokenKey}`,
    `--tls-cert-file=${memberPaths.agentTls}/${agentTlsKeys.cert}`,
    `--tls-key-file=${memberPaths.agentTls}/${agentTlsKeys.key}`,
    `--peer-listen=0.0.0.0:${memberPorts.peer}`,
    `--peer-target=127.0.0.1:${memberPorts.peerBehindProxy}`,
  ];
  if (cluster.spec.image.failpoints) args.push(`--gofail-url=http://127.0.0.1:${memberPorts.gofail}`);
  return args;
}

function agentContainer(cluster: EtcdCluster, member: string, operatorImage: string): V1Container {
  return {
    name: 'agent',
    image: cluster.spec.agent.image ?? operatorImage,
    imagePullPolicy: 'IfNotPresent',
    // No command: the image's entrypoint runs the CLI (`node /app/dist/cli.js`, see the Dockerfile), and
    // the arguments replace its default `operator`.
    args: agentArgs(cluster, member),
    ports: [
      { name: 'peer', containerPort: memberPorts.peer, protocol: 'TCP' },
      { name: 'agent', containerPort: memberPorts.agent, protocol: 'TCP' },
    ],
    volumeMounts: [
      // The data volume: the agent finds etcd by its data dir and puts disk-pressure ballast beside it.
      { name: 'data', mountPath: memberPaths.dataVolume },
      { name: 'agent-token', mountPath: memberPaths.agentToken, readOnly: true },
      { name: 'agent-tls', mountPath: memberPaths.agentTls, readOnly: true },
      { name: 'agent-tmp', mountPath: '/tmp' },
    ],
    readinessProbe: { tcpSocket: { port: memberPorts.agent }, periodSeconds: 5, failureThreshold: 3 },
    // The same uid as etcd (the Pod's runAsUser) in the Pod's shared process namespace: signalling etcd
    // (kill, pause) and reading its /proc entries (cmdline, environ, cwd) need no capability then. The
    // peer proxy is userspace, so no NET_ADMIN either.
    securityContext: restrictedContainer(),
    resources: { requests: { cpu: '10m', memory: '64Mi' }, limits: { memory: '256Mi' } },
  };
}

/** Copies the launcher from the agent's image onto the Pod's launcher volume before etcd starts. */
function launcherInstaller(cluster: EtcdCluster, operatorImage: string): V1Container {
  return {
    name: 'etcd-launcher',
    image: cluster.spec.agent.image ?? operatorImage,
    imagePullPolicy: 'IfNotPresent',
    command: [imageLauncherPath, 'install', `${memberPaths.launcher}/etcd-launcher`],
    volumeMounts: [{ name: 'launcher', mountPath: memberPaths.launcher }],
    securityContext: restrictedContainer(),
    resources: { requests: { cpu: '10m', memory: '16Mi' }, limits: { memory: '64Mi' } },
  };
}

/** The member Pods' user: the distroless `nonroot` uid, which the project's etcd and operator images use. */
export const memberUid = 65532;

/** Pod Security `restricted` for one container: nothing added, everything dropped, a read-only root. */
function restrictedContainer(): NonNullable<V1Container['securityContext']> {
  return {
    runAsNonRoot: true,
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    capabilities: { drop: ['ALL'] },
    seccompProfile: { type: 'RuntimeDefault' },
  };
}

export interface MemberPodOptions {
  clusterDomain: string;
  operatorImage: string;
}

/** A member's Pod; its etcd image (and probes) are those of `launch.version`, else spec.version. */
export function memberPod(cluster: EtcdCluster, launch: MemberLaunch, options: MemberPodOptions): V1Pod {
  const agent = cluster.spec.agent.enabled;
  const volumes: V1Volume[] = [{ name: 'data', persistentVolumeClaim: { claimName: dataClaimName(launch.name) } }];
  if (cluster.spec.tls?.client) volumes.push({ name: 'client-tls', secret: { secretName: cluster.spec.tls.client.secretName, defaultMode: 0o440 } });
  if (cluster.spec.tls?.peer) volumes.push({ name: 'peer-tls', secret: { secretName: cluster.spec.tls.peer.secretName, defaultMode: 0o440 } });
  if (agent) {
    volumes.push({ name: 'agent-token', secret: { secretName: agentSecretName(cluster), defaultMode: 0o440 } });
    volumes.push({ name: 'agent-tls', secret: { secretName: agentTlsSecretName(cluster), defaultMode: 0o440 } });
    volumes.push({ name: 'agent-tmp', emptyDir: { sizeLimit: '64Mi' } });
    volumes.push({ name: 'launcher', emptyDir: { sizeLimit: '32Mi' } });
  }
  const containers = [etcdContainer(cluster, launch, options.clusterDomain)];
  if (agent) containers.push(agentContainer(cluster, launch.name, options.operatorImage));
  const pod: V1Pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: launch.name,
      namespace: clusterNamespace(cluster),
      labels: memberLabels(cluster, launch.name),
      annotations: { [launchAnnotation]: JSON.stringify(withoutVersion(launch)), [versionAnnotation]: launch.version ?? cluster.spec.version },
      ownerReferences: ownerReferences(cluster),
    },
    spec: {
      hostname: launch.name,
      subdomain: peerServiceName(cluster),
      restartPolicy: 'Always',
      // etcd reads ETCD_* variables as flags: no Service environment variables in its container.
      enableServiceLinks: false,
      terminationGracePeriodSeconds: memberGracePeriodSeconds,
      // Admitted under Pod Security `restricted`, whatever user the etcd image declares (upstream's is
      // root): the volumes are group-owned by fsGroup, so the data dir and the secrets are readable.
      securityContext: {
        runAsNonRoot: true,
        runAsUser: memberUid,
        runAsGroup: memberUid,
        fsGroup: memberUid,
        seccompProfile: { type: 'RuntimeDefault' },
      },
      affinity: {
        podAntiAffinity: {
          preferredDuringSchedulingIgnoredDuringExecution: [
            { weight: 100, podAffinityTerm: { topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: memberSelector(cluster) } } },
          ],
        },
      },
      containers,
      volumes,
    },
  };
  if (agent) {
    pod.spec!.shareProcessNamespace = true;
    pod.spec!.initContainers = [launcherInstaller(cluster, options.operatorImage)];
  }
  return pod;
}

/** The launch without its version (the version has an annotation of its own, which upgrades change). */
function withoutVersion(launch: MemberLaunch): MemberLaunch {
  return { name: launch.name, initialCluster: launch.initialCluster, initialClusterState: launch.initialClusterState };
}

/** Reads a launch annotation back (without a version); undefined when absent or not a launch. */
export function parseLaunch(text: string | undefined): MemberLaunch | undefined {
  if (text === undefined) return undefined;
  try {
    const value = JSON.parse(text) as Partial<MemberLaunch> | null;
    if (
      value !== null &&
      typeof value.name === 'string' &&
      typeof value.initialCluster === 'string' &&
      (value.initialClusterState === 'new' || value.initialClusterState === 'existing')
    ) {
      return { name: value.name, initialCluster: value.initialCluster, initialClusterState: value.initialClusterState };
    }
  } catch {
    // not JSON
  }
  return undefined;
}
