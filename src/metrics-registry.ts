/**
 * prom-client refuses a second registration of a metric name in one Registry, and the operator makes
 * metric sets (runs, controllers, clusters, upgrades) more than once on its registry: each set is created
 * once per Registry and shared.
 */
import type { Registry } from 'prom-client';

/** `create`, memoized per Registry (weakly: a dropped registry frees its set). */
export function onePerRegistry<T extends object>(create: (registry: Registry) => T): (registry: Registry) => T {
  const sets = new WeakMap<Registry, T>();
  return (registry) => {
    let set = sets.get(registry);
    if (set === undefined) {
      set = create(registry);
      sets.set(registry, set);
    }
    return set;
  };
}
