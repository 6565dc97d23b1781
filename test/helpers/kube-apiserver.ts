// The tests' kube-apiserver is the one `etcd-robustness dev` starts: src/local/kube-apiserver.ts.
export { ApiserverStartError, LocalApiserver as TestApiserver } from '../../src/local/kube-apiserver.ts';
export type { KubectlResult } from '../../src/local/kube-apiserver.ts';
