// EtcdCluster objects and member launches for the kubernetes placement's tests, in one namespace: the
// members' DNS names, the initial cluster of n members, and a cluster with the spec the CRD defaults give.
import { randomUUID } from 'node:crypto';
import { robustnessApiVersion, type EtcdCluster, type EtcdClusterSpec, type MemberLaunch } from '../../src/domain/index.ts';

export interface PlacementFixtures {
  etcdCluster: (name: string, spec?: Partial<EtcdClusterSpec>) => EtcdCluster;
  /** A member's name under the cluster's headless peer Service. */
  fqdn: (cluster: string, member: string) => string;
  /** `name=peerURL,...` of members 0..n-1. */
  initialCluster: (cluster: string, n: number) => string;
  /** The launch of member i of a 3-member cluster. */
  launchOf: (cluster: string, i: number, state?: MemberLaunch['initialClusterState']) => MemberLaunch;
}

export function placementFixtures(namespace: string, defaults: { version: string }): PlacementFixtures {
  const fqdn = (cluster: string, member: string): string => `${member}.${cluster}-peers.${namespace}.svc.cluster.local`;
  const initialCluster = (cluster: string, n: number): string =>
    Array.from({ length: n }, (_, i) => `${cluster}-${i}=http://${fqdn(cluster, `${cluster}-${i}`)}:2380`).join(',');
  return {
    fqdn,
    initialCluster,
    launchOf: (cluster, i, state = 'new') => ({ name: `${cluster}-${i}`, initialCluster: initialCluster(cluster, 3), initialClusterState: state }),
    etcdCluster: (name, spec = {}) => ({
      apiVersion: robustnessApiVersion,
      kind: 'EtcdCluster',
      metadata: { name, namespace, uid: randomUUID(), generation: 1 },
      spec: {
        version: defaults.version,
        replicas: 3,
        topology: 'standard',
        storage: { size: '1Gi' },
        image: { repository: 'gcr.io/etcd-development/etcd', failpoints: false, pullPolicy: 'IfNotPresent' },
        agent: { enabled: true },
        memberGracePeriod: '5m',
        ...spec,
      },
    }),
  };
}
