import type { EtcdClientTls } from './etcd-tls.ts';

/**
 * Where etcd members run: local processes today, Kubernetes pods later. The run engine, the faults and
 * the controller drive members only through this interface.
 */
export interface RuntimeMember {
  name: string;
  /** Client URL. */
  endpoint: string;
  /** The peer URL the cluster knows the member by. */
  peerUrl?: string;
  running: boolean;
  /** gofail's HTTP API for this member, when the binary has failpoints and the runtime exposes them. */
  failpointUrl?: string;
  /** The member's fault agent (HTTP API of src/faults/agent.ts), when the runtime runs one. */
  agentUrl?: string;
  /** The CA (PEM) that signed the agent's serving certificate, when agentUrl is https. */
  agentCa?: string;
}

export interface MemberRuntime {
  /** The cluster's name (a label on metrics and reports). */
  readonly clusterName: string;
  /** True when this runtime created the cluster (so a run may own it: exclusive mode). */
  readonly created: boolean;
  /**
   * A client endpoint that follows membership changes (a Kubernetes Service, the local placement's
   * service proxy), when the runtime has one: clients that must outlive a member's replacement use it.
   */
  readonly serviceEndpoint?: string;
  /**
   * The CA (and client certificate) of a cluster whose client URLs are https: every etcd client of a
   * run or a fault uses it. Absent: plain http.
   */
  readonly clientTls?: EtcdClientTls;
  /** Starts the cluster's members and waits until they serve. */
  create(): Promise<void>;
  endpoints(): string[];
  members(): RuntimeMember[];
  /**
   * How many members the cluster should have (an operator's EtcdCluster: spec.replicas), when the runtime
   * knows: recovery after a fault waits until that many are listed and healthy, so the next fault does not
   * find a two-node pair still waiting for the replacement of a fenced member.
   */
  readonly expectedMembers?: number;
  /**
   * The members as the runtime sees them now, where members() may serve a list a few seconds old (a
   * Kubernetes one is cached): asked when an agent stops answering, to tell a member gone (fenced by a
   * two-node failover, its Pod deleted) from one that is only unreachable.
   */
  membersNow?(): Promise<RuntimeMember[]>;
  /** Graceful stop (SIGTERM), kill (SIGKILL) and restart (with its data) of one member. */
  stop(member: string): Promise<void>;
  kill(member: string): Promise<void>;
  restart(member: string): Promise<void>;
  /**
   * Wipes a member's data and starts it as a new member of the existing cluster (it must have been
   * removed and added back through the etcd API first); `initialCluster` is `name=peerURL,...`.
   */
  rejoin(member: string, initialCluster: string): Promise<void>;
  /** Stops every member and frees what the runtime created. */
  close(): Promise<void>;
}

/** A member as the place it runs in reports it (a Pod, a local process): observed, not planned. */
export interface PlacedMember {
  name: string;
  clientUrl: string;
  peerUrl: string;
  /**
   * starting: created, not serving yet; running: its process/container runs (serving is etcd's to say);
   * failed: exited and not coming back by itself, or crash-looping; dataLost: its data is gone (a wiped
   * data dir, a lost PVC), so it must never start again under its old identity.
   */
  state: 'starting' | 'running' | 'failed' | 'dataLost';
  /** RFC 3339: since when the member is in this state (the grace period counts from here). */
  since: string;
  detail?: string;
  agentUrl?: string;
  failpointUrl?: string;
  /** twoNodeWitness: the member was fenced (it refuses to start: it may never serve again). */
  fenced?: boolean;
  /** twoNodeWitness: the failover (its witness failoverEpoch) whose recovery of this member has been started. */
  recoveredEpoch?: number;
  /** twoNodeWitness: the member still carries its forced-start mark (every start forces a new cluster). */
  recovering?: boolean;
  /**
   * The etcd version the placement starts this member with (without the leading v): the version of its
   * last start or upgrade, which differs from spec.version in the middle of a rolling upgrade.
   */
  version?: string;
}

