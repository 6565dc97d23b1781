/**
 * What an etcd client needs to reach a cluster whose client listener serves TLS (EtcdClusterSpec
 * tls.client): the CA that signed the members' certificates, and a client certificate only for a
 * cluster that also asks for one. Every client of a cluster (the reconciler's, the run's probes and
 * watches, the fault executor's) gets it from one place: MemberPlacement.clientTls, and the
 * MemberRuntime that placement hands out (MemberRuntime.clientTls).
 */
export interface EtcdClientTls {
  /** PEM: the CA bundle the members' client-listener certificates chain to. */
  ca: Buffer;
  /** PEM: a client certificate and its key, for members started with client-cert auth; absent: server TLS only. */
  clientCertificate?: { cert: Buffer; key: Buffer };
}

/**
 * A cluster asks for client TLS and its CA cannot be had: names the Secret and, when the Secret exists,
 * the key that is missing or unusable. The operator cannot talk to such a cluster at all (every URL is
 * https), so the reconciler reports it on the EtcdCluster and waits for the Secret to be fixed.
 */
export class ClientTlsUnavailableError extends Error {
  override name = 'ClientTlsUnavailableError';
  /** `namespace/name` of the Secret (spec.tls.client.secretName). */
  readonly secret: string;
  /** The key at fault (e.g. `ca.crt`); undefined when the Secret itself could not be read. */
  readonly key: string | undefined;

  constructor(secret: string, key: string | undefined, message: string, options: { cause?: unknown } = {}) {
    super(`Secret ${secret}${key === undefined ? '' : ` key ${key}`}: ${message}`, options.cause === undefined ? undefined : { cause: options.cause });
    this.secret = secret;
    this.key = key;
  }
}
