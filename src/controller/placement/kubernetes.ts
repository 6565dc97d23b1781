/**
 * The `kubernetes` member placement (`etcd-robustness operator --runtime=kubernetes`): each member of an
 * EtcdCluster is one Pod with its own PVC, not a StatefulSet, because membership is the operator's (it
 * adds a member as a learner, promotes it, removes it before deleting it). Beside the members: a
 * headless Service `<cluster>-peers` that gives each Pod its stable DNS name
 * (`<member>.<cluster>-peers.<namespace>.svc.<domain>`), a client Service `<cluster>-client`, a
 * PodDisruptionBudget `<cluster>` that keeps a quorum, the fault agents' token Secret
 * `<cluster>-agent-token` and their TLS Secret `<cluster>-agent-tls`: a CA made for the cluster (its key
 * discarded once it signed) and one serving certificate for `*.<cluster>-peers.<ns>.svc.<domain>`. The
 * agents serve their API over HTTPS with it and a run's agent clients trust only that CA, so the token
 * never crosses the Pod network in clear. The objects and the ports inside a Pod are in
 * ./kubernetes-manifests.ts and ./kubernetes-pod.ts, the API calls and PlacementError in ./kubernetes-api.ts, the objects beside
 * the members in ./kubernetes-cluster.ts, what is read from Secrets in ./kubernetes-secrets.ts and the
 * fault runtime in ./kubernetes-runtime.ts.
 *
 * The PVC carries the member's launch (initial cluster and state) as an annotation: a Pod that was
 * deleted or evicted is recreated from it with its data. Every object has an owner reference to the
 * EtcdCluster, but deleteCluster deletes them all itself (it does not count on a garbage collector).
 *
 * With spec.tls.client the members' client URLs are https, and every etcd client of the operator (its
 * reconciles, a run's probes and faults) trusts the CA in `ca.crt` of that Secret (clientTls).
 *
 * API calls the operator's RBAC must allow: pods (get, list, create, delete), persistentvolumeclaims
 * (get, list, create, delete), services and secrets (get, create, delete), policy
 * poddisruptionbudgets (get, create, update, delete), networking.k8s.io networkpolicies (get, create,
 * update, delete; only with agentClients).
 */
import type { KubeConfig, V1PersistentVolumeClaim, V1Pod } from '@kubernetes/client-node';
import type { EtcdClientTls, EtcdCluster, MemberLaunch, MemberPlacement, MemberRuntime, PlacedMember } from '../../domain/index.ts';
import { logger } from '../../log.ts';
import { checkClusterNames, checkOwned, checkVersion, KubeObjects, PlacementError } from './kubernetes-api.ts';
import { deleteClusterObjects, ensureClusterObjects } from './kubernetes-cluster.ts';
import {
  agentUrlOf,
  type AgentClientPods,
  claimVersion,
  clientServiceUrl,
  clusterLabelSelector,
  clusterNamespace,
  dataClaim,
  dataClaimName,
  defaultClusterDomain,
  labelKeys,
  launchAnnotation,
  memberAddresses,
  memberGracePeriodSeconds,
  podAgentServesTls,
  podVersion,
} from './kubernetes-manifests.ts';
import { memberPod, parseLaunch } from './kubernetes-pod.ts';
import { KubernetesMemberRuntime } from './kubernetes-runtime.ts';
import { readAgentCa, readAgentToken, readClientTls } from './kubernetes-secrets.ts';
import { observeMember } from './kubernetes-status.ts';
import { fenceMemberPod, finishRecoveryPod, recoverSurvivorPod, twoNodeMarks, type TwoNodePodsContext } from './kubernetes-two-node.ts';

// Exported here as before: callers import the placement's error and the client CA's key with it.
export { PlacementError } from './kubernetes-api.ts';
export { clientCaKey } from './kubernetes-secrets.ts';

export interface KubernetesPlacementOptions {
  kubeConfig: KubeConfig;
  /** This project's image: it runs the fault agent sidecar (`etcd-robustness agent ...`). */
  operatorImage: string;
  /** The cluster's DNS domain (default `cluster.local`). */
  clusterDomain?: string;
  /**
   * Give each cluster a NetworkPolicy (`<cluster>-members`) that admits the agents' port only from these
   * Pods (the operator's) and the peer port only from the cluster's members. Absent: no policy.
   */
  agentClients?: AgentClientPods;
  /** How long stop, kill, restart and rejoin wait for a deleted Pod or PVC to be gone (default 2 min). */
  deleteTimeoutMs?: number;
  /** How often they look (default 250 ms). */
  pollIntervalMs?: number;
}

