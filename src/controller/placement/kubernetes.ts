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
 * ./kubernetes-manifests.ts.
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
import { randomBytes, X509Certificate } from 'node:crypto';
import {
  CoreV1Api,
  NetworkingV1Api,
  PolicyV1Api,
  type KubeConfig,
  type V1PersistentVolumeClaim,
  type V1Pod,
} from '@kubernetes/client-node';
import type { EtcdClientTls, EtcdCluster, MemberLaunch, MemberPlacement, MemberRuntime, PlacedMember, RuntimeMember } from '../../domain/index.ts';
import { ClientTlsUnavailableError } from '../../domain/index.ts';
import { logger } from '../../log.ts';
import { pollUntil } from '../../poll.ts';
import { apiErrorMessage, apiStatusCode } from '../kube-api.ts';
import { certificateAuthorityBundle } from '../kit/index.ts';
import {
  agentCertificateHosts,
  agentSecret,
  agentSecretName,
  agentTlsKeys,
  agentTlsSecret,
  agentTlsSecretName,
  agentTokenKey,
  agentUrlOf,
  checkNames,
  memberNetworkPolicy,
  networkPolicyName,
  type AgentClientPods,
  claimVersion,
  clientService,
  clientServiceName,
  clusterLabelSelector,
  clusterNamespace,
  dataClaim,
  dataClaimName,
  defaultClusterDomain,
  disruptionBudget,
  disruptionBudgetName,
  labelKeys,
  launchAnnotation,
  ManifestNameError,
  memberAddresses,
  memberGracePeriodSeconds,
  memberPod,
  memberVersionPattern,
  parseLaunch,
  peerService,
  peerServiceName,
  podAgentServesTls,
  podVersion,
  versionAnnotation,
} from './kubernetes-manifests.ts';
import { observeMember } from './kubernetes-status.ts';

/** A Kubernetes call of the placement failed (statusCode: the API's HTTP status, when it answered). */
export class PlacementError extends Error {
  override name = 'PlacementError';
  /** The object's kind, e.g. `Pod`. */
  readonly kind: string;
  /** `namespace/name` of the object. */
  readonly objectName: string;
  readonly statusCode: number | undefined;

  constructor(kind: string, objectName: string, message: string, options: { statusCode?: number; cause?: unknown } = {}) {
    super(`${kind} ${objectName}: ${message}`, options.cause === undefined ? undefined : { cause: options.cause });
    this.kind = kind;
    this.objectName = objectName;
    this.statusCode = options.statusCode;
  }
}

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

/** The key of spec.tls.client's Secret that holds the CA (kubernetes.io/tls Secrets carry it as ca.crt). */
export const clientCaKey = 'ca.crt';

/** A member's name from its Pod or PVC. */
function memberOf(labels: Record<string, string> | undefined, fallback: string | undefined): string | undefined {
  return labels?.[labelKeys.member] ?? fallback;
}

const byMemberName = (a: string, b: string): number => a.localeCompare(b, 'en', { numeric: true });

/** JSON with object keys sorted: the client library's models list fields in their own order. */
function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => a.localeCompare(b))) : v,
  );
}

export class KubernetesPlacement implements MemberPlacement<EtcdCluster> {
  /**
   * Not yet: a survivor's recovery (stop etcd, etcd-wal-commit on its volume, one start with
   * --force-new-cluster) would run in the member's Pod through the agent, which does not do it yet.
   */
  readonly supportsTwoNodeWitness = false;
  /** The kubelet restarts a killed etcd container at once: nothing in the Pod reads the hold file yet. */
  readonly supportsCrashHold = false;
  private readonly core: CoreV1Api;
  private readonly policy: PolicyV1Api;
  private readonly networking: NetworkingV1Api;
  private readonly agentClients: AgentClientPods | undefined;
  private readonly operatorImage: string;
  private readonly clusterDomain: string;
  private readonly deleteTimeoutMs: number;
  private readonly pollIntervalMs: number;
  /** When this process first saw a member's Pod missing (no object records it): `ns/cluster/member/pvc-uid`. */
  private readonly podMissingSince = new Map<string, string>();