/** How a member starts: as a founder of a new cluster or joining an existing one. */
export interface MemberLaunch {
  name: string;
  /** `name=peerURL,...` of every member including this one. */
  initialCluster: string;
  initialClusterState: 'new' | 'existing';
  /** The etcd version to start it with (without the leading v); absent: the cluster's spec.version. */
  version?: string;
  /**
   * A restart of a member etcd already knows: it starts only on the data it has. A placement that finds
   * none (its PVC is gone) refuses with an error naming it rather than start it on empty storage, where
   * etcd panics on a raft log it no longer has and crash-loops until the member is replaced.
   */
  restart?: boolean;
}

/**
 * What the operator needs of a place where an EtcdCluster's members run: Kubernetes Pods
 * (src/controller/placement/kubernetes.ts) or local processes (src/controller/placement/local.ts). Membership
 * is the operator's (it adds and removes members through etcd's API); a placement only starts, lists and
 * deletes members. Every method is idempotent.
 */
export interface MemberPlacement<Cluster> {
  /** Why fenceMember and recoverSurvivor cannot work for this cluster (the twoNodeWitness topology needs them); undefined when they can. */
  twoNodeWitnessRefusal(cluster: Cluster): string | undefined;
  /** Creates what the cluster needs besides its members (Services, a PodDisruptionBudget); idempotent. */
  ensureCluster(cluster: Cluster): Promise<void>;
  /** The addresses a member of this name has (stable for a name; allocated on first use). */
  addresses(cluster: Cluster, member: string): Promise<{ clientUrl: string; peerUrl: string }>;
  /** The members that exist for the cluster. */
  listMembers(cluster: Cluster): Promise<PlacedMember[]>;
  /** Starts a member; a member that exists is left as it is. */
  startMember(cluster: Cluster, launch: MemberLaunch): Promise<void>;
  /**
   * twoNodeWitness: stops the member and marks it so it refuses to start again (a fenced member must
   * never serve under the old membership); idempotent.
   */
  fenceMember(cluster: Cluster, member: string, epoch: number): Promise<void>;
  /**
   * twoNodeWitness: brings the member back alone: stops it, marks every entry of its durable log
   * committed (etcd-wal-commit), and starts it with --force-new-cluster until finishRecovery. Records
   * `failoverEpoch` (PlacedMember.recoveredEpoch) and does nothing for a failover it already recovered
   * the member for (or an older one): a slow replica acting on an old plan must not force it again.
   */
  recoverSurvivor(cluster: Cluster, member: string, failoverEpoch: number): Promise<void>;
  /** twoNodeWitness: the failover is over; the member's next starts are plain ones. Idempotent. */
  finishRecovery(cluster: Cluster, member: string): Promise<void>;
  /**
   * Rolling upgrade (or the roll-back of one): stops the member gracefully and starts it again on its own
   * data with the etcd binary (local) or image (Pod) of `version` (without the leading v). The member keeps
   * its name, addresses and etcd identity, and PlacedMember.version says `version` from then on, across
   * operator restarts. Idempotent: a member already placed at `version` is left as it is. A version the
   * placement cannot run (no binary, no image) is an error naming it, and the member keeps running as it was.
   */
  upgradeMember(cluster: Cluster, member: string, version: string): Promise<void>;
  /** Stops a member and deletes it with its data. */
  deleteMember(cluster: Cluster, member: string): Promise<void>;
  /** Deletes everything created for the cluster (members, data, Services). */
  deleteCluster(cluster: Cluster): Promise<void>;
  /** The client URLs the operator uses to reach the cluster. */
  clientEndpoints(cluster: Cluster): Promise<string[]>;
  /**
   * What the operator's etcd clients need for the cluster's client URLs when they are https (the CA of
   * spec.tls.client); undefined when they are plain http. Fails with an error naming what is missing
   * (the Secret, its key) when the cluster asks for TLS and the CA cannot be read.
   */
  clientTls(cluster: Cluster): Promise<EtcdClientTls | undefined>;
  /** The cluster's members as the run engine and the fault executor drive them. */
  faultRuntime(cluster: Cluster): Promise<MemberRuntime>;
  /** The bearer token of the cluster's fault agents, when they run. */
  agentToken(cluster: Cluster): Promise<string | undefined>;
  /** Stops what the placement runs in this process (local members die with it; Pods stay). */
  close(): Promise<void>;
}
