/**
 * The witness store an EtcdCluster's spec.twoNode.witness names: a Lease or ConfigMap (namespace default:
 * the cluster's; name default: `<cluster>-witness`) or the HTTP witness process at `url`.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import type { WitnessSpec } from '../../domain/cluster-spec.ts';
import type { Witness } from '../../domain/witness.ts';
import { HttpWitness } from './store-http.ts';
import { ConfigMapWitness, LeaseWitness, type KubeWitnessObject } from './store-kube.ts';

/** `<cluster>-witness`: the Lease or ConfigMap name when the spec gives none. */
export function defaultWitnessName(clusterName: string): string {
  return `${clusterName}-witness`;
}

/** Where a Lease or ConfigMap witness lives, with the spec's defaults applied. */
export function witnessObject(spec: WitnessSpec, cluster: { namespace: string; name: string }): KubeWitnessObject {
  return { namespace: spec.namespace ?? cluster.namespace, name: spec.name ?? defaultWitnessName(cluster.name) };
}

export function createWitness(spec: WitnessSpec, cluster: { namespace: string; name: string }, kubeConfig: KubeConfig): Witness {
  switch (spec.kind) {
    case 'lease':
      return new LeaseWitness(kubeConfig, witnessObject(spec, cluster));
    case 'configMap':
      return new ConfigMapWitness(kubeConfig, witnessObject(spec, cluster));
    case 'http':
      if (spec.url === undefined || spec.url === '') throw new RangeError(`EtcdCluster ${cluster.namespace}/${cluster.name}: twoNode.witness: an http witness needs url`);
      return new HttpWitness(spec.url);
  }
}