  constructor(options: KubernetesPlacementOptions) {
    this.core = options.kubeConfig.makeApiClient(CoreV1Api);
    this.policy = options.kubeConfig.makeApiClient(PolicyV1Api);
    this.networking = options.kubeConfig.makeApiClient(NetworkingV1Api);
    this.agentClients = options.agentClients;
    this.operatorImage = options.operatorImage;
    this.clusterDomain = options.clusterDomain ?? defaultClusterDomain;
    this.deleteTimeoutMs = options.deleteTimeoutMs ?? 120_000;
    this.pollIntervalMs = options.pollIntervalMs ?? 250;
  }

  // ---- API calls: every error becomes a PlacementError; `optional` turns a 404 into undefined ----

  private async call<T>(kind: string, namespace: string, name: string, what: string, request: () => Promise<T>): Promise<T> {
    try {
      return await request();
    } catch (error) {
      const statusCode = apiStatusCode(error);
      throw new PlacementError(kind, `${namespace}/${name}`, `${what}: ${apiErrorMessage(error)}`, { ...(statusCode === undefined ? {} : { statusCode }), cause: error });
    }
  }

  private async optional<T>(kind: string, namespace: string, name: string, what: string, request: () => Promise<T>): Promise<T | undefined> {
    try {
      return await this.call(kind, namespace, name, what, request);
    } catch (error) {
      if (error instanceof PlacementError && error.statusCode === 404) return undefined;
      throw error;
    }
  }

  /** Creates an object; false when it exists already (409), which is fine for an idempotent create. */
  private async create(kind: string, namespace: string, name: string, request: () => Promise<unknown>): Promise<boolean> {
    try {
      await this.call(kind, namespace, name, 'create', request);
      logger.info(`created ${kind} ${namespace}/${name}`);
      return true;
    } catch (error) {
      if (error instanceof PlacementError && error.statusCode === 409) return false;
      throw error;
    }
  }

  private checkNames(cluster: EtcdCluster, member?: string): void {
    try {
      checkNames(cluster, member);
    } catch (error) {
      if (error instanceof ManifestNameError) throw new PlacementError(member === undefined ? 'EtcdCluster' : 'Pod', `${clusterNamespace(cluster)}/${member ?? cluster.metadata.name}`, error.message);
      throw error;
    }
    if (cluster.metadata.uid === undefined || cluster.metadata.uid === '') {
      throw new PlacementError('EtcdCluster', `${clusterNamespace(cluster)}/${cluster.metadata.name}`, 'has no metadata.uid (owner references need it)');
    }
  }

  private readPod(namespace: string, name: string): Promise<V1Pod | undefined> {
    return this.optional('Pod', namespace, name, 'read', () => this.core.readNamespacedPod({ name, namespace }));
  }

  private readClaim(namespace: string, name: string): Promise<V1PersistentVolumeClaim | undefined> {
    return this.optional('PersistentVolumeClaim', namespace, name, 'read', () => this.core.readNamespacedPersistentVolumeClaim({ name, namespace }));
  }

  private async deletePod(namespace: string, name: string, gracePeriodSeconds: number): Promise<void> {
    await this.optional('Pod', namespace, name, 'delete', () => this.core.deleteNamespacedPod({ name, namespace, gracePeriodSeconds }));
  }

  private async deleteClaim(namespace: string, name: string): Promise<void> {
    await this.optional('PersistentVolumeClaim', namespace, name, 'delete', () => this.core.deleteNamespacedPersistentVolumeClaim({ name, namespace }));
  }

  /** Polls until `read` finds no object of `uid` (gone, or replaced by a new one). */
  private async waitGone(kind: string, namespace: string, name: string, uid: string | undefined, read: () => Promise<{ metadata?: { uid?: string } } | undefined>): Promise<void> {
    const gone = async (): Promise<true | undefined> => {
      const current = await read();
      return current === undefined || current.metadata?.uid !== uid ? true : undefined;
    };
    await pollUntil(gone, {
      timeoutMs: this.deleteTimeoutMs,
      intervalMs: this.pollIntervalMs,
      timeout: () => new PlacementError(kind, `${namespace}/${name}`, `still there ${this.deleteTimeoutMs} ms after it was deleted`, { statusCode: 504 }),
    });
  }

  // ---- MemberPlacement ----

