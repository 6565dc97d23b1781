/**
 * Which members a fault hits: a target rule, the members, who leads, and the plan's `pick` (a number in
 * [0, 1) drawn from the seed), so the same plan hits the same members on the same cluster state.
 */
import type { TargetRule } from '../domain/index.ts';

export class FaultTargetError extends Error {
  override name = 'FaultTargetError';
}

/** A deterministic shuffle driven by `pick` (so minority/majority choices are reproducible). */
function rotate<T>(items: readonly T[], pick: number): T[] {
  const start = Math.floor(pick * items.length) % Math.max(1, items.length);
  return [...items.slice(start), ...items.slice(0, start)];
}

export function resolveTargets(rule: TargetRule, options: { members: readonly string[]; leader: string | undefined; pick: number; member?: string }): string[] {
  const members = [...options.members].sort();
  if (members.length === 0) throw new FaultTargetError('the cluster has no members to target');
  const { leader, pick } = options;
  const one = (from: readonly string[], what: string): string[] => {
    if (from.length === 0) throw new FaultTargetError(`no ${what} to target (members: ${members.join(', ')}, leader: ${leader ?? 'none'})`);
    return [from[Math.floor(pick * from.length) % from.length]!];
  };
  switch (rule) {
    case 'random':
      return one(members, 'member');
    case 'leader':
      return one(leader === undefined ? [] : [leader], 'leader');
    case 'follower':
      return one(
        members.filter((m) => m !== leader),
        'follower',
      );
    case 'member': {
      if (options.member === undefined || !members.includes(options.member)) {
        throw new FaultTargetError(`no member named ${options.member ?? '(none given)'} (members: ${members.join(', ')})`);
      }
      return [options.member];
    }
    case 'minority':
      return rotate(members, pick).slice(0, Math.max(1, Math.floor((members.length - 1) / 2)));
    case 'majority':
      return rotate(members, pick).slice(0, Math.floor(members.length / 2) + 1);
    case 'all':
      return members;
  }
}

/** Every directed link between two groups (both directions unless `oneWay`). */
export function linksBetween(a: readonly string[], b: readonly string[], oneWay = false): { from: string; to: string }[] {
  const links: { from: string; to: string }[] = [];
  for (const x of a) {
    for (const y of b) {
      if (x === y) continue;
      links.push({ from: x, to: y });
      if (!oneWay) links.push({ from: y, to: x });
    }
  }
  return links;
}
