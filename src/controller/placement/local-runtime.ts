/**
 * The fault runtime of the `local` member placement (./local.ts): one EtcdCluster's members as the run
 * engine and the fault executor drive them, through the processes the placement runs.
 */
import { rmSync } from 'node:fs';
import type { EtcdCluster, MemberRuntime, RuntimeMember } from '../../domain/index.ts';
import type { LocalEtcdMember } from '../../local/index.ts';

/** What the runtime asks of the placement (LocalPlacement). */
export interface LocalMemberOps {
  /** Members of a cluster as the run engine sees them. */
  runtimeMembers(cluster: EtcdCluster): RuntimeMember[];
  /** The running member's process (an error when there is none). */
  member(cluster: EtcdCluster, name: string): LocalEtcdMember;
  /** The data dir of a member. */
  dataDir(cluster: EtcdCluster, member: string): string;
}

/** The members of one EtcdCluster of a LocalPlacement as a MemberRuntime for the run engine and faults. */
export class LocalPlacementRuntime implements MemberRuntime {
  readonly clusterName: string;
  readonly created = false;
  readonly serviceEndpoint: string;
  private readonly placement: LocalMemberOps;
  private readonly cluster: EtcdCluster;

  constructor(placement: LocalMemberOps, cluster: EtcdCluster, serviceEndpoint: string) {
    this.placement = placement;
    this.cluster = cluster;
    this.clusterName = cluster.metadata.name;
    this.serviceEndpoint = serviceEndpoint;
  }

  async create(): Promise<void> {
    await Promise.resolve();
  }

  endpoints(): string[] {
    return this.members().map((m) => m.endpoint);
  }

  members(): RuntimeMember[] {
    return this.placement.runtimeMembers(this.cluster);
  }

  async stop(member: string): Promise<void> {
    await this.placement.member(this.cluster, member).stop();
  }

  async kill(member: string): Promise<void> {
    await this.placement.member(this.cluster, member).kill();
  }

  async restart(member: string): Promise<void> {
    await this.placement.member(this.cluster, member).restart();
  }

  async rejoin(member: string, initialCluster: string): Promise<void> {
    const dir = this.placement.dataDir(this.cluster, member);
    // A deliberate wipe (the memberReplace fault): the member rejoins under a new id, so the lost-data
    // guard must not stop it.
    rmSync(`${dir.slice(0, -'.etcd'.length)}.bootstrapped`, { force: true });
    await this.placement.member(this.cluster, member).rejoin(initialCluster);
  }

  async close(): Promise<void> {
    await Promise.resolve();
  }
}
