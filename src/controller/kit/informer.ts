/**
 * An informer: a cache of one collection kept current by list + watch, calling onEvent for every change.
 *
 * Unlike the client library's informer (which stops on any error but 410 Gone), this one never gives up:
 * - it lists (paginated) and remembers the list's resourceVersion, then watches from it;
 * - a watch that ends (the server's timeoutSeconds, a broken connection, an error) is restarted from the
 *   last resourceVersion seen, after a backoff that grows with consecutive failures;
 * - 410 Gone (the resourceVersion was compacted away) re-lists; a re-list emits 'add'/'update' for what
 *   changed and 'delete' for cached objects that vanished while no watch was looking;
 * - every resyncMs it re-lists and emits 'update' for every object, so a missed event cannot leave a
 *   controller stale forever.
 * Objects are kept as the API server sent them: plain JSON, dates as strings.
 */
import type { ObjectMeta } from '../../domain/index.ts';
import type { KubeConfig } from '@kubernetes/client-node';
import { logger } from '../../log.ts';
import { isStatus, KubeApiError, kubeRequest, kubeStream } from './kube-http.ts';

/**
 * What the informer needs of an object. metadata has no index signature on purpose: interfaces such as
 * the domain's ObjectMeta (EtcdCluster, RobustnessRun) have no implicit one and would not satisfy it.
 */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: Partial<Pick<ObjectMeta, 'name' | 'namespace' | 'resourceVersion' | 'generation' | 'deletionTimestamp' | 'labels' | 'annotations' | 'finalizers'>>;
}

export type InformerEvent = 'add' | 'update' | 'delete';

export interface InformerOptions<T> {
  kubeConfig: KubeConfig;
  /** API path of the collection, e.g. `/apis/etcd.robustness.io/v1alpha1/etcdclusters` or `/api/v1/namespaces/ns/pods` */
  path: string;
  labelSelector?: string;
  fieldSelector?: string;
  /** Callers only enqueue keys here. A throw is logged and ignored. */
  onEvent: (type: InformerEvent, object: T) => void;
  /**
   * A watch update for which this returns false is cached but not passed to onEvent (controller-runtime's
   * predicates), e.g. `metadataChanged` for an object whose status the controller itself writes.
   */
  shouldNotify?: (previous: T, next: T) => boolean;
  /** Periodic full re-list (default 5 min) that also calls onEvent('update') for every object; 0 turns it off. */
  resyncMs?: number;
  /** Watch restart backoff (default 500 ms .. 30 s). */
  backoffMs?: { min: number; max: number };
  /** The server-side timeout of each watch request (default random in 5..10 min, like client-go). */
  watchTimeoutSeconds?: number;
  /** Page size of lists (default 500). */
  pageSize?: number;
}

/**
 * True when an update changed more than the status: the generation (spec), labels, annotations,
 * finalizers or the deletion mark (controller-runtime's GenerationChanged, Labels, Annotations and
 * deletion predicates together). A controller that writes an object's status passes this to its
 * informer, or each status write it makes wakes it again: etcd's revision in an EtcdCluster's member
 * status moves with every client write, and reconciles followed each other as fast as the API server
 * answered while any traffic ran (bench/operator-cost.ts).
 */
export function metadataChanged(previous: KubeObject, next: KubeObject): boolean {
  const a = previous.metadata ?? {};
  const b = next.metadata ?? {};
  const same = (x: unknown, y: unknown): boolean => JSON.stringify(x ?? null) === JSON.stringify(y ?? null);
  return (
    a.generation !== b.generation ||
    a.deletionTimestamp !== b.deletionTimestamp ||
    !same(a.labels, b.labels) ||
    !same(a.annotations, b.annotations) ||
    !same(a.finalizers, b.finalizers)
  );
}

/** "namespace/name", or "name" for a cluster-scoped object. */
export const keyOf = (object: { metadata?: { namespace?: string; name?: string } }): string => {
  const name = object.metadata?.name ?? '';
  const namespace = object.metadata?.namespace;
  return namespace ? `${namespace}/${name}` : name;
};

export const splitKey = (key: string): { namespace: string | undefined; name: string } => {
  const slash = key.indexOf('/');
  return slash < 0 ? { namespace: undefined, name: key } : { namespace: key.slice(0, slash), name: key.slice(slash + 1) };
};