/** A member's name from its Pod or PVC. */
function memberOf(labels: Record<string, string> | undefined, fallback: string | undefined): string | undefined {
  return labels?.[labelKeys.member] ?? fallback;
}

const byMemberName = (a: string, b: string): number => a.localeCompare(b, 'en', { numeric: true });

export class KubernetesPlacement implements MemberPlacement<EtcdCluster> {
  /** Through the members' fault agents (./kubernetes-two-node.ts): a cluster without them is refused. */
  twoNodeWitnessRefusal(cluster: EtcdCluster): string | undefined {
    return cluster.spec.agent.enabled ? undefined : 'the twoNodeWitness topology on Pods needs the fault agent (spec.agent.enabled: true): the agent brings the survivor back alone inside its Pod';
  }
  private readonly api: KubeObjects;
  private readonly agentClients: AgentClientPods | undefined;
  private readonly operatorImage: string;
  private readonly clusterDomain: string;
  /** When this process first saw a member's Pod missing (no object records it): `ns/cluster/member/pvc-uid`. */
  private readonly podMissingSince = new Map<string, string>();

  constructor(options: KubernetesPlacementOptions) {
    this.api = new KubeObjects({ kubeConfig: options.kubeConfig, deleteTimeoutMs: options.deleteTimeoutMs ?? 120_000, pollIntervalMs: options.pollIntervalMs ?? 250 });
    this.agentClients = options.agentClients;
    this.operatorImage = options.operatorImage;
    this.clusterDomain = options.clusterDomain ?? defaultClusterDomain;
  }

  // ---- MemberPlacement ----

  async ensureCluster(cluster: EtcdCluster): Promise<void> {
    checkClusterNames(cluster);
    await ensureClusterObjects(this.api, cluster, { clusterDomain: this.clusterDomain, agentClients: this.agentClients });
  }

  addresses(cluster: EtcdCluster, member: string): Promise<{ clientUrl: string; peerUrl: string }> {
    return Promise.resolve().then(() => {
      checkClusterNames(cluster, member);
      const { clientUrl, peerUrl } = memberAddresses(cluster, member, this.clusterDomain);
      return { clientUrl, peerUrl };
    });
  }

  async listMembers(cluster: EtcdCluster): Promise<PlacedMember[]> {
    checkClusterNames(cluster);
    const namespace = clusterNamespace(cluster);
    const labelSelector = clusterLabelSelector(cluster);
    const [pods, claims] = await Promise.all([
      this.api.call('Pod', namespace, labelSelector, 'list', () => this.api.core.listNamespacedPod({ namespace, labelSelector })),
      this.api.call('PersistentVolumeClaim', namespace, labelSelector, 'list', () => this.api.core.listNamespacedPersistentVolumeClaim({ namespace, labelSelector })),
    ]);
    const podOf = new Map<string, V1Pod>();
    for (const pod of pods.items) {
      const member = memberOf(pod.metadata?.labels, pod.metadata?.name);
      if (member !== undefined) podOf.set(member, pod);
    }
    const claimOf = new Map<string, V1PersistentVolumeClaim>();
    for (const claim of claims.items) {
      const member = memberOf(claim.metadata?.labels, claim.metadata?.name?.replace(/-data$/, ''));
      if (member !== undefined) claimOf.set(member, claim);
    }

    const now = new Date().toISOString();
    const clusterPrefix = `${namespace}/${cluster.metadata.name}/`;
    const missingKeys = new Set<string>();
    const members: PlacedMember[] = [];
    for (const name of [...new Set([...podOf.keys(), ...claimOf.keys()])].sort(byMemberName)) {
      const pod = podOf.get(name);
      const claim = claimOf.get(name);
      const observed = observeMember(pod, claim);
      if (!observed) continue;
      let since = observed.since;
      if (since === undefined) {
        // Nothing records when a Pod went missing: count from when this process first saw it so.
        const key = `${clusterPrefix}${name}/${claim?.metadata?.uid ?? ''}`;
        missingKeys.add(key);
        since = this.podMissingSince.get(key) ?? now;
        this.podMissingSince.set(key, since);
      }
      const { clientUrl, peerUrl, host } = memberAddresses(cluster, name, this.clusterDomain);
      // What the Pod runs, else what the next Pod will run.
      const version = (pod ? podVersion(pod) : undefined) ?? claimVersion(claim) ?? cluster.spec.version;
      const member: PlacedMember = { name, clientUrl, peerUrl, state: observed.state, since, version };
      if (observed.detail !== undefined) member.detail = observed.detail;
      const { fencedEpoch, ...marks } = twoNodeMarks(claim);
      Object.assign(member, marks);
      if (marks.fenced === true) {
        member.state = 'failed';
        member.detail = `fenced at witness epoch ${fencedEpoch ?? '?'}`;
      }
      const agentRuns = pod ? (pod.spec?.containers.some((c) => c.name === 'agent') ?? false) : cluster.spec.agent.enabled;
      if (agentRuns) member.agentUrl = agentUrlOf(host, pod ? podAgentServesTls(pod) : true);
      members.push(member);
    }
    for (const key of this.podMissingSince.keys()) {
      if (key.startsWith(clusterPrefix) && !missingKeys.has(key)) this.podMissingSince.delete(key);
    }
    return members;
  }

