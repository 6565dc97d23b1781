/**
 * The Kubernetes object shapes the custom resources share: metadata, conditions (the metav1.Condition
 * contract: lastTransitionTime changes only when status changes; observedGeneration says which spec the
 * condition describes) and references.
 */

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid?: string;
  generation?: number;
  resourceVersion?: string;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  ownerReferences?: OwnerReference[];
}

export type ConditionStatus = 'True' | 'False' | 'Unknown';

export interface Condition {
  type: string;
  status: ConditionStatus;
  /** The metadata.generation the condition was computed from. */
  observedGeneration: number;
  /** RFC 3339; changes only when status changes. */
  lastTransitionTime: string;
  /** CamelCase, machine-readable. */
  reason: string;
  message: string;
}

/** A reference to an object in a namespace (the referrer's when namespace is absent). */
export interface NamespacedRef {
  name: string;
  namespace?: string;
}
