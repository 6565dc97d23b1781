/**
 * What the `kubernetes` member placement (./kubernetes.ts) reads from Secrets at each call: the CA of
 * spec.tls.client's Secret (clientTls), the fault agents' token and the CA of their serving certificate.
 */
import { X509Certificate } from 'node:crypto';
import type { EtcdClientTls, EtcdCluster } from '../../domain/index.ts';
import { ClientTlsUnavailableError } from '../../domain/index.ts';
import { PlacementError, type KubeObjects } from './kubernetes-api.ts';
import { agentSecretName, agentTlsKeys, agentTlsSecretName, agentTokenKey, clusterNamespace } from './kubernetes-manifests.ts';

/** The key of spec.tls.client's Secret that holds the CA (kubernetes.io/tls Secrets carry it as ca.crt). */
export const clientCaKey = 'ca.crt';

/**
 * The CA of spec.tls.client, read from `ca.crt` of its Secret at each call (a rotated CA is picked up
 * by the next reconcile). A missing Secret, a missing key or one that holds no certificate is a
 * ClientTlsUnavailableError naming them; so is an RBAC refusal (the operator's Role needs get on secrets).
 */
export async function readClientTls(api: KubeObjects, cluster: EtcdCluster): Promise<EtcdClientTls | undefined> {
  const secretName = cluster.spec.tls?.client?.secretName;
  if (secretName === undefined) return undefined;
  const namespace = clusterNamespace(cluster);
  const where = `${namespace}/${secretName}`;
  let secret;
  try {
    secret = await api.optional('Secret', namespace, secretName, 'read', () => api.core.readNamespacedSecret({ name: secretName, namespace }));
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

/** The fault agents' bearer token; undefined without agents or before ensureCluster made it. */
export async function readAgentToken(api: KubeObjects, cluster: EtcdCluster): Promise<string | undefined> {
  if (!cluster.spec.agent.enabled) return undefined;
  const namespace = clusterNamespace(cluster);
  const name = agentSecretName(cluster);
  const secret = await api.optional('Secret', namespace, name, 'read', () => api.core.readNamespacedSecret({ name, namespace }));
  const encoded = secret?.data?.[agentTokenKey];
  return encoded === undefined ? undefined : Buffer.from(encoded, 'base64').toString('utf8').trim();
}

/** The CA (PEM) of the cluster's agents' serving certificate; undefined without agents or before ensureCluster made it. */
export async function readAgentCa(api: KubeObjects, cluster: EtcdCluster): Promise<string | undefined> {
  if (!cluster.spec.agent.enabled) return undefined;
  const namespace = clusterNamespace(cluster);
  const name = agentTlsSecretName(cluster);
  const secret = await api.optional('Secret', namespace, name, 'read', () => api.core.readNamespacedSecret({ name, namespace }));
  const encoded = secret?.data?.[agentTlsKeys.ca];
  return encoded === undefined ? undefined : Buffer.from(encoded, 'base64').toString('utf8');
}
