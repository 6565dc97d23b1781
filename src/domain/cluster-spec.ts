/**
 * The EtcdCluster custom resource (group etcd.robustness.io, version v1alpha1): an etcd cluster the
 * operator creates, scales and heals. The CRD schema in crds/ is generated from
 * src/controller/api/schema.ts, which the compiler checks against these types.
 */
import type { Condition, ObjectMeta } from './kube.ts';
import type { robustnessApiVersion } from './run-spec.ts';

export const etcdClusterKind = 'EtcdCluster';
export const etcdClusterPlural = 'etcdclusters';

/** 2 only with the twoNodeWitness topology (and it needs exactly 2). */
export const clusterReplicaCounts = [1, 2, 3, 5] as const;
export type ClusterReplicas = (typeof clusterReplicaCounts)[number];

/**
 * standard: an odd number of voters; twoNodeWitness: two voters and a witness outside the pair that
 * arbitrates which survivor may continue (docs/two-node-witness.md).
 */
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

export const witnessKinds = ['lease', 'configMap', 'http'] as const;
export type WitnessKind = (typeof witnessKinds)[number];

/** Where the witness record of a twoNodeWitness cluster lives. */
export interface WitnessSpec {
  /**
   * lease: a coordination.k8s.io Lease; configMap: a ConfigMap (both with resourceVersion preconditions,
   * for etcd clusters that are not the API server's own store); http: the HTTP witness process
   * (`etcd-robustness witness`), for the local runtime.
   */
  kind: WitnessKind;
  /** lease, configMap: the namespace (default: the EtcdCluster's). */
  namespace?: string;
  /** lease, configMap: the object's name (default: `<cluster>-witness`). */
  name?: string;
  /** http: the witness's URL. */
  url?: string;
}

export interface TwoNodeSpec {
  witness: WitnessSpec;
  /** How long the pair may be without quorum before the operator fails over (a duration, e.g. `3s`). */
  failoverGrace: string;
}

export interface EtcdClusterSpec {
  /** etcd version without the leading v, e.g. `3.6.16`. */
  version: string;
  replicas: ClusterReplicas;
  topology: ClusterTopology;
  /** Required with topology twoNodeWitness. */
  twoNode?: TwoNodeSpec;
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

/** One failover, as the status and Events record it. */
export interface FailoverStatus {
  epoch: number;
  survivor: string;
  fenced: string;
  /** RFC 3339: when the operator first saw the pair without quorum. */
  quorumLostAt: string;
  /** RFC 3339: when the witness record for the failover was won. */
  startedAt: string;
  /** RFC 3339: when the survivor served writes alone. */
  writableAt?: string;
}

export interface WitnessStatus {
  /** Where the record lives. */
  witness: string;
  epoch?: number;
  phase?: string;
  members?: string[];
  fenced?: string[];
  lastFailover?: FailoverStatus;
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
  /** twoNodeWitness: the witness record as last read, and the last failover. */
  witness?: WitnessStatus;
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
