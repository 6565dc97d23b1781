/**
 * A member's Pod, as plain data from an EtcdCluster and the member's launch: the etcd container (its
 * command line, probes and mounts; with the fault agent it starts etcd through tools/etcd-launcher, which
 * honours the crash fault's hold), the agent sidecar, and the init container that installs the launcher.
 * The cluster's other objects, names, labels and ports are in ./kubernetes-manifests.ts.
 */
import type { V1Container, V1Pod, V1Probe, V1Volume, V1VolumeMount } from '@kubernetes/client-node';
import type { EtcdCluster, MemberLaunch } from '../../domain/index.ts';
import { forceFile, holdFile, recoveryHoldFile } from '../../faults/index.ts';
import {
  agentSecretName,
  agentTlsKeys,
  agentTlsSecretName,
  agentTokenKey,
  clusterNamespace,
  dataClaimName,
  etcdImage,
  imageLauncherPath,
  launchAnnotation,
  memberAddresses,
  memberGracePeriodSeconds,
  memberLabels,
  memberPaths,
  memberPorts,
  memberSelector,
  ownerReferences,
  peerServiceName,
  servesLivez,
  versionAnnotation,
  withoutVersion,
} from './kubernetes-manifests.ts';

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
  const launcher = [`${memberPaths.launcher}/etcd-launcher`, `--hold-file=${holdFile(memberPaths.dataDir)}`];
  // twoNodeWitness: the agent's survivor recovery holds etcd down while it commits the log, and its force
  // file makes each start a --force-new-cluster one until the failover is over (./kubernetes-two-node.ts).
  if (cluster.spec.topology === 'twoNodeWitness') launcher.push(`--hold-file=${recoveryHoldFile(memberPaths.dataDir)}`, `--force-file=${forceFile(memberPaths.dataDir)}`);
  return [...launcher, '--', 'etcd'];
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

/** The fault agent's image, which carries the launcher too: spec.agent.image, else the operator's own. */
function agentImage(cluster: EtcdCluster, operatorImage: string): string {
  return cluster.spec.agent.image ?? operatorImage;
}

function agentContainer(cluster: EtcdCluster, member: string, operatorImage: string): V1Container {
  return {
    name: 'agent',
    image: agentImage(cluster, operatorImage),
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
    image: agentImage(cluster, operatorImage),
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
