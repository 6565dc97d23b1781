/**
 * Authentication and authorization of the operator's HTTPS endpoints, as controller-runtime's secure
 * metrics serving does it (its filters.WithAuthenticationAndAuthorization): every request carries a
 * bearer token; the API server says whose it is (a TokenReview) and whether that user may do what the
 * request asks (a SubjectAccessReview). A request without a token, or with one the API server does not
 * know, gets 401; a user without the permission gets 403; a review that cannot be made gets 500.
 *
 * What a request asks is `attributes`: a non-resource URL (`get /metrics`) or a resource (`get` on
 * `robustnessruns` named N in namespace NS). The reviews themselves are the Reviewer's
 * (./kube-reviews.ts calls the API server); this module is the HTTP logic and a small cache, so a
 * Prometheus scraping every few seconds costs the API server two reviews a minute, not two a scrape.
 */
import { createHash } from 'node:crypto';
import type http from 'node:http';

export interface UserInfo {
  username: string;
  uid?: string;
  groups?: string[];
  extra?: Record<string, string[]>;
}

export interface NonResourceAttributes {
  kind: 'nonResource';
  verb: string;
  path: string;
}

export interface ResourceAttributes {
  kind: 'resource';
  verb: string;
  group: string;
  resource: string;
  namespace: string;
  name?: string;
}

export type RequestAttributes = NonResourceAttributes | ResourceAttributes;

export interface Decision {
  allowed: boolean;
  /** The authorizer's reason (shown in a 403). */
  reason?: string;
}

/** Who a token belongs to, and what that user may do: TokenReview and SubjectAccessReview. */
export interface Reviewer {
  /** The token's user, or undefined when the token is not valid. */
  authenticate(token: string): Promise<UserInfo | undefined>;
  authorize(user: UserInfo, attributes: RequestAttributes): Promise<Decision>;
}

/** A review could not be made (the API server did not answer, refused the review itself). */
export class ReviewError extends Error {
  override name = 'ReviewError';
}

/** The bearer token of an Authorization header, if it has one. */
export function bearerToken(header: string | undefined): string | undefined {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  return match?.[1];
}

/** How an attribute set reads in a 403 and in the logs, e.g. `get robustnessruns.etcd.robustness.io "r1" in namespace "ns"`. */
export function describeAttributes(attributes: RequestAttributes): string {
  if (attributes.kind === 'nonResource') return `${attributes.verb} ${attributes.path}`;
  const resource = attributes.group === '' ? attributes.resource : `${attributes.resource}.${attributes.group}`;
  return `${attributes.verb} ${resource}${attributes.name === undefined ? '' : ` "${attributes.name}"`} in namespace "${attributes.namespace}"`;
}

export interface CachingReviewerOptions {
  /** How long a valid token's user is remembered (default 60 s). */
  authenticatedTtlMs?: number;
  /** How long an invalid token is remembered (default 10 s). */
  unauthenticatedTtlMs?: number;
  /** How long an allow is remembered (default 60 s). */
  allowedTtlMs?: number;
  /** How long a deny is remembered (default 10 s: a new RoleBinding takes effect soon). */
  deniedTtlMs?: number;
  /** Entries kept at most, per cache (default 1024; the oldest go first). */
  maxEntries?: number;
  now?: () => number;
}

class TtlCache<V> {
  private readonly entries = new Map<string, { value: V; expires: number }>();
  private readonly maxEntries: number;
  private readonly now: () => number;

  constructor(maxEntries: number, now: () => number) {
    this.maxEntries = maxEntries;
    this.now = now;
  }

  get(key: string): V | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.expires <= this.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return entry.value;
  }

  set(key: string, value: V, ttlMs: number): void {
    this.entries.delete(key);
    if (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(key, { value, expires: this.now() + ttlMs });
  }

  get size(): number {
    return this.entries.size;
  }
}

/** Tokens are cached by their SHA-256, never as themselves. */
const tokenKey = (token: string): string => createHash('sha256').update(token).digest('hex');

/** A Reviewer that remembers answers for a while (errors are not remembered). */
export class CachingReviewer implements Reviewer {
  private readonly inner: Reviewer;
  private readonly users: TtlCache<UserInfo | null>;
  private readonly decisions: TtlCache<Decision>;
  private readonly ttl: Required<Omit<CachingReviewerOptions, 'maxEntries' | 'now'>>;

