/**
 * Witness stores in Kubernetes objects, written with resourceVersion preconditions (the API server's
 * optimistic concurrency is a compare-and-swap on its own consistent store):
 *
 * - LeaseWitness: a coordination.k8s.io/v1 Lease. The record is JSON in the annotation
 *   `etcd.robustness.io/witness-record`; spec.holderIdentity mirrors its owner and spec.leaseTransitions
 *   its epoch, for humans (`kubectl get lease`). It is not a leader-election Lease: no renewTime, no
 *   duration; nothing reads the mirrored fields.
 * - ConfigMapWitness: a ConfigMap; the record is JSON in data key `record`.
 *
 * version is metadata.resourceVersion ('' when the object does not exist). read() is a GET (a quorum
 * read, never a cache). compareAndSwap: '' creates the object (409 AlreadyExists: lost); otherwise a GET,
 * the version and witnessWriteRefusal checks, then a PUT carrying the expected resourceVersion (409
 * Conflict: lost, the current record read again). An object that exists without a valid record (someone
 * else's object of that name, or a hand-edited record) is a WitnessRecordError and is never overwritten.
 * Connection errors, timeouts and unexpected API answers (5xx, 403, ...) are WitnessUnavailableError;
 * after one from compareAndSwap the outcome of the write is unknown: read again.
 */
import {
  CoordinationV1Api,
  CoreV1Api,
  type ConfigurationOptions,
  type KubeConfig,
  type V1ConfigMap,
  type V1Lease,
  type V1ObjectMeta,
} from '@kubernetes/client-node';
import {
  parseWitnessRecord,
  WitnessRecordError,
  WitnessUnavailableError,
  witnessWriteRefusal,
  type VersionedWitnessRecord,
  type Witness,
  type WitnessRecord,
  type WitnessWriteResult,
} from '../../domain/witness.ts';
import { apiErrorMessage, apiStatusCode, requestTimeout } from '../kube-api.ts';

/** The Lease annotation holding the record as JSON. */
export const witnessRecordAnnotation = 'etcd.robustness.io/witness-record';
/** The ConfigMap data key holding the record as JSON. */
export const witnessRecordDataKey = 'record';
/** Default per-request timeout of the Kubernetes stores. */
export const defaultKubeWitnessTimeoutMs = 5000;

export interface KubeWitnessObject {
  namespace: string;
  name: string;
}

export interface KubeWitnessOptions {
  /** Per API request (default 5 s); a request that takes longer is a WitnessUnavailableError. */
  timeoutMs?: number;
}

function errorMessage(error: unknown): string {
  if (error instanceof Error && error.name === 'TimeoutError') return error.message;
  const cause = error instanceof Error ? (error.cause as { message?: unknown; code?: unknown } | undefined) : undefined;
  const detail = typeof cause?.code === 'string' ? cause.code : typeof cause?.message === 'string' ? cause.message : undefined;
  return `${apiErrorMessage(error)}${detail !== undefined ? ` (${detail})` : ''}`;
}

/**
 * The compare-and-swap protocol over one Kubernetes object of type T; subclasses say how the object is
 * read, created and replaced and where the record sits in it.
 */
abstract class KubeObjectWitness<T extends { metadata?: V1ObjectMeta }> implements Witness {
  readonly description: string;
  readonly namespace: string;
  readonly name: string;
  protected readonly options: ConfigurationOptions;
  private readonly timeoutMs: number;

  protected constructor(kind: string, object: KubeWitnessObject, options: KubeWitnessOptions) {
    this.namespace = object.namespace;
    this.name = object.name;
    this.description = `${kind} ${object.namespace}/${object.name}`;
    this.timeoutMs = options.timeoutMs ?? defaultKubeWitnessTimeoutMs;
    this.options = requestTimeout(this.timeoutMs);
  }

  /** GET; rejects with the client's error (ApiException) as it is. */
  protected abstract get(): Promise<T>;
  protected abstract create(record: WitnessRecord): Promise<T>;
  /** PUT of `existing` carrying `record` and metadata.resourceVersion = expectedVersion. */
  protected abstract replace(existing: T, record: WitnessRecord, expectedVersion: string): Promise<T>;
  /** The record's JSON text in the object, or undefined when it has none. */
  protected abstract recordText(object: T): string | undefined;
  /** Where the record sits, for messages (`annotation etcd.robustness.io/witness-record`). */
  protected abstract readonly recordField: string;

  private unavailable(action: string, error: unknown): WitnessUnavailableError {
    const status = apiStatusCode(error);
    const what = error instanceof Error && error.name === 'TimeoutError' ? `no answer within ${this.timeoutMs} ms` : errorMessage(error);
    return new WitnessUnavailableError(this.description, `cannot ${action} it${status === undefined ? '' : ` (HTTP ${status})`}: ${what}`, { cause: error });
  }

  /** The object and its record; undefined when it does not exist. */
  private async load(): Promise<{ object: T; current: VersionedWitnessRecord } | undefined> {
    let object: T;
    try {
      object = await this.get();
    } catch (error) {
      if (apiStatusCode(error) === 404) return undefined;
      throw this.unavailable('read', error);
    }
    return { object, current: this.parse(object) };
  }

  private parse(object: T): VersionedWitnessRecord {
    const version = object.metadata?.resourceVersion ?? '';
    if (version === '') throw new WitnessUnavailableError(this.description, 'the API server answered an object without metadata.resourceVersion');
    const text = this.recordText(object);
    // Not ours, or emptied by hand: never overwrite it.
    if (text === undefined || text === '') throw new WitnessRecordError(this.description, `the object has no ${this.recordField} (not a witness record; it is not overwritten)`);
    let value: unknown;
    try {
      value = JSON.parse(text) as unknown;
    } catch (error) {
      throw new WitnessRecordError(this.description, `${this.recordField} is not JSON: ${(error as Error).message}`);
    }
    return { version, record: parseWitnessRecord(this.description, value) };
  }

