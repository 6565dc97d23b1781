/**
 * Records events.k8s.io/v1 Events about objects (client-go's events recorder, simplified):
 * best-effort (a failure is logged, never thrown), and a repeat of the same (target, reason, note) within
 * 10 minutes updates the existing Event's series {count, lastObservedTime} instead of creating another.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import { logger } from '../../log.ts';
import { KubeApiError, kubeRequest } from './kube-http.ts';
import { microTime } from './leader-election.ts';

export interface EventTarget {
  apiVersion: string;
  kind: string;
  name: string;
  namespace: string;
  uid?: string;
}

export interface EventRecorderOptions {
  kubeConfig: KubeConfig;
  /** reportingController, e.g. 'etcd.robustness.io/operator'. */
  controller: string;
  /** reportingInstance (the pod name). */
  instance: string;
  /** How long a repeat updates the existing Event (default 10 min). */
  seriesWindowMs?: number;
  /** Series remembered at most (oldest forgotten first; default 4096). */
  maxSeries?: number;
}

interface Series {
  namespace: string;
  name: string;
  count: number;
  /** Date.now() of the first occurrence. */
  firstMs: number;
}

interface CreatedEvent {
  metadata?: { name?: string; namespace?: string };
}

/** The API server's limits on Event fields. */
const maxNoteBytes = 1024;
const maxShortField = 128;

function truncate(text: string, max: number): string {
  if (Buffer.byteLength(text) <= max) return text;
  let cut = text.slice(0, max);
  while (Buffer.byteLength(cut) > max - 3) cut = cut.slice(0, -1);
  return `${cut}...`;
}

export class EventRecorder {
  private readonly kubeConfig: KubeConfig;
  private readonly controller: string;
  private readonly instance: string;
  private readonly windowMs: number;
  private readonly maxSeries: number;
  /** Series by (target, reason, note), in insertion order (oldest first). */
  private readonly series = new Map<string, Series>();
  /** Records of one series run one after another, so a burst creates one Event, not several. */
  private readonly chains = new Map<string, Promise<void>>();

  constructor(options: EventRecorderOptions) {
    this.kubeConfig = options.kubeConfig;
    this.controller = truncate(options.controller, maxShortField);
    this.instance = truncate(options.instance, maxShortField);
    this.windowMs = options.seriesWindowMs ?? 10 * 60_000;
    this.maxSeries = options.maxSeries ?? 4096;
  }

  record(target: EventTarget, type: 'Normal' | 'Warning', reason: string, action: string, note: string): Promise<void> {
    const key = JSON.stringify([target.apiVersion, target.kind, target.namespace, target.name, target.uid ?? '', reason, note]);
    const previous = this.chains.get(key) ?? Promise.resolve();
    const next = previous.then(() => this.recordNow(key, target, type, reason, action, note));
    this.chains.set(key, next);
    void next.finally(() => {
      if (this.chains.get(key) === next) this.chains.delete(key);
    });
    return next;
  }

  private async recordNow(
    key: string,
    target: EventTarget,
    type: 'Normal' | 'Warning',
    reason: string,
    action: string,
    note: string,
  ): Promise<void> {
    const now = new Date();
    try {
      const existing = this.series.get(key);
      if (existing && now.getTime() - existing.firstMs < this.windowMs) {
        const count = existing.count + 1;
        try {
          await kubeRequest(this.kubeConfig, this.eventPath(existing.namespace, existing.name), {
            method: 'PATCH',
            contentType: 'application/merge-patch+json',
            body: { series: { count, lastObservedTime: microTime(now) } },
          });
          existing.count = count;
          return;
        } catch (error) {
          // The Event is gone (deleted or expired by its TTL): start a new one.
          if (!(error instanceof KubeApiError && error.status === 404)) throw error;
        }
      }
      this.series.delete(key);
      const created = await kubeRequest<CreatedEvent>(this.kubeConfig, this.eventPath(target.namespace), {
        method: 'POST',
        body: {
          apiVersion: 'events.k8s.io/v1',
          kind: 'Event',
          metadata: {
            // client-go's naming: the target's name and a unique suffix.
            name: `${target.name.slice(0, 200).replace(/[-.]+$/, '')}.${(BigInt(now.getTime()) * 1_000_000n + BigInt(Math.floor(Math.random() * 1_000_000))).toString(16)}`,
            namespace: target.namespace,
          },
          eventTime: microTime(now),
          reportingController: this.controller,
          reportingInstance: this.instance,
          action: truncate(action, maxShortField),
          reason: truncate(reason, maxShortField),
          type,
          note: truncate(note, maxNoteBytes),
          regarding: {
            apiVersion: target.apiVersion,
            kind: target.kind,
            name: target.name,
            namespace: target.namespace,
            ...(target.uid !== undefined ? { uid: target.uid } : {}),
          },
        },
      });
      this.series.set(key, {
        namespace: created.metadata?.namespace ?? target.namespace,
        name: created.metadata?.name ?? '',
        count: 1,
        firstMs: now.getTime(),
      });
      this.prune(now.getTime());
    } catch (error) {
      logger.warn('could not record an event', {
        target: `${target.kind} ${target.namespace}/${target.name}`,
        reason,
        error: error instanceof Error ? error.message : String(error),
      });
    }
  }

  private prune(nowMs: number): void {
    for (const [key, series] of this.series) {
      if (this.series.size <= this.maxSeries && nowMs - series.firstMs < this.windowMs) break;
      this.series.delete(key);
    }
  }

  private eventPath(namespace: string, name?: string): string {
    const base = `/apis/events.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}/events`;
    return name === undefined ? base : `${base}/${encodeURIComponent(name)}`;
  }
}
