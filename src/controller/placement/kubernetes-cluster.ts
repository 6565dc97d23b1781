/**
 * The objects of the `kubernetes` member placement that a cluster has beside its members' Pods and PVCs:
 * the peer and client Services, the PodDisruptionBudget, the members' NetworkPolicy (with agentClients),
 * and the fault agents' token and TLS Secrets. Made (and put back when changed) by ensureCluster, deleted
 * by deleteCluster of ./kubernetes.ts; the objects themselves are built in ./kubernetes-manifests.ts.
 */
import { randomBytes } from 'node:crypto';
import type { EtcdCluster } from '../../domain/index.ts';
import { logger } from '../../log.ts';
import { certificateAuthorityBundle } from '../kit/index.ts';
import type { KubeObjects } from './kubernetes-api.ts';
import {
  agentCertificateHosts,
  agentSecret,
  agentSecretName,
  agentTlsSecret,
  agentTlsSecretName,
  clientService,
  clientServiceName,
  clusterNamespace,
  disruptionBudget,
  disruptionBudgetName,
  memberNetworkPolicy,
  networkPolicyName,
  peerService,
  peerServiceName,
  type AgentClientPods,
} from './kubernetes-manifests.ts';

export interface ClusterObjectsOptions {
  clusterDomain: string;
  /** Present: the cluster gets a NetworkPolicy that admits the agents' port only from these Pods. */
  agentClients: AgentClientPods | undefined;
}

/** JSON with object keys sorted: the client library's models list fields in their own order. */
function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => a.localeCompare(b))) : v,
  );
}

/** Creates what is missing of the cluster's objects, and puts back a budget or policy that differs. */
export async function ensureClusterObjects(api: KubeObjects, cluster: EtcdCluster, options: ClusterObjectsOptions): Promise<void> {
  const namespace = clusterNamespace(cluster);
  for (const service of [peerService(cluster), clientService(cluster)]) {
    const name = service.metadata!.name!;
    const existing = await api.optional('Service', namespace, name, 'read', () => api.core.readNamespacedService({ name, namespace }));
    if (!existing) await api.create('Service', namespace, name, () => api.core.createNamespacedService({ namespace, body: service }));
  }
  await ensureDisruptionBudget(api, cluster);
  if (options.agentClients !== undefined) await ensureNetworkPolicy(api, cluster, options.agentClients);
  if (cluster.spec.agent.enabled) await ensureAgentSecrets(api, cluster, options.clusterDomain);
}

async function ensureDisruptionBudget(api: KubeObjects, cluster: EtcdCluster): Promise<void> {
  const namespace = clusterNamespace(cluster);
  const budget = disruptionBudget(cluster);
  const budgetName = disruptionBudgetName(cluster);
  const existingBudget = await api.optional('PodDisruptionBudget', namespace, budgetName, 'read', () => api.policy.readNamespacedPodDisruptionBudget({ name: budgetName, namespace }));
  if (!existingBudget) {
    await api.create('PodDisruptionBudget', namespace, budgetName, () => api.policy.createNamespacedPodDisruptionBudget({ namespace, body: budget }));
  } else if (
    existingBudget.spec?.minAvailable !== budget.spec!.minAvailable ||
    existingBudget.spec?.maxUnavailable !== undefined ||
    JSON.stringify(existingBudget.spec?.selector?.matchLabels ?? {}) !== JSON.stringify(budget.spec!.selector!.matchLabels)
  ) {
    // A replace with the read resourceVersion: a concurrent change makes it fail (409) and the
    // reconcile retries, instead of one writer silently undoing the other.
    const body = { apiVersion: budget.apiVersion, kind: budget.kind, metadata: existingBudget.metadata, spec: budget.spec };
    await api.call('PodDisruptionBudget', namespace, budgetName, 'update', () => api.policy.replaceNamespacedPodDisruptionBudget({ name: budgetName, namespace, body }));
    logger.info(`updated PodDisruptionBudget ${namespace}/${budgetName}`, { minAvailable: budget.spec!.minAvailable });
  }
}

async function ensureNetworkPolicy(api: KubeObjects, cluster: EtcdCluster, agentClients: AgentClientPods): Promise<void> {
  const namespace = clusterNamespace(cluster);
  const name = networkPolicyName(cluster);
  const wanted = memberNetworkPolicy(cluster, agentClients);
  const existing = await api.optional('NetworkPolicy', namespace, name, 'read', () => api.networking.readNamespacedNetworkPolicy({ name, namespace }));
  if (!existing) {
    await api.create('NetworkPolicy', namespace, name, () => api.networking.createNamespacedNetworkPolicy({ namespace, body: wanted }));
  } else if (canonicalJson(existing.spec) !== canonicalJson(wanted.spec)) {
    // Another operator release (other Pod labels) or a hand edit: put it back, with the read resourceVersion.
    const body = { apiVersion: wanted.apiVersion, kind: wanted.kind, metadata: existing.metadata, spec: wanted.spec };
    await api.call('NetworkPolicy', namespace, name, 'update', () => api.networking.replaceNamespacedNetworkPolicy({ name, namespace, body }));
    logger.info(`updated NetworkPolicy ${namespace}/${name}`);
  }
}

async function ensureAgentSecrets(api: KubeObjects, cluster: EtcdCluster, clusterDomain: string): Promise<void> {
  const namespace = clusterNamespace(cluster);
  const name = agentSecretName(cluster);
  const existing = await api.optional('Secret', namespace, name, 'read', () => api.core.readNamespacedSecret({ name, namespace }));
  // Created once: agents already running read it at their start, so it is never rotated here.
  if (!existing) {
    const token = randomBytes(32).toString('hex');
    await api.create('Secret', namespace, name, () => api.core.createNamespacedSecret({ namespace, body: agentSecret(cluster, token) }));
  }
  const tlsName = agentTlsSecretName(cluster);
  const existingTls = await api.optional('Secret', namespace, tlsName, 'read', () => api.core.readNamespacedSecret({ name: tlsName, namespace }));
  // Created once as well: a new CA would not be trusted by the certificate the running agents hold.
  if (!existingTls) {
    const bundle = await certificateAuthorityBundle(`etcd-robustness agents of ${namespace}/${cluster.metadata.name}`, agentCertificateHosts(cluster, clusterDomain));
    await api.create('Secret', namespace, tlsName, () => api.core.createNamespacedSecret({ namespace, body: agentTlsSecret(cluster, bundle) }));
  }
}

/** Deletes the cluster's objects beside its members (each one that is there). */
export async function deleteClusterObjects(api: KubeObjects, cluster: EtcdCluster, agentClients: AgentClientPods | undefined): Promise<void> {
  const namespace = clusterNamespace(cluster);
  for (const name of [peerServiceName(cluster), clientServiceName(cluster)]) {
    await api.optional('Service', namespace, name, 'delete', () => api.core.deleteNamespacedService({ name, namespace }));
  }
  const budget = disruptionBudgetName(cluster);
  await api.optional('PodDisruptionBudget', namespace, budget, 'delete', () => api.policy.deleteNamespacedPodDisruptionBudget({ name: budget, namespace }));
  if (agentClients !== undefined) {
    const policyName = networkPolicyName(cluster);
    await api.optional('NetworkPolicy', namespace, policyName, 'delete', () => api.networking.deleteNamespacedNetworkPolicy({ name: policyName, namespace }));
  }
  for (const secret of [agentSecretName(cluster), agentTlsSecretName(cluster)]) {
    await api.optional('Secret', namespace, secret, 'delete', () => api.core.deleteNamespacedSecret({ name: secret, namespace }));
  }
}
