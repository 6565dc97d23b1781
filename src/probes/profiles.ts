/**
 * Traffic profiles as data: which request kinds a run mixes and how often, over how many keys. The
 * weights follow etcd's robustness traffic (tests/robustness/traffic): the etcd profile merges its
 * put-heavy mix with the one that adds deletes, leases and compare-and-set; the kubernetes profile is
 * what kube-apiserver sends (optimistic updates dominate writes, reads are gets and paged lists, plus
 * list-then-watch).
 */
import type { OperationKind, ProfileName, TrafficProfile, TrafficSpec } from '../domain/index.ts';
import { etcdOperationKinds, kubernetesOperationKinds } from '../domain/index.ts';

export const builtInProfiles: Readonly<Record<ProfileName, TrafficProfile>> = {
  etcd: {
    name: 'etcd',
    weights: {
      get: 15,
      staleGet: 10,
      list: 4,
      keysOnlyList: 4,
      staleList: 5,
      put: 30,
      delete: 5,
      multiOpTxn: 10,
      compareAndSet: 5,
      putWithLease: 5,
      leaseRevoke: 5,
    },
    keys: 10,
    valueSize: 32,
    resources: [],
    namespaces: [],
    pageSize: 10,
  },
  kubernetes: {
    name: 'kubernetes',
    weights: { get: 10, list: 15, listWatch: 2, create: 8, update: 55, delete: 10 },
    keys: 50,
    valueSize: 256,
    resources: ['pods', 'configmaps', 'leases'],
    namespaces: ['default', 'kube-system'],
    pageSize: 10,
  },
};

export function kindsOf(profile: ProfileName): readonly OperationKind[] {
  return profile === 'etcd' ? etcdOperationKinds : kubernetesOperationKinds;
}

/** The profile a run's traffic spec asks for: the built-in one with the spec's overrides. */
export function resolveProfile(spec: Pick<TrafficSpec, 'profile' | 'weights' | 'keys' | 'valueSize'>): TrafficProfile {
  const base = builtInProfiles[spec.profile];
  const allowed = new Set<OperationKind>(kindsOf(spec.profile));
  const weights: Partial<Record<OperationKind, number>> = { ...base.weights };
  for (const [kind, weight] of Object.entries(spec.weights) as [OperationKind, number][]) {
    if (!allowed.has(kind)) throw new RangeError(`profile ${spec.profile} has no operation kind "${kind}"`);
    weights[kind] = weight;
  }
  if (!Object.values(weights).some((w) => w > 0)) throw new RangeError(`profile ${spec.profile}: every operation weight is 0`);
  return { ...base, weights, keys: spec.keys, valueSize: spec.valueSize };
}
