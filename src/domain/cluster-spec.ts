/**
 * The EtcdCluster custom resource (group etcd.robustness.io, version v1alpha1): an etcd cluster the
 * operator creates, scales and heals. The CRD schema in crds/ is generated from
 * src/controller/api/schema.ts, which the compiler checks against these types.
 */
import type { Condition, ObjectMeta } from './kube.ts';
import type { robustnessApiVersion } from './run-spec.ts';

export const etcdClusterKind = 'EtcdCluster';
export const etcdClusterPlural = 'etcdclusters';

export const clusterReplicaCounts = [1, 3, 5] as const;
export type ClusterReplicas = (typeof clusterReplicaCounts)[number];

/** `twoNodeWitness` is reserved for the witness topology; the API server refuses it until it exists. */
export const clusterTopologies = ['standard', 'twoNodeWitness'] as const;
export type ClusterTopology = (typeof clusterTopologies)[number];

export const clusterPhases = ['Pending', 'Creating', 'Running', 'Scaling', 'Degraded', 'Deleting', 'Failed'] as const;
export type ClusterPhase = (typeof clusterPhases)[number];

export const memberRoles = ['leader', 'follower', 'learner', 'unknown'] as const;
export type MemberRole = (typeof memberRoles)[number];

export interface ResourceRequirements {
  requests?: Record<string, string>;
  limits?: Record<string, string>;
}

export interface EtcdClusterSpec {
  /** etcd version without the leading v, e.g. `3.6.16`. */
  version: string;
  replicas: ClusterReplicas;
  topology: ClusterTopology;
  storage: {
    /** A Kubernetes quantity, e.g. `1Gi`. */
    size: string;
    /** Absent: the cluster's default StorageClass. */
    storageClassName?: string;
  };
  resources?: ResourceRequirements;
  image: {
    repository: string;
    /** Absent: `v<version>`. */
    tag?: string;
    /** Use the gofail-enabled build (`<repository>-failpoints`), needed by failpoint faults. */
    failpoints: boolean;
    pullPolicy: 'Always' | 'IfNotPresent' | 'Never';
  };
  agent: {
    /** Run the fault agent beside each member (a sidecar sharing the pod's process namespace). */
    enabled: boolean;
    image?: string;
  };
  tls?: {
    /** A kubernetes.io/tls Secret (tls.crt, tls.key, ca.crt) for the client listener. */
    client?: { secretName: string };
    /** A kubernetes.io/tls Secret for the peer listener. */
    peer?: { secretName: string };
  };
  /** How long a member may be unreachable or failing before it is replaced (a duration, e.g. `5m`). */
  memberGracePeriod: string;
  /** Reserved for upgrades gated on RobustnessRuns (its own issue): accepted and not acted on yet. */
  upgradeGate?: Record<string, unknown>;
}

export interface MemberStatus {
  name: string;
  /** etcd's member id in hex; absent before the member joined. */
  id?: string;
  role: MemberRole;
  version?: string;
  healthy: boolean;
  revision?: number;
  clientUrl?: string;
  peerUrl?: string;
}

export interface EtcdClusterStatus {
  phase?: ClusterPhase;
  observedGeneration?: number;
  members?: MemberStatus[];
  readyMembers?: number;
  /** etcd's cluster id in hex. */
  clusterId?: string;
  leader?: string;
  endpoints?: string[];
  conditions?: Condition[];
}

export interface EtcdCluster {
  apiVersion: typeof robustnessApiVersion;
  kind: typeof etcdClusterKind;
  metadata: ObjectMeta;
  spec: EtcdClusterSpec;
  status?: EtcdClusterStatus;
}

export const clusterConditionTypes = ['Available', 'Progressing', 'Degraded'] as const;
export type ClusterConditionType = (typeof clusterConditionTypes)[number];
