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
}

export interface MemberRuntime {
  /** The cluster's name (a label on metrics and reports). */
  readonly clusterName: string;
  /** True when this runtime created the cluster (so a run may own it: exclusive mode). */
  readonly created: boolean;
  /** Starts the cluster's members and waits until they serve. */
  create(): Promise<void>;
  endpoints(): string[];
  members(): RuntimeMember[];
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
