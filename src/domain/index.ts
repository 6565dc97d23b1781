// The domain types shared by probes, checker, faults and controller.
export * from './etcd.ts';
export * from './history.ts';
export * from './run-spec.ts';
export * from './runtime.ts';
export * from './faults.ts';