  async startMember(cluster: EtcdCluster, launch: MemberLaunch): Promise<void> {
    checkClusterNames(cluster, launch.name);
    const namespace = clusterNamespace(cluster);
    const pod = await this.api.readPod(namespace, launch.name);
    if (pod) {
      checkOwned(cluster, 'Pod', pod.metadata);
      return;
    }
    const claimName = dataClaimName(launch.name);
    let claim = await this.api.readClaim(namespace, claimName);
    if (!claim && launch.restart === true) {
      // The PVC went between the listing and this start (deleted with its Pod): the member's data is gone.
      throw new PlacementError('PersistentVolumeClaim', `${namespace}/${claimName}`, `is gone: member ${launch.name} cannot restart without its data; it will be replaced`, { statusCode: 409 });
    }
    if (!claim) {
      const created = await this.api.create('PersistentVolumeClaim', namespace, claimName, () =>
        this.api.core.createNamespacedPersistentVolumeClaim({ namespace, body: dataClaim(cluster, launch) }),
      );
      // Lost a race with another writer: go on with theirs.
      if (!created) claim = await this.api.readClaim(namespace, claimName);
    }
    let effective = launch;
    let version = launch.version ?? cluster.spec.version;
    if (claim) {
      checkOwned(cluster, 'PersistentVolumeClaim', claim.metadata);
      const fenced = twoNodeMarks(claim);
      if (fenced.fenced === true) throw new PlacementError('PersistentVolumeClaim', `${namespace}/${claimName}`, `is fenced (witness epoch ${fenced.fencedEpoch ?? '?'}): member ${launch.name} never starts again`, { statusCode: 409 });
      if (claim.metadata?.deletionTimestamp !== undefined) {
        throw new PlacementError('PersistentVolumeClaim', `${namespace}/${claimName}`, `is being deleted: member ${launch.name} cannot start on it until it is gone`, { statusCode: 409 });
      }
      // The member has data: it starts as what the PVC was made for (etcd ignores the initial
      // cluster flags once its data dir has a WAL anyway).
      const recorded = parseLaunch(claim.metadata?.annotations?.[launchAnnotation]);
      if (recorded === undefined) logger.warn(`PersistentVolumeClaim ${namespace}/${claimName} has no valid ${launchAnnotation}: starting it with the launch given`);
      else effective = recorded;
      // The version recorded with the data wins (only upgradeMember changes it): launch.version is a new
      // member's. A PVC from before versions were recorded gets one now, so its restarts keep it.
      const recordedVersion = claimVersion(claim);
      version = recordedVersion ?? launch.version ?? cluster.spec.version;
      if (recordedVersion === undefined) await this.api.recordVersion(namespace, claim, version);
    }
    checkVersion(cluster, launch.name, version);
    const body = memberPod(cluster, { ...effective, version }, { clusterDomain: this.clusterDomain, operatorImage: this.operatorImage });
    await this.api.create('Pod', namespace, launch.name, () => this.api.core.createNamespacedPod({ namespace, body }));
  }