interface ObjectList<T> {
  apiVersion?: string;
  kind?: string;
  metadata?: { resourceVersion?: string; continue?: string };
  items?: T[];
}

interface WatchEvent<T> {
  type?: string;
  object?: T;
}

class Gone extends Error {
  override name = 'Gone';
}

export class Informer<T extends KubeObject> {
  private readonly options: InformerOptions<T>;
  private readonly cache = new Map<string, T>();
  private resourceVersion: string | undefined;
  private synced = false;
  private readonly stopController = new AbortController();
  /** Aborts the running request (watch) to make the loop re-list now. */
  private current: AbortController | undefined;
  private started: Promise<void> | undefined;
  private readonly syncedSignal = Promise.withResolvers<undefined>();
  private resyncTimer: NodeJS.Timeout | undefined;
  private resyncDue = false;
  private watchEvents = 0;
  private wake: (() => void) | undefined;

  constructor(options: InformerOptions<T>) {
    this.options = options;
    // start() hands this promise out; a rejection nobody awaits must not crash the process.
    this.syncedSignal.promise.catch(() => undefined);
  }

  /** Resolves after the first successful list; rejects only if stop() is called before that. */
  start(): Promise<void> {
    if (!this.started) {
      if (this.isStopped()) return Promise.reject(new Error(`informer ${this.options.path} was stopped`));
      this.started = this.syncedSignal.promise;
      void this.loop();
      const resyncMs = this.options.resyncMs ?? 5 * 60_000;
      if (resyncMs > 0) {
        this.resyncTimer = setInterval(() => {
          this.resyncDue = true;
          this.current?.abort(new Error('resync'));
        }, resyncMs);
      }
    }
    return this.started;
  }

  get(namespace: string | undefined, name: string): T | undefined {
    return this.cache.get(namespace ? `${namespace}/${name}` : name);
  }

  list(namespace?: string): T[] {
    const objects = [...this.cache.values()];
    return namespace === undefined ? objects : objects.filter((o) => o.metadata?.namespace === namespace);
  }

  get hasSynced(): boolean {
    return this.synced;
  }

  /** A method, not a field read: the resync timer sets the flag while the loop awaits. */
  private isResyncDue(): boolean {
    return this.resyncDue;
  }

  private isStopped(): boolean {
    return this.stopController.signal.aborted;
  }

  stop(): void {
    if (this.isStopped()) return;
    clearInterval(this.resyncTimer);
    this.stopController.abort(new Error('informer stopped'));
    this.wake?.();
    this.syncedSignal.reject(new Error(`informer ${this.options.path} stopped before it synced`));
  }

  private async loop(): Promise<void> {
    let failures = 0;
    let needList = true;
    let resync = false;
    while (!this.isStopped()) {
      const attempt = new AbortController();
      const signal = AbortSignal.any([this.stopController.signal, attempt.signal]);
      let failed = false;
      this.watchEvents = 0;
      try {
        if (this.resyncDue) {
          this.resyncDue = false;
          resync = needList = true;
        }
        if (needList) {
          await this.relist(signal, resync);
          needList = resync = false;
          if (!this.synced) {
            this.synced = true;
            this.syncedSignal.resolve(undefined);
          }
        }
        // Only a watch is interrupted for a resync; a list in progress finishes first.
        this.current = attempt;
        if (this.isResyncDue()) continue;
        await this.watch(signal);
        failures = 0; // the watch opened and the server ended it: nothing is wrong
      } catch (error) {
        if (this.isStopped()) break;
        if (this.watchEvents > 0) failures = 0; // it worked for a while: start the backoff over
        if (error instanceof Gone || (error instanceof KubeApiError && error.status === 410)) {
          logger.info('informer: resourceVersion too old, re-listing', { path: this.options.path });
          needList = true;
          continue;
        }
        if (attempt.signal.aborted) continue; // a resync asked for a re-list
        failed = true;
        failures++;
        logger.warn('informer: list/watch failed, retrying', {
          path: this.options.path,
          error: error instanceof Error ? error.message : String(error),
          failures,
        });
      } finally {
        this.current = undefined;
      }
      if (this.isStopped()) break;
      if (this.isResyncDue()) continue;
      await this.sleep(this.backoff(failed ? failures : 0));
    }
  }

  private backoff(failures: number): number {
    const { min, max } = this.options.backoffMs ?? { min: 500, max: 30_000 };
    const delay = Math.min(min * 2 ** Math.max(0, failures - 1), max);
    // Jitter up to +20% so replicas and informers do not restart in lockstep.
    return Math.min(max, delay * (1 + Math.random() * 0.2));
  }

