/**
 * What a member's Pod and PVC, as the API server has them, say about the member (pure): the state of
 * PlacedMember, since when, and why.
 */
import type { V1ContainerStatus, V1PersistentVolumeClaim, V1Pod } from '@kubernetes/client-node';
import type { PlacedMember } from '../../domain/index.ts';

/** A Running Pod whose etcd restarted this often without becoming Ready is failed, not starting. */
export const crashLoopRestarts = 5;

export interface ObservedMember {
  state: PlacedMember['state'];
  /** RFC 3339; absent when nothing on the objects says (a Pod that is gone): the caller knows. */
  since?: string;
  detail?: string;
}

/** Listed objects carry Dates, watched ones strings. */
export function rfc3339(value: Date | string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const date = value instanceof Date ? value : new Date(value);
  return Number.isNaN(date.getTime()) ? undefined : date.toISOString();
}

function readyCondition(pod: V1Pod): { status: string; since?: string } | undefined {
  const condition = pod.status?.conditions?.find((c) => c.type === 'Ready');
  if (!condition) return undefined;
  const since = rfc3339(condition.lastTransitionTime);
  return since === undefined ? { status: condition.status } : { status: condition.status, since };
}

function podStart(pod: V1Pod): string | undefined {
  return rfc3339(pod.status?.startTime) ?? rfc3339(pod.metadata?.creationTimestamp);
}

const containerStatuses = (pod: V1Pod): V1ContainerStatus[] => [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])];

function withSince(observed: Omit<ObservedMember, 'since'>, ...candidates: (string | undefined)[]): ObservedMember {
  const since = candidates.find((c) => c !== undefined);
  return since === undefined ? observed : { ...observed, since };
}

/** Why a Pod is not serving yet, from its containers' waiting reasons or the scheduler's condition. */
function pendingDetail(pod: V1Pod): string {
  for (const status of containerStatuses(pod)) {
    const waiting = status.state?.waiting;
    if (waiting?.reason !== undefined && waiting.reason !== 'ContainerCreating' && waiting.reason !== 'PodInitializing') {
      return `container ${status.name}: ${waiting.reason}${waiting.message ? `: ${waiting.message}` : ''}`;
    }
  }
  const scheduled = pod.status?.conditions?.find((c) => c.type === 'PodScheduled');
  if (scheduled?.status === 'False') return `not scheduled: ${scheduled.reason ?? ''}${scheduled.message ? ` ${scheduled.message}` : ''}`.trim();
  return `pod ${pod.status?.phase ?? 'Pending'}`;
}

/**
 * The member's state from its Pod and PVC (either may be missing). Undefined when there is nothing left
 * of the member but a PVC that is being deleted: the member is on its way out, not lost.
 */
export function observeMember(pod: V1Pod | undefined, claim: V1PersistentVolumeClaim | undefined): ObservedMember | undefined {
  const claimDeleting = claim?.metadata?.deletionTimestamp !== undefined;
  const claimLost = claim?.status?.phase === 'Lost';
  if (claim === undefined || claimDeleting || claimLost) {
    if (pod === undefined) {
      if (!claimLost || claimDeleting) return undefined;
      return withSince({ state: 'dataLost', detail: 'PVC lost (its volume is gone)' }, rfc3339(claim.metadata?.creationTimestamp));
    }
    const detail = claim === undefined ? 'PVC missing' : claimDeleting ? 'PVC being deleted' : 'PVC lost (its volume is gone)';
    return withSince({ state: 'dataLost', detail }, rfc3339(claim?.metadata?.deletionTimestamp), rfc3339(pod.metadata?.creationTimestamp));
  }
  if (pod === undefined) return { state: 'failed', detail: 'pod missing' };

  const created = rfc3339(pod.metadata?.creationTimestamp);
  const ready = readyCondition(pod);
  if (pod.metadata?.deletionTimestamp !== undefined) {
    const end = new Date(pod.metadata.deletionTimestamp).getTime();
    const start = Number.isNaN(end) ? undefined : new Date(end - (pod.metadata.deletionGracePeriodSeconds ?? 0) * 1000).toISOString();
    return withSince({ state: 'failed', detail: 'pod terminating' }, start, created);
  }
  const phase = pod.status?.phase ?? 'Pending';
  if (phase === 'Failed' || phase === 'Succeeded') {
    const finished = containerStatuses(pod)
      .map((s) => rfc3339(s.state?.terminated?.finishedAt))
      .filter((t): t is string => t !== undefined)
      .sort()
      .at(-1);
    const why = [pod.status?.reason, pod.status?.message].filter((s) => s !== undefined && s !== '').join(': ');
    return withSince({ state: 'failed', detail: `pod ${phase}${why ? `: ${why}` : ''}` }, finished, ready?.since, created);
  }
  const crashLooping = containerStatuses(pod).find((s) => s.state?.waiting?.reason === 'CrashLoopBackOff');
  if (crashLooping) {
    const message = crashLooping.state?.waiting?.message;
    return withSince(
      { state: 'failed', detail: `container ${crashLooping.name}: CrashLoopBackOff after ${crashLooping.restartCount} restarts${message ? `: ${message}` : ''}` },
      ready?.since,
      podStart(pod),
    );
  }
  if (phase === 'Running') {
    if (ready?.status === 'True') return withSince({ state: 'running' }, ready.since, podStart(pod));
    const restarts = Math.max(0, ...containerStatuses(pod).map((s) => s.restartCount));
    if (restarts >= crashLoopRestarts) return withSince({ state: 'failed', detail: `not ready after ${restarts} restarts` }, ready?.since, podStart(pod));
    return withSince({ state: 'starting', detail: 'not ready' }, ready?.since, podStart(pod));
  }
  return withSince({ state: 'starting', detail: pendingDetail(pod) }, created);
}