  async read(): Promise<VersionedWitnessRecord> {
    const found = await this.load();
    return found?.current ?? { version: '', record: undefined };
  }

  async compareAndSwap(expectedVersion: string, next: WitnessRecord): Promise<WitnessWriteResult> {
    const record = parseWitnessRecord(this.description, next);
    if (expectedVersion === '') {
      const refusal = witnessWriteRefusal(undefined, record);
      if (refusal !== undefined) {
        // The refusal is about the record (its epoch), but say what is there now.
        return { ok: false, current: await this.read(), reason: refusal };
      }
      try {
        const created = await this.create(record);
        return { ok: true, version: created.metadata?.resourceVersion ?? '' };
      } catch (error) {
        if (apiStatusCode(error) !== 409) throw this.unavailable('create', error);
      }
      return { ok: false, current: await this.read(), reason: 'the record exists already (created by someone else)' };
    }
    const found = await this.load();
    if (found === undefined) {
      return { ok: false, current: { version: '', record: undefined }, reason: `version ${expectedVersion} is gone: the object does not exist` };
    }
    const { object, current } = found;
    if (current.version !== expectedVersion) {
      return { ok: false, current, reason: `version ${expectedVersion} is not the current version ${current.version}` };
    }
    const refusal = witnessWriteRefusal(current.record, record);
    if (refusal !== undefined) return { ok: false, current, reason: refusal };
    try {
      const replaced = await this.replace(object, record, expectedVersion);
      return { ok: true, version: replaced.metadata?.resourceVersion ?? '' };
    } catch (error) {
      if (apiStatusCode(error) !== 409) throw this.unavailable('replace', error);
    }
    return { ok: false, current: await this.read(), reason: `version ${expectedVersion} was replaced by a concurrent write` };
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** The record in a Lease (see the module comment). */
export class LeaseWitness extends KubeObjectWitness<V1Lease> {
  private readonly api: CoordinationV1Api;
  protected readonly recordField = `annotation ${witnessRecordAnnotation}`;

  constructor(kubeConfig: KubeConfig, object: KubeWitnessObject, options: KubeWitnessOptions = {}) {
    super('lease', object, options);
    this.api = kubeConfig.makeApiClient(CoordinationV1Api);
  }

  protected get(): Promise<V1Lease> {
    return this.api.readNamespacedLease({ namespace: this.namespace, name: this.name }, this.options);
  }

  protected create(record: WitnessRecord): Promise<V1Lease> {
    const body: V1Lease = {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { namespace: this.namespace, name: this.name, annotations: { [witnessRecordAnnotation]: JSON.stringify(record) } },
      spec: { holderIdentity: record.owner, leaseTransitions: record.epoch },
    };
    return this.api.createNamespacedLease({ namespace: this.namespace, body }, this.options);
  }

  protected replace(existing: V1Lease, record: WitnessRecord, expectedVersion: string): Promise<V1Lease> {
    // The object was just read for this write: update it in place (client-node's models are classes).
    const metadata = existing.metadata ?? {};
    metadata.resourceVersion = expectedVersion;
    metadata.annotations = { ...metadata.annotations, [witnessRecordAnnotation]: JSON.stringify(record) };
    existing.metadata = metadata;
    const spec = existing.spec ?? {};
    spec.holderIdentity = record.owner;
    spec.leaseTransitions = record.epoch;
    existing.spec = spec;
    return this.api.replaceNamespacedLease({ namespace: this.namespace, name: this.name, body: existing }, this.options);
  }

  protected recordText(object: V1Lease): string | undefined {
    return object.metadata?.annotations?.[witnessRecordAnnotation];
  }
}

/** The record in a ConfigMap's data key `record` (see the module comment). */
export class ConfigMapWitness extends KubeObjectWitness<V1ConfigMap> {
  private readonly api: CoreV1Api;
  protected readonly recordField = `data key ${witnessRecordDataKey}`;

  constructor(kubeConfig: KubeConfig, object: KubeWitnessObject, options: KubeWitnessOptions = {}) {
    super('configMap', object, options);
    this.api = kubeConfig.makeApiClient(CoreV1Api);
  }

  protected get(): Promise<V1ConfigMap> {
    return this.api.readNamespacedConfigMap({ namespace: this.namespace, name: this.name }, this.options);
  }

  protected create(record: WitnessRecord): Promise<V1ConfigMap> {
    const body: V1ConfigMap = {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { namespace: this.namespace, name: this.name },
      data: { [witnessRecordDataKey]: JSON.stringify(record) },
    };
    return this.api.createNamespacedConfigMap({ namespace: this.namespace, body }, this.options);
  }

  protected replace(existing: V1ConfigMap, record: WitnessRecord, expectedVersion: string): Promise<V1ConfigMap> {
    // The object was just read for this write: update it in place (client-node's models are classes).
    const metadata = existing.metadata ?? {};
    metadata.resourceVersion = expectedVersion;
    existing.metadata = metadata;
    existing.data = { ...existing.data, [witnessRecordDataKey]: JSON.stringify(record) };
    return this.api.replaceNamespacedConfigMap({ namespace: this.namespace, name: this.name, body: existing }, this.options);
  }

  protected recordText(object: V1ConfigMap): string | undefined {
    return object.data?.[witnessRecordDataKey];
  }
}