  async fenceMember(cluster: EtcdCluster, member: string, epoch: number): Promise<void> {
    checkClusterNames(cluster, member);
    await fenceMemberPod(this.twoNode, cluster, member, epoch);
  }

  async recoverSurvivor(cluster: EtcdCluster, member: string, failoverEpoch: number): Promise<void> {
    checkClusterNames(cluster, member);
    await recoverSurvivorPod(this.twoNode, cluster, member, failoverEpoch);
  }

  async finishRecovery(cluster: EtcdCluster, member: string): Promise<void> {
    checkClusterNames(cluster, member);
    await finishRecoveryPod(this.twoNode, cluster, member);
  }

  /** What ./kubernetes-two-node.ts needs of this placement. */
  private get twoNode(): TwoNodePodsContext {
    return {
      api: this.api,
      clusterDomain: this.clusterDomain,
      agentToken: (cluster) => this.agentToken(cluster),
      agentCa: (cluster) => this.agentCa(cluster),
      deletePodAndWait: (cluster, member, grace) => this.deletePodAndWait(cluster, member, grace),
      recreateMember: (cluster, member) => this.recreateMember(cluster, member),
    };
  }

  /**
   * Records `version` on the member's PVC, deletes its Pod gracefully (the kubelet stops etcd with SIGTERM
   * within the grace period), waits until it is gone and creates it again on the PVC with the image of
   * `version`. Each step is skipped when done: a call that failed half-way (a Pod slow to terminate) is
   * finished by the next one, and a member whose PVC and Pod both say `version` is left alone. The image's
   * existence cannot be checked here: a tag the registry lacks shows as a Pod that fails to pull.
   */
  async upgradeMember(cluster: EtcdCluster, member: string, version: string): Promise<void> {
    checkClusterNames(cluster, member);
    checkVersion(cluster, member, version);
    const namespace = clusterNamespace(cluster);
    const claimName = dataClaimName(member);
    const claim = await this.api.readClaim(namespace, claimName);
    if (!claim) throw new PlacementError('PersistentVolumeClaim', `${namespace}/${claimName}`, `not found: member ${member} has no data to upgrade`, { statusCode: 404 });
    checkOwned(cluster, 'PersistentVolumeClaim', claim.metadata);
    const launch = parseLaunch(claim.metadata?.annotations?.[launchAnnotation]);
    if (!launch) throw new PlacementError('PersistentVolumeClaim', `${namespace}/${claimName}`, `has no valid ${launchAnnotation} annotation: member ${member} cannot be recreated`, { statusCode: 422 });
    const pod = await this.api.readPod(namespace, member);
    if (pod) checkOwned(cluster, 'Pod', pod.metadata);
    const podAt = pod === undefined ? undefined : (podVersion(pod) ?? cluster.spec.version);
    const from = podAt ?? claimVersion(claim) ?? cluster.spec.version;
    if (claimVersion(claim) === version && (podAt === undefined || podAt === version)) {
      // Recorded already; with no Pod, startMember (the reconcile) creates it on `version`.
      return;
    }
    // Recorded first: from here on, whoever recreates the Pod (this call, a reconcile, a restart) uses it.
    if (claimVersion(claim) !== version) await this.api.recordVersion(namespace, claim, version);
    if (pod && podAt !== version) {
      logger.info(`upgrading member ${namespace}/${member}: deleting its Pod`, { from, to: version });
      await this.api.deletePod(namespace, member, memberGracePeriodSeconds);
      await this.api.waitGone('Pod', namespace, member, pod.metadata?.uid, () => this.api.readPod(namespace, member));
    }
    await this.startMember(cluster, { ...launch, version });
    logger.info(`upgraded member ${namespace}/${member}`, { from, to: version });
  }

  async deleteMember(cluster: EtcdCluster, member: string): Promise<void> {
    checkClusterNames(cluster, member);
    const namespace = clusterNamespace(cluster);
    await this.api.deletePod(namespace, member, memberGracePeriodSeconds);
    await this.api.deleteClaim(namespace, dataClaimName(member));
    logger.info(`deleted member ${namespace}/${member} (Pod and PVC)`);
  }