  constructor(inner: Reviewer, options: CachingReviewerOptions = {}) {
    this.inner = inner;
    const now = options.now ?? Date.now;
    this.users = new TtlCache(options.maxEntries ?? 1024, now);
    this.decisions = new TtlCache(options.maxEntries ?? 1024, now);
    this.ttl = {
      authenticatedTtlMs: options.authenticatedTtlMs ?? 60_000,
      unauthenticatedTtlMs: options.unauthenticatedTtlMs ?? 10_000,
      allowedTtlMs: options.allowedTtlMs ?? 60_000,
      deniedTtlMs: options.deniedTtlMs ?? 10_000,
    };
  }

  async authenticate(token: string): Promise<UserInfo | undefined> {
    const key = tokenKey(token);
    const cached = this.users.get(key);
    if (cached !== undefined) return cached ?? undefined;
    const user = await this.inner.authenticate(token);
    this.users.set(key, user ?? null, user === undefined ? this.ttl.unauthenticatedTtlMs : this.ttl.authenticatedTtlMs);
    return user;
  }

  async authorize(user: UserInfo, attributes: RequestAttributes): Promise<Decision> {
    const key = JSON.stringify([user.username, user.uid ?? '', [...(user.groups ?? [])].sort(), attributes]);
    const cached = this.decisions.get(key);
    if (cached !== undefined) return cached;
    const decision = await this.inner.authorize(user, attributes);
    this.decisions.set(key, decision, decision.allowed ? this.ttl.allowedTtlMs : this.ttl.deniedTtlMs);
    return decision;
  }
}

export type AuthOutcome =
  | { status: 200; user: UserInfo }
  | { status: 401; message: string }
  | { status: 403; message: string; user: UserInfo }
  | { status: 500; message: string };

/** The authentication and authorization of one request, as an HTTP status (200: go on). */
export async function authenticateAndAuthorize(reviewer: Reviewer, authorization: string | undefined, attributes: RequestAttributes): Promise<AuthOutcome> {
  const token = bearerToken(authorization);
  if (token === undefined) return { status: 401, message: 'Unauthorized: a bearer token is required (Authorization: Bearer <token>)' };
  let user: UserInfo | undefined;
  try {
    user = await reviewer.authenticate(token);
  } catch (error) {
    return { status: 500, message: `Internal Server Error: the token could not be reviewed: ${error instanceof Error ? error.message : String(error)}` };
  }
  if (user === undefined) return { status: 401, message: 'Unauthorized: the API server does not accept this token' };
  let decision: Decision;
  try {
    decision = await reviewer.authorize(user, attributes);
  } catch (error) {
    return { status: 500, message: `Internal Server Error: the access could not be reviewed: ${error instanceof Error ? error.message : String(error)}` };
  }
  if (!decision.allowed) {
    const reason = decision.reason === undefined || decision.reason === '' ? '' : `: ${decision.reason}`;
    return { status: 403, user, message: `Forbidden: user "${user.username}" may not ${describeAttributes(attributes)}${reason}` };
  }
  return { status: 200, user };
}

export type Handler = (request: http.IncomingMessage, response: http.ServerResponse) => Promise<void> | void;

/**
 * `handler` behind authentication and authorization: `attributesOf` says what a request asks (from its
 * method and URL). A refused request gets a text/plain 401 (with `WWW-Authenticate: Bearer`), 403 or 500.
 */
export function withAuth(reviewer: Reviewer, attributesOf: (request: http.IncomingMessage) => RequestAttributes, handler: Handler): Handler {
  return async (request, response) => {
    const outcome = await authenticateAndAuthorize(reviewer, request.headers.authorization, attributesOf(request));
    if (outcome.status === 200) {
      await handler(request, response);
      return;
    }
    const headers: Record<string, string> = { 'Content-Type': 'text/plain; charset=utf-8' };
    if (outcome.status === 401) headers['WWW-Authenticate'] = 'Bearer';
    response.writeHead(outcome.status, headers).end(`${outcome.message}\n`);
  };
}

/** The HTTP verb of a request as Kubernetes authorization names it (HEAD and GET are both `get`). */
export function verbOf(method: string | undefined): string {
  const m = (method ?? 'GET').toUpperCase();
  if (m === 'GET' || m === 'HEAD') return 'get';
  if (m === 'POST') return 'create';
  if (m === 'PUT') return 'update';
  if (m === 'PATCH') return 'patch';
  if (m === 'DELETE') return 'delete';
  return m.toLowerCase();
}
