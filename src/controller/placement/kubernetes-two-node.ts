/**
 * The two-node-plus-witness failover on Pods (docs/two-node-witness.md): what the kubernetes placement
 * does to fence a member and to bring the survivor back alone. Its marks live on the member's PVC
 * (twoNodeAnnotations), which outlives every Pod, as the local placement's live in its folder:
 *
 *   fence     the PVC is marked fenced (so no Pod is ever made for it again), then the Pod is deleted at
 *             once (grace 0: a fenced member must stop serving now, not after a graceful shutdown).
 *   recover   through the member's fault agent (src/faults/agent-recovery.ts): etcd held down and killed
 *             in its running Pod, its durable log committed (etcd-wal-commit), a force file written that
 *             makes tools/etcd-launcher start it with --force-new-cluster; then the PVC records the
 *             failover's epoch. So it needs the agent (spec.agent.enabled), and no Pod is recreated.
 *   finish    the agent removes the force file, then the PVC's `recovering` mark goes.
 *
 * Fencing here stops the Pod through the API server: a member on a node the API server cannot reach
 * keeps running until its kubelet hears of the deletion, which the witness's failover grace does not
 * cover (a node-level fence, as with a STONITH agent, would).
 */
import type { V1PersistentVolumeClaim } from '@kubernetes/client-node';
import type { EtcdCluster, PlacedMember } from '../../domain/index.ts';
import { AgentClient } from '../../faults/index.ts';
import { logger } from '../../log.ts';
import { checkOwned, type KubeObjects, PlacementError } from './kubernetes-api.ts';
import { agentUrlOf, clusterNamespace, dataClaimName, memberAddresses, twoNodeAnnotations } from './kubernetes-manifests.ts';

/** What the PVC's marks say about a member (PlacedMember's twoNodeWitness fields). */
export function twoNodeMarks(claim: V1PersistentVolumeClaim | undefined): Pick<PlacedMember, 'fenced' | 'recoveredEpoch' | 'recovering'> & { fencedEpoch?: number } {
  const annotations = claim?.metadata?.annotations ?? {};
  const epoch = (key: string): number | undefined => {
    const text = annotations[key];
    return text !== undefined && /^\d{1,15}$/.test(text) ? Number(text) : undefined;
  };
  const marks: ReturnType<typeof twoNodeMarks> = {};
  const fencedEpoch = epoch(twoNodeAnnotations.fencedEpoch);
  // A mark that does not read as an epoch still fences: never start a member someone meant to fence.
  if (annotations[twoNodeAnnotations.fencedEpoch] !== undefined) {
    marks.fenced = true;
    if (fencedEpoch !== undefined) marks.fencedEpoch = fencedEpoch;
  }
  const recoveredEpoch = epoch(twoNodeAnnotations.recoveredEpoch);
  if (recoveredEpoch !== undefined) marks.recoveredEpoch = recoveredEpoch;
  if (annotations[twoNodeAnnotations.recovering] !== undefined) marks.recovering = true;
  return marks;
}

export interface TwoNodePodsContext {
  api: KubeObjects;
  clusterDomain: string;
  agentToken: (cluster: EtcdCluster) => Promise<string | undefined>;
  agentCa: (cluster: EtcdCluster) => Promise<string | undefined>;
  /** Deletes the member's Pod (grace in seconds) and waits until it is gone. */
  deletePodAndWait: (cluster: EtcdCluster, member: string, gracePeriodSeconds: number) => Promise<void>;
  /** Starts the member's Pod again from its PVC. */
  recreateMember: (cluster: EtcdCluster, member: string) => Promise<void>;
}

async function ownedClaim(ctx: TwoNodePodsContext, cluster: EtcdCluster, member: string): Promise<V1PersistentVolumeClaim | undefined> {
  const claim = await ctx.api.readClaim(clusterNamespace(cluster), dataClaimName(member));
  if (claim) checkOwned(cluster, 'PersistentVolumeClaim', claim.metadata);
  return claim;
}

/** Sets (a string) or removes (null) annotations of the PVC, replacing it at the read resourceVersion (a concurrent change fails with 409 and is retried by the next reconcile). */
async function annotateClaim(ctx: TwoNodePodsContext, claim: V1PersistentVolumeClaim, annotations: Record<string, string | null>, why: string): Promise<void> {
  const namespace = claim.metadata!.namespace!;
  const name = claim.metadata!.name!;
  const kept = Object.entries(claim.metadata!.annotations ?? {}).filter(([key]) => !(key in annotations));
  const set = Object.entries(annotations).filter((entry): entry is [string, string] => entry[1] !== null);
  claim.metadata!.annotations = Object.fromEntries([...kept, ...set]);
  await ctx.api.call('PersistentVolumeClaim', namespace, name, why, () => ctx.api.core.replaceNamespacedPersistentVolumeClaim({ name, namespace, body: claim }));
}