  async deleteCluster(cluster: EtcdCluster): Promise<void> {
    checkClusterNames(cluster);
    const namespace = clusterNamespace(cluster);
    const labelSelector = clusterLabelSelector(cluster);
    const pods = await this.api.call('Pod', namespace, labelSelector, 'list', () => this.api.core.listNamespacedPod({ namespace, labelSelector }));
    await Promise.all(pods.items.map((pod) => this.api.deletePod(namespace, pod.metadata!.name!, memberGracePeriodSeconds)));
    const claims = await this.api.call('PersistentVolumeClaim', namespace, labelSelector, 'list', () => this.api.core.listNamespacedPersistentVolumeClaim({ namespace, labelSelector }));
    await Promise.all(claims.items.map((claim) => this.api.deleteClaim(namespace, claim.metadata!.name!)));
    await deleteClusterObjects(this.api, cluster, this.agentClients);
    for (const key of this.podMissingSince.keys()) if (key.startsWith(`${namespace}/${cluster.metadata.name}/`)) this.podMissingSince.delete(key);
    logger.info(`deleted EtcdCluster ${namespace}/${cluster.metadata.name}'s objects`, { pods: pods.items.length, claims: claims.items.length });
  }

  async clientEndpoints(cluster: EtcdCluster): Promise<string[]> {
    const members = await this.listMembers(cluster);
    return members.map((m) => m.clientUrl).sort();
  }

  /**
   * The CA of spec.tls.client, read from `ca.crt` of its Secret at each call (./kubernetes-secrets.ts):
   * a ClientTlsUnavailableError when it cannot be had.
   */
  clientTls(cluster: EtcdCluster): Promise<EtcdClientTls | undefined> {
    return readClientTls(this.api, cluster);
  }

  async faultRuntime(cluster: EtcdCluster): Promise<MemberRuntime> {
    const runtime = new KubernetesMemberRuntime(this, cluster, await this.clientTls(cluster), await this.agentCa(cluster), clientServiceUrl(cluster, this.clusterDomain));
    await runtime.create();
    return runtime;
  }

  agentToken(cluster: EtcdCluster): Promise<string | undefined> {
    return readAgentToken(this.api, cluster);
  }

  /** The CA (PEM) of the cluster's agents' serving certificate; undefined without agents or before ensureCluster made it. */
  agentCa(cluster: EtcdCluster): Promise<string | undefined> {
    return readAgentCa(this.api, cluster);
  }

  close(): Promise<void> {
    return Promise.resolve(); // Pods stay: they are the cluster's, not this process's
  }

  // ---- what the fault runtime does to one member ----

  /** Deletes the member's Pod and waits until it is gone. */
  async deletePodAndWait(cluster: EtcdCluster, member: string, gracePeriodSeconds: number): Promise<void> {
    checkClusterNames(cluster, member);
    const namespace = clusterNamespace(cluster);
    const pod = await this.api.readPod(namespace, member);
    if (!pod) return;
    await this.api.deletePod(namespace, member, gracePeriodSeconds);
    await this.api.waitGone('Pod', namespace, member, pod.metadata?.uid, () => this.api.readPod(namespace, member));
  }

  /** Deletes the member's PVC (after its Pod) and waits until it is gone. */
  async deleteClaimAndWait(cluster: EtcdCluster, member: string): Promise<void> {
    const namespace = clusterNamespace(cluster);
    const name = dataClaimName(member);
    const claim = await this.api.readClaim(namespace, name);
    if (!claim) return;
    await this.api.deleteClaim(namespace, name);
    await this.api.waitGone('PersistentVolumeClaim', namespace, name, claim.metadata?.uid, () => this.api.readClaim(namespace, name));
  }

  /** Starts the member's Pod again from its PVC (the launch recorded there). */
  async recreateMember(cluster: EtcdCluster, member: string): Promise<void> {
    const namespace = clusterNamespace(cluster);
    const claimName = dataClaimName(member);
    const claim = await this.api.readClaim(namespace, claimName);
    const launch = parseLaunch(claim?.metadata?.annotations?.[launchAnnotation]);
    if (!launch) {
      throw new PlacementError('PersistentVolumeClaim', `${namespace}/${claimName}`, claim ? `has no valid ${launchAnnotation} annotation` : 'not found: the member has no data to restart with', {
        statusCode: claim ? 422 : 404,
      });
    }
    await this.startMember(cluster, launch);
  }
}
