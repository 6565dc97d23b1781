/**
 * Status conditions with the metav1.Condition contract: one condition per type; lastTransitionTime
 * changes only when the status changes; reason, message and observedGeneration always follow `next`.
 * Pure functions: inputs are never modified.
 */
import type { Condition } from '../../domain/index.ts';

/** metav1.Time's wire form: RFC 3339 in UTC with second precision. */
function rfc3339(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export function setCondition(
  conditions: readonly Condition[] | undefined,
  next: Omit<Condition, 'lastTransitionTime'>,
  now: Date,
): Condition[] {
  const list = conditions ?? [];
  const existing = list.find((c) => c.type === next.type);
  const updated: Condition = {
    type: next.type,
    status: next.status,
    observedGeneration: next.observedGeneration,
    lastTransitionTime: existing && existing.status === next.status ? existing.lastTransitionTime : rfc3339(now),
    reason: next.reason,
    message: next.message,
  };
  return existing ? list.map((c) => (c.type === next.type ? updated : { ...c })) : [...list.map((c) => ({ ...c })), updated];
}

export function findCondition(conditions: readonly Condition[] | undefined, type: string): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}

export function isConditionTrue(conditions: readonly Condition[] | undefined, type: string): boolean {
  return findCondition(conditions, type)?.status === 'True';
}