/** The member's agent, at its stable DNS name, trusting only the cluster's agent CA. */
async function agentOf(ctx: TwoNodePodsContext, cluster: EtcdCluster, member: string): Promise<AgentClient> {
  const where = `${clusterNamespace(cluster)}/${cluster.metadata.name}`;
  if (!cluster.spec.agent.enabled) throw new PlacementError('EtcdCluster', where, `cannot recover ${member}: the twoNodeWitness topology on Pods needs the fault agent (spec.agent.enabled), which brings the survivor back alone inside its Pod`, { statusCode: 422 });
  const [token, ca] = await Promise.all([ctx.agentToken(cluster), ctx.agentCa(cluster)]);
  if (token === undefined || ca === undefined) throw new PlacementError('EtcdCluster', where, `cannot recover ${member}: the agents' token or CA Secret is missing`, { statusCode: 409 });
  const { host } = memberAddresses(cluster, member, ctx.clusterDomain);
  return new AgentClient(agentUrlOf(host, true), token, { ca });
}

export async function fenceMemberPod(ctx: TwoNodePodsContext, cluster: EtcdCluster, member: string, epoch: number): Promise<void> {
  const claim = await ownedClaim(ctx, cluster, member);
  // The mark first: from the moment it exists no Pod is made for the member again.
  if (claim && twoNodeMarks(claim).fenced !== true) await annotateClaim(ctx, claim, { [twoNodeAnnotations.fencedEpoch]: String(epoch) }, 'fence the member');
  await ctx.deletePodAndWait(cluster, member, 0);
  logger.warn('kubernetes placement: member fenced', { cluster: `${clusterNamespace(cluster)}/${cluster.metadata.name}`, member, epoch });
}

export async function recoverSurvivorPod(ctx: TwoNodePodsContext, cluster: EtcdCluster, member: string, failoverEpoch: number): Promise<void> {
  const where = `${clusterNamespace(cluster)}/${dataClaimName(member)}`;
  const claim = await ownedClaim(ctx, cluster, member);
  if (!claim) throw new PlacementError('PersistentVolumeClaim', where, `not found: the survivor ${member} has no data to recover`, { statusCode: 404 });
  const marks = twoNodeMarks(claim);
  if (marks.fenced === true) throw new PlacementError('PersistentVolumeClaim', where, `cannot recover ${member}: it was fenced at epoch ${marks.fencedEpoch ?? '?'}`, { statusCode: 409 });
  // Once per failover, whoever asks (see MemberPlacement.recoverSurvivor); the agent checks the same with its force file.
  if (marks.recoveredEpoch !== undefined && marks.recoveredEpoch >= failoverEpoch) return;
  const agent = await agentOf(ctx, cluster, member);
  const done = await agent.recover(failoverEpoch);
  await annotateClaim(ctx, claim, { [twoNodeAnnotations.recoveredEpoch]: String(failoverEpoch), [twoNodeAnnotations.recovering]: String(done.epoch) }, 'record the recovery');
  logger.warn('kubernetes placement: the survivor starts alone (--force-new-cluster)', { cluster: `${clusterNamespace(cluster)}/${cluster.metadata.name}`, member, failoverEpoch, recovered: done.recovered });
}

export async function finishRecoveryPod(ctx: TwoNodePodsContext, cluster: EtcdCluster, member: string): Promise<void> {
  const claim = await ownedClaim(ctx, cluster, member);
  if (!claim || twoNodeMarks(claim).recovering !== true) return;
  // Only the survivor's agent can remove the force file. A survivor whose Pod is gone (deleted by hand
  // while it serves alone) gets it back first: its forced start is harmless while it is the only member,
  // and the failover's plan asks this again until the agent answers.
  if ((await ctx.api.readPod(clusterNamespace(cluster), member)) === undefined) {
    await ctx.recreateMember(cluster, member);
    throw new PlacementError('Pod', `${clusterNamespace(cluster)}/${member}`, `was gone: started again from its PVC; the recovery finishes once its agent answers`, { statusCode: 409 });
  }
  // The force file first: a PVC that says "done" while the file remains would let the next start force again.
  await (await agentOf(ctx, cluster, member)).finishRecovery();
  await annotateClaim(ctx, claim, { [twoNodeAnnotations.recovering]: null }, 'finish the recovery');
  logger.info('kubernetes placement: the survivor starts plainly from now on', { cluster: `${clusterNamespace(cluster)}/${cluster.metadata.name}`, member });
}