  async ensureCluster(cluster: EtcdCluster): Promise<void> {
    this.checkNames(cluster);
    const namespace = clusterNamespace(cluster);
    for (const service of [peerService(cluster), clientService(cluster)]) {
      const name = service.metadata!.name!;
      const existing = await this.optional('Service', namespace, name, 'read', () => this.core.readNamespacedService({ name, namespace }));
      if (!existing) await this.create('Service', namespace, name, () => this.core.createNamespacedService({ namespace, body: service }));
    }

    const budget = disruptionBudget(cluster);
    const budgetName = disruptionBudgetName(cluster);
    const existingBudget = await this.optional('PodDisruptionBudget', namespace, budgetName, 'read', () =>
      this.policy.readNamespacedPodDisruptionBudget({ name: budgetName, namespace }),
    );
    if (!existingBudget) {
      await this.create('PodDisruptionBudget', namespace, budgetName, () => this.policy.createNamespacedPodDisruptionBudget({ namespace, body: budget }));
    } else if (
      existingBudget.spec?.minAvailable !== budget.spec!.minAvailable ||
      existingBudget.spec?.maxUnavailable !== undefined ||
      JSON.stringify(existingBudget.spec?.selector?.matchLabels ?? {}) !== JSON.stringify(budget.spec!.selector!.matchLabels)
    ) {
      // A replace with the read resourceVersion: a concurrent change makes it fail (409) and the
      // reconcile retries, instead of one writer silently undoing the other.
      const body = { apiVersion: budget.apiVersion, kind: budget.kind, metadata: existingBudget.metadata, spec: budget.spec };
      await this.call('PodDisruptionBudget', namespace, budgetName, 'update', () => this.policy.replaceNamespacedPodDisruptionBudget({ name: budgetName, namespace, body }));
      logger.info(`updated PodDisruptionBudget ${namespace}/${budgetName}`, { minAvailable: budget.spec!.minAvailable });
    }

    if (this.agentClients !== undefined) await this.ensureNetworkPolicy(cluster, this.agentClients);

    if (cluster.spec.agent.enabled) {
      const name = agentSecretName(cluster);
      const existing = await this.optional('Secret', namespace, name, 'read', () => this.core.readNamespacedSecret({ name, namespace }));
      // Created once: agents already running read it at their start, so it is never rotated here.
      if (!existing) {
        const token = randomBytes(32).toString('hex');
        await this.create('Secret', namespace, name, () => this.core.createNamespacedSecret({ namespace, body: agentSecret(cluster, token) }));
      }
      const tlsName = agentTlsSecretName(cluster);
      const existingTls = await this.optional('Secret', namespace, tlsName, 'read', () => this.core.readNamespacedSecret({ name: tlsName, namespace }));
      // Created once as well: a new CA would not be trusted by the certificate the running agents hold.
      if (!existingTls) {
        const bundle = await certificateAuthorityBundle(`etcd-robustness agents of ${namespace}/${cluster.metadata.name}`, agentCertificateHosts(cluster, this.clusterDomain));
        await this.create('Secret', namespace, tlsName, () => this.core.createNamespacedSecret({ namespace, body: agentTlsSecret(cluster, bundle) }));
      }
    }
  }

  private async ensureNetworkPolicy(cluster: EtcdCluster, agentClients: AgentClientPods): Promise<void> {
    const namespace = clusterNamespace(cluster);
    const name = networkPolicyName(cluster);
    const wanted = memberNetworkPolicy(cluster, agentClients);
    const existing = await this.optional('NetworkPolicy', namespace, name, 'read', () => this.networking.readNamespacedNetworkPolicy({ name, namespace }));
    if (!existing) {
      await this.create('NetworkPolicy', namespace, name, () => this.networking.createNamespacedNetworkPolicy({ namespace, body: wanted }));
    } else if (canonicalJson(existing.spec) !== canonicalJson(wanted.spec)) {
      // Another operator release (other Pod labels) or a hand edit: put it back, with the read resourceVersion.
      const body = { apiVersion: wanted.apiVersion, kind: wanted.kind, metadata: existing.metadata, spec: wanted.spec };
      await this.call('NetworkPolicy', namespace, name, 'update', () => this.networking.replaceNamespacedNetworkPolicy({ name, namespace, body }));
      logger.info(`updated NetworkPolicy ${namespace}/${name}`);
    }
  }

