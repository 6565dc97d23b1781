// A small controller-runtime: work queue, controller, informer, leader election, conditions, events,
// controller metrics and the probe server the operator is built on.
export { WorkQueue, type WorkQueueOptions } from './workqueue.ts';
export { Controller, TerminalError, type ControllerOptions, type Reconcile, type ReconcileResult } from './controller.ts';
export { Informer, keyOf, metadataChanged, splitKey, type InformerEvent, type InformerOptions, type KubeObject } from './informer.ts';
export { LeaderElector, microTime, type LeaderCallbacks, type LeaderElectionOptions } from './leader-election.ts';
export { findCondition, isConditionTrue, setCondition } from './conditions.ts';
export { EventRecorder, type EventRecorderOptions, type EventTarget } from './events.ts';
export { ControllerMetrics, type QueueProgress, type ReconcileOutcome } from './metrics.ts';
export { ProbeServer, type ProbeServerOptions } from './probe-server.ts';
export { KubeApiError, kubeRequest, kubeStream, type RequestOptions } from './kube-http.ts';
export { ProbeServerConfigError } from './probe-server.ts';
export {
  authenticateAndAuthorize,
  bearerToken,
  CachingReviewer,
  describeAttributes,
  ReviewError,
  verbOf,
  withAuth,
  type AuthOutcome,
  type CachingReviewerOptions,
  type Decision,
  type NonResourceAttributes,
  type RequestAttributes,
  type ResourceAttributes,
  type Reviewer,
  type UserInfo,
} from './http-auth.ts';
export { KubeReviewer, subjectAccessReviewSpec } from './kube-reviews.ts';
export { certificateAuthorityBundle, CertificateRequestError, selfSignedCertificate, type CertificateAuthorityBundle, type ServingCertificate } from './certificates.ts';
