/**
 * The API server's reviews behind ./http-auth.ts: a TokenReview (authentication.k8s.io/v1) tells whose a
 * bearer token is, a SubjectAccessReview (authorization.k8s.io/v1) whether that user may do something.
 * The operator's ServiceAccount needs `create` on tokenreviews and subjectaccessreviews (the chart's
 * ClusterRole has both).
 */
import type { KubeConfig } from '@kubernetes/client-node';
import { ReviewError, type Decision, type RequestAttributes, type Reviewer, type UserInfo } from './http-auth.ts';
import { kubeRequest } from './kube-http.ts';

interface TokenReviewStatus {
  authenticated?: boolean;
  user?: { username?: string; uid?: string; groups?: string[]; extra?: Record<string, string[]> };
  error?: string;
}

interface SubjectAccessReviewStatus {
  allowed?: boolean;
  denied?: boolean;
  reason?: string;
  evaluationError?: string;
}

/** The SubjectAccessReview spec that asks whether `user` may do `attributes`. */
export function subjectAccessReviewSpec(user: UserInfo, attributes: RequestAttributes): Record<string, unknown> {
  const spec: Record<string, unknown> = { user: user.username };
  if (user.uid !== undefined) spec['uid'] = user.uid;
  if (user.groups !== undefined) spec['groups'] = user.groups;
  if (user.extra !== undefined) spec['extra'] = user.extra;
  if (attributes.kind === 'nonResource') {
    spec['nonResourceAttributes'] = { path: attributes.path, verb: attributes.verb };
  } else {
    spec['resourceAttributes'] = {
      namespace: attributes.namespace,
      verb: attributes.verb,
      group: attributes.group,
      resource: attributes.resource,
      ...(attributes.name === undefined ? {} : { name: attributes.name }),
    };
  }
  return spec;
}

export class KubeReviewer implements Reviewer {
  private readonly kubeConfig: KubeConfig;
  private readonly timeoutMs: number;

  constructor(kubeConfig: KubeConfig, options: { timeoutMs?: number } = {}) {
    this.kubeConfig = kubeConfig;
    this.timeoutMs = options.timeoutMs ?? 10_000;
  }

  async authenticate(token: string): Promise<UserInfo | undefined> {
    const review = await this.create<{ status?: TokenReviewStatus }>('/apis/authentication.k8s.io/v1/tokenreviews', {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenReview',
      spec: { token },
    });
    const status = review.status;
    if (status?.authenticated !== true || status.user?.username === undefined) return undefined;
    const { username, uid, groups, extra } = status.user;
    return { username, ...(uid === undefined ? {} : { uid }), ...(groups === undefined ? {} : { groups }), ...(extra === undefined ? {} : { extra }) };
  }

  async authorize(user: UserInfo, attributes: RequestAttributes): Promise<Decision> {
    const review = await this.create<{ status?: SubjectAccessReviewStatus }>('/apis/authorization.k8s.io/v1/subjectaccessreviews', {
      apiVersion: 'authorization.k8s.io/v1',
      kind: 'SubjectAccessReview',
      spec: subjectAccessReviewSpec(user, attributes),
    });
    const status = review.status;
    const reason = status?.reason ?? status?.evaluationError;
    return { allowed: status?.allowed === true && status.denied !== true, ...(reason === undefined || reason === '' ? {} : { reason }) };
  }

  private async create<T>(path: string, body: unknown): Promise<T> {
    try {
      return await kubeRequest<T>(this.kubeConfig, path, { method: 'POST', body, timeoutMs: this.timeoutMs });
    } catch (error) {
      throw new ReviewError(`${path}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
  }
}
