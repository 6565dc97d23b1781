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

/**
 * A base class for the writers of one metric set: `this.m` is `create`'s set of the Registry given to the
 * constructor, made on first use and shared by every writer on that Registry.
 */
export function onMetricSet<T extends object>(create: (registry: Registry) => T) {
  const setOf = onePerRegistry(create);
  return class {
    protected readonly m: T;

    constructor(registry: Registry) {
      this.m = setOf(registry);
    }
  };
}
