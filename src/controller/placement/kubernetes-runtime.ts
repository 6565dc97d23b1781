/**
 * The fault runtime of the `kubernetes` member placement (./kubernetes.ts): one EtcdCluster's members as
 * the run engine and the fault executor drive them, through the Pods and PVCs the placement manages.
 */
import type { EtcdClientTls, EtcdCluster, MemberLaunch, MemberRuntime, PlacedMember, RuntimeMember } from '../../domain/index.ts';
import { logger } from '../../log.ts';
import { memberGracePeriodSeconds } from './kubernetes-manifests.ts';

/** What the runtime asks of the placement (KubernetesPlacement): the member operations a fault needs. */
export interface KubernetesMemberOps {
  listMembers(cluster: EtcdCluster): Promise<PlacedMember[]>;
  startMember(cluster: EtcdCluster, launch: MemberLaunch): Promise<void>;
  /** Deletes the member's Pod and waits until it is gone. */
  deletePodAndWait(cluster: EtcdCluster, member: string, gracePeriodSeconds: number): Promise<void>;
  /** Deletes the member's PVC (after its Pod) and waits until it is gone. */
  deleteClaimAndWait(cluster: EtcdCluster, member: string): Promise<void>;
  /** Starts the member's Pod again from its PVC. */
  recreateMember(cluster: EtcdCluster, member: string): Promise<void>;
}

/** How long members() serves a cached list before it refreshes it in the background. */
const memberCacheMs = 2000;

/**
 * A cluster's members as the run engine and the fault executor drive them. Like the local runtime, a
 * stopped or killed member stays down until restart (or until the operator's next reconcile starts its
 * Pod again from the PVC).
 */
export class KubernetesMemberRuntime implements MemberRuntime {
  readonly clusterName: string;
  /** The operator created the cluster, not the run: a run never owns it. */
  readonly created = false;
  readonly clientTls: EtcdClientTls | undefined;
  /** The cluster's client Service (./kubernetes-manifests.ts clientServiceUrl). */
  readonly serviceEndpoint: string;
  private readonly placement: KubernetesMemberOps;
  private readonly cluster: EtcdCluster;
  private readonly agentCa: string | undefined;
  private cache: RuntimeMember[] = [];
  private refreshedAt = 0;
  private refreshing: Promise<void> | undefined;
  private closed = false;

  get expectedMembers(): number {
    return this.cluster.spec.replicas;
  }

  constructor(placement: KubernetesMemberOps, cluster: EtcdCluster, clientTls: EtcdClientTls | undefined, agentCa: string | undefined, serviceEndpoint: string) {
    this.serviceEndpoint = serviceEndpoint;
    this.placement = placement;
    this.agentCa = agentCa;
    this.cluster = cluster;
    this.clientTls = clientTls;
    this.clusterName = cluster.metadata.name;
  }

  /** Nothing to create (the operator did): reads the members. */
  async create(): Promise<void> {
    await this.refresh();
  }

  async membersNow(): Promise<RuntimeMember[]> {
    await this.refresh();
    return this.cache.map((m) => ({ ...m }));
  }

  private async refresh(): Promise<void> {
    const placed = await this.placement.listMembers(this.cluster);
    // A fenced member (two-node failover) never serves again and its Pod, with its agent, is gone.
    this.cache = placed.filter((m) => m.fenced !== true).map((m) => {
      const member: RuntimeMember = { name: m.name, endpoint: m.clientUrl, peerUrl: m.peerUrl, running: m.state === 'running' };
      if (m.agentUrl !== undefined) member.agentUrl = m.agentUrl;
      if (m.agentUrl?.startsWith('https:') === true && this.agentCa !== undefined) member.agentCa = this.agentCa;
      return member;
    });
    this.refreshedAt = Date.now();
  }

  endpoints(): string[] {
    return this.members()
      .map((m) => m.endpoint)
      .sort();
  }

  members(): RuntimeMember[] {
    if (!this.closed && this.refreshing === undefined && Date.now() - this.refreshedAt > memberCacheMs) {
      this.refreshing = this.refresh()
        .catch((error: unknown) => {
          logger.warn(`cluster ${this.clusterName}: refreshing the members failed`, { error: (error as Error).message });
        })
        .finally(() => (this.refreshing = undefined));
    }
    return this.cache.map((m) => ({ ...m }));
  }

  /** Graceful: the kubelet sends SIGTERM and gives etcd the Pod's grace period. */
  async stop(member: string): Promise<void> {
    await this.placement.deletePodAndWait(this.cluster, member, memberGracePeriodSeconds);
    await this.refresh();
  }

  /**
   * As close to SIGKILL as a Pod delete gets without a force delete (grace 0 would remove the Pod from
   * the API at once while its container may still run, and a Pod recreated under the same name could
   * then run beside it on the same volume). A real SIGKILL of etcd is the agent's kill fault.
   */
  async kill(member: string): Promise<void> {
    await this.placement.deletePodAndWait(this.cluster, member, 1);
    await this.refresh();
  }

  /** Stops the member (if it runs) and starts it again with its data. */
  async restart(member: string): Promise<void> {
    await this.placement.deletePodAndWait(this.cluster, member, memberGracePeriodSeconds);
    await this.placement.recreateMember(this.cluster, member);
    await this.refresh();
  }

  /** A new member under the old name: its Pod and PVC go, and it starts empty, joining the cluster. */
  async rejoin(member: string, initialCluster: string): Promise<void> {
    await this.placement.deletePodAndWait(this.cluster, member, 1);
    await this.placement.deleteClaimAndWait(this.cluster, member);
    await this.placement.startMember(this.cluster, { name: member, initialCluster, initialClusterState: 'existing' });
    await this.refresh();
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.refreshing;
  }
}