  addresses(cluster: EtcdCluster, member: string): Promise<{ clientUrl: string; peerUrl: string }> {
    return Promise.resolve().then(() => {
      this.checkNames(cluster, member);
      const { clientUrl, peerUrl } = memberAddresses(cluster, member, this.clusterDomain);
      return { clientUrl, peerUrl };
    });
  }

  async listMembers(cluster: EtcdCluster): Promise<PlacedMember[]> {
    this.checkNames(cluster);
    const namespace = clusterNamespace(cluster);
    const labelSelector = clusterLabelSelector(cluster);
    const [pods, claims] = await Promise.all([
      this.call('Pod', namespace, labelSelector, 'list', () => this.core.listNamespacedPod({ namespace, labelSelector })),
      this.call('PersistentVolumeClaim', namespace, labelSelector, 'list', () => this.core.listNamespacedPersistentVolumeClaim({ namespace, labelSelector })),
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
    this.checkNames(cluster, launch.name);
    const namespace = clusterNamespace(cluster);
    const pod = await this.readPod(namespace, launch.name);
    if (pod) {
      this.checkOwned(cluster, 'Pod', pod.metadata);
      return;
    }
    const claimName = dataClaimName(launch.name);
    let claim = await this.readClaim(namespace, claimName);
    if (!claim && launch.restart === true) {
      // The PVC went between the listing and this start (deleted with its Pod): the member's data is gone.
      throw new PlacementError('PersistentVolumeClaim', `${namespace}/${claimName}`, `is gone: member ${launch.name} cannot restart without its data; it will be replaced`, { statusCode: 409 });
    }
    if (!claim) {
      const created = await this.create('PersistentVolumeClaim', namespace, claimName, () =>
        this.core.createNamespacedPersistentVolumeClaim({ namespace, body: dataClaim(cluster, launch) }),
      );
      // Lost a race with another writer: go on with theirs.
      if (!created) claim = await this.readClaim(namespace, claimName);
    }
    let effective = launch;
    let version = launch.version ?? cluster.spec.version;
    if (claim) {
      this.checkOwned(cluster, 'PersistentVolumeClaim', claim.metadata);
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
      if (recordedVersion === undefined) await this.recordVersion(namespace, claim, version);
    }
    this.checkVersion(cluster, launch.name, version);
    const body = memberPod(cluster, { ...effective, version }, { clusterDomain: this.clusterDomain, operatorImage: this.operatorImage });
    await this.create('Pod', namespace, launch.name, () => this.core.createNamespacedPod({ namespace, body }));
  }

  private checkOwned(cluster: EtcdCluster, kind: string, metadata: { name?: string; labels?: Record<string, string> } | undefined): void {
    if (metadata?.labels?.[labelKeys.cluster] !== cluster.metadata.name) {
      throw new PlacementError(kind, `${clusterNamespace(cluster)}/${metadata?.name ?? '?'}`, `exists and does not belong to EtcdCluster ${cluster.metadata.name}`, { statusCode: 409 });
    }
  }

  async fenceMember(cluster: EtcdCluster, member: string): Promise<void> {
    await Promise.reject(new PlacementError('EtcdCluster', `${cluster.metadata.namespace ?? 'default'}/${cluster.metadata.name}`, `cannot fence ${member}: the kubernetes placement does not support the twoNodeWitness topology yet`));
  }

  async recoverSurvivor(cluster: EtcdCluster, member: string): Promise<void> {
    await Promise.reject(new PlacementError('EtcdCluster', `${cluster.metadata.namespace ?? 'default'}/${cluster.metadata.name}`, `cannot recover ${member}: the kubernetes placement does not support the twoNodeWitness topology yet`));
  }

  async finishRecovery(cluster: EtcdCluster, member: string): Promise<void> {
    await Promise.reject(new PlacementError('EtcdCluster', `${cluster.metadata.namespace ?? 'default'}/${cluster.metadata.name}`, `cannot finish the recovery of ${member}: the kubernetes placement does not support the twoNodeWitness topology yet`));
  }

  /** A member version must be an etcd release version: it becomes the etcd image's tag. */
  private checkVersion(cluster: EtcdCluster, member: string, version: string): void {
    if (!memberVersionPattern.test(version)) {
      throw new PlacementError('Pod', `${clusterNamespace(cluster)}/${member}`, `cannot run etcd ${JSON.stringify(version)}: not an etcd release version (e.g. 3.6.16), so no image tag`, { statusCode: 422 });
    }
  }

  /** Writes the member's version on its PVC (a replace at the read resourceVersion: a concurrent change fails with 409). */
  private async recordVersion(namespace: string, claim: V1PersistentVolumeClaim, version: string): Promise<void> {
    const name = claim.metadata!.name!;
    const metadata = claim.metadata!;
    metadata.annotations = { ...metadata.annotations, [versionAnnotation]: version };
    await this.call('PersistentVolumeClaim', namespace, name, 'record the version', () => this.core.replaceNamespacedPersistentVolumeClaim({ name, namespace, body: claim }));
    logger.info(`PersistentVolumeClaim ${namespace}/${name}: the member's etcd version is ${version}`);
  }

  /**
   * Records `version` on the member's PVC, deletes its Pod gracefully (the kubelet stops etcd with SIGTERM
   * within the grace period), waits until it is gone and creates it again on the PVC with the image of
   * `version`. Each step is skipped when done: a call that failed half-way (a Pod slow to terminate) is
   * finished by the next one, and a member whose PVC and Pod both say `version` is left alone. The image's
   * existence cannot be checked here: a tag the registry lacks shows as a Pod that fails to pull.
   */
  async upgradeMember(cluster: EtcdCluster, member: string, version: string): Promise<void> {
    this.checkNames(cluster, member);
    this.checkVersion(cluster, member, version);
    const namespace = clusterNamespace(cluster);
    const claimName = dataClaimName(member);
    const claim = await this.readClaim(namespace, claimName);
    if (!claim) throw new PlacementError('PersistentVolumeClaim', `${namespace}/${claimName}`, `not found: member ${member} has no data to upgrade`, { statusCode: 404 });
    this.checkOwned(cluster, 'PersistentVolumeClaim', claim.metadata);
    const launch = parseLaunch(claim.metadata?.annotations?.[launchAnnotation]);
    if (!launch) throw new PlacementError('PersistentVolumeClaim', `${namespace}/${claimName}`, `has no valid ${launchAnnotation} annotation: member ${member} cannot be recreated`, { statusCode: 422 });
    const pod = await this.readPod(namespace, member);
    if (pod) this.checkOwned(cluster, 'Pod', pod.metadata);
    const podAt = pod === undefined ? undefined : (podVersion(pod) ?? cluster.spec.version);
    const from = podAt ?? claimVersion(claim) ?? cluster.spec.version;
    if (claimVersion(claim) === version && (podAt === undefined || podAt === version)) {
      // Recorded already; with no Pod, startMember (the reconcile) creates it on `version`.
      return;
    }
    // Recorded first: from here on, whoever recreates the Pod (this call, a reconcile, a restart) uses it.
    if (claimVersion(claim) !== version) await this.recordVersion(namespace, claim, version);
    if (pod && podAt !== version) {
      logger.info(`upgrading member ${namespace}/${member}: deleting its Pod`, { from, to: version });
      await this.deletePod(namespace, member, memberGracePeriodSeconds);
      await this.waitGone('Pod', namespace, member, pod.metadata?.uid, () => this.readPod(namespace, member));
    }
    await this.startMember(cluster, { ...launch, version });
    logger.info(`upgraded member ${namespace}/${member}`, { from, to: version });
  }

  async deleteMember(cluster: EtcdCluster, member: string): Promise<void> {
    this.checkNames(cluster, member);
    const namespace = clusterNamespace(cluster);
    await this.deletePod(namespace, member, memberGracePeriodSeconds);
    await this.deleteClaim(namespace, dataClaimName(member));
    logger.info(`deleted member ${namespace}/${member} (Pod and PVC)`);
  }

  async deleteCluster(cluster: EtcdCluster): Promise<void> {
    this.checkNames(cluster);
    const namespace = clusterNamespace(cluster);
    const labelSelector = clusterLabelSelector(cluster);
    const pods = await this.call('Pod', namespace, labelSelector, 'list', () => this.core.listNamespacedPod({ namespace, labelSelector }));
    await Promise.all(pods.items.map((pod) => this.deletePod(namespace, pod.metadata!.name!, memberGracePeriodSeconds)));
    const claims = await this.call('PersistentVolumeClaim', namespace, labelSelector, 'list', () => this.core.listNamespacedPersistentVolumeClaim({ namespace, labelSelector }));
    await Promise.all(claims.items.map((claim) => this.deleteClaim(namespace, claim.metadata!.name!)));
    for (const name of [peerServiceName(cluster), clientServiceName(cluster)]) {
      await this.optional('Service', namespace, name, 'delete', () => this.core.deleteNamespacedService({ name, namespace }));
    }
    const budget = disruptionBudgetName(cluster);
    await this.optional('PodDisruptionBudget', namespace, budget, 'delete', () => this.policy.deleteNamespacedPodDisruptionBudget({ name: budget, namespace }));
    if (this.agentClients !== undefined) {
      const policyName = networkPolicyName(cluster);
      await this.optional('NetworkPolicy', namespace, policyName, 'delete', () => this.networking.deleteNamespacedNetworkPolicy({ name: policyName, namespace }));
    }
    for (const secret of [agentSecretName(cluster), agentTlsSecretName(cluster)]) {
      await this.optional('Secret', namespace, secret, 'delete', () => this.core.deleteNamespacedSecret({ name: secret, namespace }));
    }
    for (const key of this.podMissingSince.keys()) if (key.startsWith(`${namespace}/${cluster.metadata.name}/`)) this.podMissingSince.delete(key);
    logger.info(`deleted EtcdCluster ${namespace}/${cluster.metadata.name}'s objects`, { pods: pods.items.length, claims: claims.items.length });
  }

  async clientEndpoints(cluster: EtcdCluster): Promise<string[]> {
    const members = await this.listMembers(cluster);
    return members.map((m) => m.clientUrl).sort();
  }

  /**
   * The CA of spec.tls.client, read from `ca.crt` of its Secret at each call (a rotated CA is picked up
   * by the next reconcile). A missing Secret, a missing key or one that holds no certificate is a
   * ClientTlsUnavailableError naming them; so is an RBAC refusal (the operator's Role needs get on secrets).
   */
  async clientTls(cluster: EtcdCluster): Promise<EtcdClientTls | undefined> {
    const secretName = cluster.spec.tls?.client?.secretName;
    if (secretName === undefined) return undefined;
    const namespace = clusterNamespace(cluster);
    const where = `${namespace}/${secretName}`;
    let secret;
    try {
      secret = await this.optional('Secret', namespace, secretName, 'read', () => this.core.readNamespacedSecret({ name: secretName, namespace }));
    } catch (error) {
      if (error instanceof PlacementError && error.statusCode === 403) {
        throw new ClientTlsUnavailableError(where, undefined, `the operator may not read it (needs get on secrets): ${error.message}`, { cause: error });
      }
      throw error;
    }
    if (!secret) {
      throw new ClientTlsUnavailableError(where, undefined, `not found: spec.tls.client names it, and the operator reads the CA of the members' client certificates from its ${clientCaKey}`);
    }
    const encoded = secret.data?.[clientCaKey];
    if (encoded === undefined || encoded === '') {
      const keys = Object.keys(secret.data ?? {}).sort();
      throw new ClientTlsUnavailableError(where, clientCaKey, `missing (the Secret has ${keys.length === 0 ? 'no keys' : keys.join(', ')}): the operator verifies the members' client certificates with the CA it holds`);
    }
    const ca = Buffer.from(encoded, 'base64');
    try {
      new X509Certificate(ca); // parsed only to refuse what is no certificate
    } catch (error) {
      throw new ClientTlsUnavailableError(where, clientCaKey, `holds no PEM certificate: ${(error as Error).message}`, { cause: error });
    }
    return { ca };
  }

  async faultRuntime(cluster: EtcdCluster): Promise<MemberRuntime> {
    const runtime = new KubernetesMemberRuntime(this, cluster, await this.clientTls(cluster), await this.agentCa(cluster));
    await runtime.create();
    return runtime;
  }

  async agentToken(cluster: EtcdCluster): Promise<string | undefined> {
    if (!cluster.spec.agent.enabled) return undefined;
    const namespace = clusterNamespace(cluster);
    const name = agentSecretName(cluster);
    const secret = await this.optional('Secret', namespace, name, 'read', () => this.core.readNamespacedSecret({ name, namespace }));
    const encoded = secret?.data?.[agentTokenKey];
    return encoded === undefined ? undefined : Buffer.from(encoded, 'base64').toString('utf8').trim();
  }

  /** The CA (PEM) of the cluster's agents' serving certificate; undefined without agents or before ensureCluster made it. */
  async agentCa(cluster: EtcdCluster): Promise<string | undefined> {
    if (!cluster.spec.agent.enabled) return undefined;
    const namespace = clusterNamespace(cluster);
    const name = agentTlsSecretName(cluster);
    const secret = await this.optional('Secret', namespace, name, 'read', () => this.core.readNamespacedSecret({ name, namespace }));
    const encoded = secret?.data?.[agentTlsKeys.ca];
    return encoded === undefined ? undefined : Buffer.from(encoded, 'base64').toString('utf8');
  }

  close(): Promise<void> {
    return Promise.resolve(); // Pods stay: they are the cluster's, not this process's
  }

  // ---- what the fault runtime does to one member ----

  /** Deletes the member's Pod and waits until it is gone. */
  async deletePodAndWait(cluster: EtcdCluster, member: string, gracePeriodSeconds: number): Promise<void> {
    this.checkNames(cluster, member);
    const namespace = clusterNamespace(cluster);
    const pod = await this.readPod(namespace, member);
    if (!pod) return;
    await this.deletePod(namespace, member, gracePeriodSeconds);
    await this.waitGone('Pod', namespace, member, pod.metadata?.uid, () => this.readPod(namespace, member));
  }

  /** Deletes the member's PVC (after its Pod) and waits until it is gone. */
  async deleteClaimAndWait(cluster: EtcdCluster, member: string): Promise<void> {
    const namespace = clusterNamespace(cluster);
    const name = dataClaimName(member);
    const claim = await this.readClaim(namespace, name);
    if (!claim) return;
    await this.deleteClaim(namespace, name);
    await this.waitGone('PersistentVolumeClaim', namespace, name, claim.metadata?.uid, () => this.readClaim(namespace, name));
  }

  /** Starts the member's Pod again from its PVC (the launch recorded there). */
  async recreateMember(cluster: EtcdCluster, member: string): Promise<void> {
    const namespace = clusterNamespace(cluster);
    const claimName = dataClaimName(member);
    const claim = await this.readClaim(namespace, claimName);
    const launch = parseLaunch(claim?.metadata?.annotations?.[launchAnnotation]);
    if (!launch) {
      throw new PlacementError('PersistentVolumeClaim', `${namespace}/${claimName}`, claim ? `has no valid ${launchAnnotation} annotation` : 'not found: the member has no data to restart with', {
        statusCode: claim ? 422 : 404,
      });
    }
    await this.startMember(cluster, launch);
  }
}

/** How long members() serves a cached list before it refreshes it in the background. */
const memberCacheMs = 2000;

/**
 * A cluster's members as the run engine and the fault executor drive them. Like the local runtime, a
 * stopped or killed member stays down until restart (or until the operator's next reconcile starts its
 * Pod again from the PVC).
 */
class KubernetesMemberRuntime implements MemberRuntime {
  readonly clusterName: string;
  /** The operator created the cluster, not the run: a run never owns it. */
  readonly created = false;
  readonly clientTls: EtcdClientTls | undefined;
  private readonly placement: KubernetesPlacement;
  private readonly cluster: EtcdCluster;
  private readonly agentCa: string | undefined;
  private cache: RuntimeMember[] = [];
  private refreshedAt = 0;
  private refreshing: Promise<void> | undefined;
  private closed = false;

  constructor(placement: KubernetesPlacement, cluster: EtcdCluster, clientTls: EtcdClientTls | undefined, agentCa: string | undefined) {
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

  private async refresh(): Promise<void> {
    const placed = await this.placement.listMembers(this.cluster);
    this.cache = placed.map((m) => {
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
