/**
 * The Kubernetes API calls of the `kubernetes` member placement (./kubernetes.ts): PlacementError, which
 * every failed call becomes, the checks that raise it before a call is made, and KubeObjects, the reads,
 * creates, deletes and waits on the objects of the placement.
 */
import { CoreV1Api, NetworkingV1Api, PolicyV1Api, type KubeConfig, type V1PersistentVolumeClaim, type V1Pod } from '@kubernetes/client-node';
import type { EtcdCluster } from '../../domain/index.ts';
import { logger } from '../../log.ts';
import { pollUntil } from '../../poll.ts';
import { apiErrorMessage, apiStatusCode } from '../kube-api.ts';
import { checkNames, clusterNamespace, labelKeys, ManifestNameError, memberVersionPattern, versionAnnotation } from './kubernetes-manifests.ts';

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

// ---- checks before a call: each refusal is a PlacementError naming the object ----

/** The cluster's (and the member's) names make valid object names, and the cluster has a uid for owner references. */
export function checkClusterNames(cluster: EtcdCluster, member?: string): void {
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

/** An object under a member's name that another cluster (or someone else) made is never taken over. */
export function checkOwned(cluster: EtcdCluster, kind: string, metadata: { name?: string; labels?: Record<string, string> } | undefined): void {
  if (metadata?.labels?.[labelKeys.cluster] !== cluster.metadata.name) {
    throw new PlacementError(kind, `${clusterNamespace(cluster)}/${metadata?.name ?? '?'}`, `exists and does not belong to EtcdCluster ${cluster.metadata.name}`, { statusCode: 409 });
  }
}

/** A member version must be an etcd release version: it becomes the etcd image's tag. */
export function checkVersion(cluster: EtcdCluster, member: string, version: string): void {
  if (!memberVersionPattern.test(version)) {
    throw new PlacementError('Pod', `${clusterNamespace(cluster)}/${member}`, `cannot run etcd ${JSON.stringify(version)}: not an etcd release version (e.g. 3.6.16), so no image tag`, { statusCode: 422 });
  }
}

export interface KubeObjectsOptions {
  kubeConfig: KubeConfig;
  /** How long a wait for a deleted Pod or PVC to be gone lasts. */
  deleteTimeoutMs: number;
  /** How often it looks. */
  pollIntervalMs: number;
}

/** The API clients of the placement, and the calls it makes with them. */
export class KubeObjects {
  readonly core: CoreV1Api;
  readonly policy: PolicyV1Api;
  readonly networking: NetworkingV1Api;
  private readonly deleteTimeoutMs: number;
  private readonly pollIntervalMs: number;

  constructor(options: KubeObjectsOptions) {
    this.core = options.kubeConfig.makeApiClient(CoreV1Api);
    this.policy = options.kubeConfig.makeApiClient(PolicyV1Api);
    this.networking = options.kubeConfig.makeApiClient(NetworkingV1Api);
    this.deleteTimeoutMs = options.deleteTimeoutMs;
    this.pollIntervalMs = options.pollIntervalMs;
  }

  // ---- every error becomes a PlacementError; `optional` turns a 404 into undefined ----

  async call<T>(kind: string, namespace: string, name: string, what: string, request: () => Promise<T>): Promise<T> {
    try {
      return await request();
    } catch (error) {
      const statusCode = apiStatusCode(error);
      throw new PlacementError(kind, `${namespace}/${name}`, `${what}: ${apiErrorMessage(error)}`, { ...(statusCode === undefined ? {} : { statusCode }), cause: error });
    }
  }

  async optional<T>(kind: string, namespace: string, name: string, what: string, request: () => Promise<T>): Promise<T | undefined> {
    try {
      return await this.call(kind, namespace, name, what, request);
    } catch (error) {
      if (error instanceof PlacementError && error.statusCode === 404) return undefined;
      throw error;
    }
  }

  /** Creates an object; false when it exists already (409), which is fine for an idempotent create. */
  async create(kind: string, namespace: string, name: string, request: () => Promise<unknown>): Promise<boolean> {
    try {
      await this.call(kind, namespace, name, 'create', request);
      logger.info(`created ${kind} ${namespace}/${name}`);
      return true;
    } catch (error) {
      if (error instanceof PlacementError && error.statusCode === 409) return false;
      throw error;
    }
  }

  readPod(namespace: string, name: string): Promise<V1Pod | undefined> {
    return this.optional('Pod', namespace, name, 'read', () => this.core.readNamespacedPod({ name, namespace }));
  }

  readClaim(namespace: string, name: string): Promise<V1PersistentVolumeClaim | undefined> {
    return this.optional('PersistentVolumeClaim', namespace, name, 'read', () => this.core.readNamespacedPersistentVolumeClaim({ name, namespace }));
  }

  async deletePod(namespace: string, name: string, gracePeriodSeconds: number): Promise<void> {
    await this.optional('Pod', namespace, name, 'delete', () => this.core.deleteNamespacedPod({ name, namespace, gracePeriodSeconds }));
  }

  async deleteClaim(namespace: string, name: string): Promise<void> {
    await this.optional('PersistentVolumeClaim', namespace, name, 'delete', () => this.core.deleteNamespacedPersistentVolumeClaim({ name, namespace }));
  }

  /** Polls until `read` finds no object of `uid` (gone, or replaced by a new one). */
  async waitGone(kind: string, namespace: string, name: string, uid: string | undefined, read: () => Promise<{ metadata?: { uid?: string } } | undefined>): Promise<void> {
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

  /** Writes the member's version on its PVC (a replace at the read resourceVersion: a concurrent change fails with 409). */
  async recordVersion(namespace: string, claim: V1PersistentVolumeClaim, version: string): Promise<void> {
    const name = claim.metadata!.name!;
    const metadata = claim.metadata!;
    metadata.annotations = { ...metadata.annotations, [versionAnnotation]: version };
    await this.call('PersistentVolumeClaim', namespace, name, 'record the version', () => this.core.replaceNamespacedPersistentVolumeClaim({ name, namespace, body: claim }));
    logger.info(`PersistentVolumeClaim ${namespace}/${name}: the member's etcd version is ${version}`);
  }
}