  private sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    }).finally(() => (this.wake = undefined));
  }

  private async relist(signal: AbortSignal, resync: boolean): Promise<void> {
    const items: T[] = [];
    let cont: string | undefined;
    let resourceVersion: string | undefined;
    do {
      let page: ObjectList<T>;
      try {
        page = await kubeRequest<ObjectList<T>>(this.options.kubeConfig, this.options.path, {
          query: {
            labelSelector: this.options.labelSelector,
            fieldSelector: this.options.fieldSelector,
            limit: this.options.pageSize ?? 500,
            continue: cont,
          },
          signal,
        });
      } catch (error) {
        // The continue token expired: start the list over.
        if (cont !== undefined && error instanceof KubeApiError && error.status === 410) {
          items.length = 0;
          cont = undefined;
          continue;
        }
        throw error;
      }
      const apiVersion = page.apiVersion;
      const kind = page.kind?.replace(/List$/, '');
      for (const item of page.items ?? []) {
        // List items carry no apiVersion/kind; watch events do. Make both look the same.
        items.push({ ...(apiVersion ? { apiVersion } : {}), ...(kind ? { kind } : {}), ...item });
      }
      resourceVersion = page.metadata?.resourceVersion;
      cont = page.metadata?.continue || undefined;
    } while (cont !== undefined);

    const seen = new Set<string>();
    for (const item of items) {
      const key = keyOf(item);
      seen.add(key);
      const old = this.cache.get(key);
      this.cache.set(key, item);
      if (!old) this.emit('add', item);
      else if (resync || old.metadata?.resourceVersion !== item.metadata?.resourceVersion) this.emit('update', item);
    }
    for (const [key, old] of this.cache) {
      if (seen.has(key)) continue;
      this.cache.delete(key);
      this.emit('delete', old);
    }
    this.resourceVersion = resourceVersion;
  }

  /** Watches from the last resourceVersion until the stream ends (counting events in watchEvents). */
  private async watch(signal: AbortSignal): Promise<void> {
    const timeoutSeconds = this.options.watchTimeoutSeconds ?? Math.floor(300 + Math.random() * 300);
    await kubeStream(this.options.kubeConfig, this.options.path, {
      query: {
        watch: true,
        resourceVersion: this.resourceVersion,
        allowWatchBookmarks: true,
        timeoutSeconds,
        labelSelector: this.options.labelSelector,
        fieldSelector: this.options.fieldSelector,
      },
      signal,
      // The server ends the watch after timeoutSeconds; silence well past that means a dead connection.
      timeoutMs: timeoutSeconds * 1000 + 30_000,
      onLine: (line) => {
        if (signal.aborted) return;
        const event = line as WatchEvent<T>;
        if (event.type === 'ERROR') {
          const status = event.object;
          if (isStatus(status) && (status.code === 410 || status.reason === 'Expired' || status.reason === 'Gone')) {
            throw new Gone(status.message ?? 'resourceVersion too old');
          }
          throw new Error(`watch error: ${JSON.stringify(status)}`);
        }
        this.watchEvents++;
        this.apply(event);
      },
    });
  }

  private apply(event: WatchEvent<T>): void {
    const object = event.object;
    if (!object || typeof object !== 'object') return;
    const rv = object.metadata?.resourceVersion;
    if (event.type === 'BOOKMARK') {
      if (rv) this.resourceVersion = rv;
      return;
    }
    const key = keyOf(object);
    switch (event.type) {
      case 'ADDED':
      case 'MODIFIED': {
        const previous = this.cache.get(key);
        this.cache.set(key, object);
        if (previous === undefined) this.emit('add', object);
        else if (this.options.shouldNotify?.(previous, object) ?? true) this.emit('update', object);
        break;
      }
      case 'DELETED': {
        this.cache.delete(key);
        this.emit('delete', object);
        break;
      }
      default:
        return;
    }
    if (rv) this.resourceVersion = rv;
  }

  private emit(type: InformerEvent, object: T): void {
    try {
      this.options.onEvent(type, object);
    } catch (error) {
      logger.error('informer: onEvent threw', {
        path: this.options.path,
        type,
        key: keyOf(object),
        error: error instanceof Error ? error.message : String(error),
      });
    }
  }
}
