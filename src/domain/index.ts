// The domain types shared by probes, checker, faults and controller.
export * from './etcd.ts';
export * from './etcd-tls.ts';
export * from './history.ts';
export * from './run-spec.ts';
export * from './runtime.ts';
export * from './faults.ts';
export * from './kube.ts';
export * from './cluster-spec.ts';
export * from './run-resource.ts';
export * from './witness.ts';
