// The authentication and authorization of the operator's secure endpoints (src/controller/kit/http-auth.ts)
// with an in-memory Reviewer: the bearer-token parse, the HTTP outcome of each review answer, the cache
// (TTLs on a fake clock, errors never cached, tokens kept by digest), withAuth over a real loopback server,
// the SubjectAccessReview a request becomes, and which object a gate request asks to read.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { gateAttributes } from '../../src/controller/gates/http.ts';
import {
  authenticateAndAuthorize,
  bearerToken,
  CachingReviewer,
  describeAttributes,
  ReviewError,
  verbOf,
  withAuth,
  type Decision,
  type RequestAttributes,
  type Reviewer,
  type UserInfo,
} from '../../src/controller/kit/http-auth.ts';
import { subjectAccessReviewSpec } from '../../src/controller/kit/kube-reviews.ts';

const metrics: RequestAttributes = { kind: 'nonResource', verb: 'get', path: '/metrics' };
const alice: UserInfo = { username: 'system:serviceaccount:mon:prometheus', uid: 'u1', groups: ['system:serviceaccounts'] };

/** Tokens `good` (alice) and `other`; alice may get /metrics only. Counts the reviews it answers. */
class FakeReviewer implements Reviewer {
  authentications = 0;
  authorizations = 0;
  failAuthentication = false;
  failAuthorization = false;
  allowed = (attributes: RequestAttributes): boolean => attributes.kind === 'nonResource' && attributes.path === '/metrics';

  authenticate(token: string): Promise<UserInfo | undefined> {
    this.authentications++;
    if (this.failAuthentication) return Promise.reject(new ReviewError('the API server did not answer'));
    if (token === 'good') return Promise.resolve(alice);
    if (token === 'other') return Promise.resolve({ username: 'bob' });
    return Promise.resolve(undefined);
  }

  authorize(user: UserInfo, attributes: RequestAttributes): Promise<Decision> {
    this.authorizations++;
    if (this.failAuthorization) return Promise.reject(new ReviewError('connection reset'));
    const allowed = user.username === alice.username && this.allowed(attributes);
    return Promise.resolve(allowed ? { allowed } : { allowed, reason: 'no RBAC policy matched' });
  }
}

describe('bearerToken', () => {
  test('the token of `Bearer <token>`, any case of the scheme; nothing else', () => {
    assert.equal(bearerToken('Bearer abc.def-ghi_'), 'abc.def-ghi_');
    assert.equal(bearerToken('bearer abc'), 'abc');
    assert.equal(bearerToken('Bearer  abc '), 'abc');
    for (const header of [undefined, '', 'Bearer', 'Bearer ', 'Basic YWxhZGRpbjpvcGVuc2VzYW1l', 'Bearer a b', 'abc']) {
      assert.equal(bearerToken(header), undefined, String(header));
    }
  });

  test('property: any token without whitespace comes back as itself', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1 }).filter((t) => !/\s/.test(t)), (token) => bearerToken(`Bearer ${token}`) === token),
    );
  });
});

describe('authenticateAndAuthorize', () => {
  test('401 without a token or with one the API server does not know, 403 without the permission, 200 with it', async () => {
    const reviewer = new FakeReviewer();
    assert.equal((await authenticateAndAuthorize(reviewer, undefined, metrics)).status, 401);
    assert.equal(reviewer.authentications, 0, 'no review without a token');
    assert.equal((await authenticateAndAuthorize(reviewer, 'Bearer nope', metrics)).status, 401);
    assert.equal(reviewer.authorizations, 0, 'no access review for an unknown token');
    const forbidden = await authenticateAndAuthorize(reviewer, 'Bearer other', metrics);
    assert.equal(forbidden.status, 403);
    assert.equal(forbidden.status === 403 ? forbidden.message : '', 'Forbidden: user "bob" may not get /metrics: no RBAC policy matched');
    assert.deepEqual(await authenticateAndAuthorize(reviewer, 'Bearer good', metrics), { status: 200, user: alice });
  });

  test('a review that cannot be made is a 500, never a pass', async () => {
    const reviewer = new FakeReviewer();
    reviewer.failAuthentication = true;
    const authn = await authenticateAndAuthorize(reviewer, 'Bearer good', metrics);
    assert.equal(authn.status, 500);
    assert.match(authn.status === 500 ? authn.message : '', /the token could not be reviewed: the API server did not answer/);
    reviewer.failAuthentication = false;
    reviewer.failAuthorization = true;
    const authz = await authenticateAndAuthorize(reviewer, 'Bearer good', metrics);
    assert.equal(authz.status, 500);
    assert.match(authz.status === 500 ? authz.message : '', /the access could not be reviewed: connection reset/);
  });
});

describe('CachingReviewer', () => {
  test('remembers users and decisions for their TTLs, denials and unknown tokens for shorter', async () => {
    let clock = 0;
    const inner = new FakeReviewer();
    const reviewer = new CachingReviewer(inner, { now: () => clock, authenticatedTtlMs: 60_000, unauthenticatedTtlMs: 10_000, allowedTtlMs: 60_000, deniedTtlMs: 10_000 });
    for (let i = 0; i < 5; i++) assert.equal((await authenticateAndAuthorize(reviewer, 'Bearer good', metrics)).status, 200);
    assert.deepEqual([inner.authentications, inner.authorizations], [1, 1], 'a scrape every few seconds costs one review each per minute');
    await reviewer.authenticate('nope');
    await reviewer.authenticate('nope');
    await reviewer.authorize(alice, { kind: 'nonResource', verb: 'get', path: '/debug' });
    await reviewer.authorize(alice, { kind: 'nonResource', verb: 'get', path: '/debug' });
    assert.deepEqual([inner.authentications, inner.authorizations], [2, 2]);

    clock = 10_000; // the denial and the unknown token expire; the allow and the user do not
    inner.allowed = () => true; // a new RoleBinding
    assert.deepEqual(await reviewer.authorize(alice, { kind: 'nonResource', verb: 'get', path: '/debug' }), { allowed: true });
    assert.equal(await reviewer.authenticate('nope'), undefined);
    await reviewer.authenticate('good');
    await reviewer.authorize(alice, metrics);
    assert.deepEqual([inner.authentications, inner.authorizations], [3, 3]);

    clock = 60_000;
    await reviewer.authenticate('good');
    await reviewer.authorize(alice, metrics);
    assert.deepEqual([inner.authentications, inner.authorizations], [4, 4]);
  });

  test('a decision is per user and per request: another user or another object is asked again', async () => {
    const inner = new FakeReviewer();
    const reviewer = new CachingReviewer(inner);
    const gate = (namespace: string): RequestAttributes => ({ kind: 'resource', verb: 'get', group: 'etcd.robustness.io', resource: 'etcdclusters', namespace, name: 'c' });
    await reviewer.authorize(alice, gate('a'));
    await reviewer.authorize(alice, gate('b'));
    await reviewer.authorize({ ...alice, groups: ['system:masters'] }, gate('a'));
    await reviewer.authorize({ username: 'bob' }, gate('a'));
    assert.equal(inner.authorizations, 4);
  });

  test('errors are not remembered: the next request asks again', async () => {
    const inner = new FakeReviewer();
    const reviewer = new CachingReviewer(inner);
    inner.failAuthentication = true;
    await assert.rejects(reviewer.authenticate('good'), ReviewError);
    inner.failAuthentication = false;
    assert.deepEqual(await reviewer.authenticate('good'), alice);
    assert.equal(inner.authentications, 2);
  });

  test('at most maxEntries entries: the oldest goes first', async () => {
    const inner = new FakeReviewer();
    const reviewer = new CachingReviewer(inner, { maxEntries: 2 });
    for (const token of ['t1', 't2', 't3', 't3', 't2', 't1']) await reviewer.authenticate(token);
    // t1 t2 t3 miss; t3 t2 hit; t1 was evicted by t3: miss
    assert.equal(inner.authentications, 4);
  });
});

describe('withAuth over HTTP', () => {
  let server: http.Server;
  let base: string;
  const reviewer = new FakeReviewer();

  before(async () => {
    const handler = withAuth(reviewer, () => metrics, (_request, response) => {
      response.writeHead(200, { 'Content-Type': 'text/plain' }).end('secret metrics\n');
    });
    server = http.createServer((request, response) => void handler(request, response));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(() => {
    server.closeAllConnections();
    server.close();
  });

  const get = async (token?: string): Promise<{ status: number; challenge: string | null; body: string }> => {
    const response = await fetch(`${base}/metrics`, { headers: token === undefined ? {} : { Authorization: `Bearer ${token}` } });
    return { status: response.status, challenge: response.headers.get('www-authenticate'), body: await response.text() };
  };

  test('401 with a Bearer challenge, 403, 500, and the handler only on 200', async () => {
    assert.deepEqual(await get(), { status: 401, challenge: 'Bearer', body: 'Unauthorized: a bearer token is required (Authorization: Bearer <token>)\n' });
    const forbidden = await get('other');
    assert.equal(forbidden.status, 403);
    assert.equal(forbidden.challenge, null);
    assert.doesNotMatch(forbidden.body, /secret/);
    reviewer.failAuthorization = true;
    const failed = await get('good');
    reviewer.failAuthorization = false;
    assert.equal(failed.status, 500);
    assert.doesNotMatch(failed.body, /secret/);
    assert.deepEqual(await get('good'), { status: 200, challenge: null, body: 'secret metrics\n' });
  });
});

describe('what a request asks', () => {
  const request = (method: string, url: string): http.IncomingMessage => ({ method, url }) as http.IncomingMessage;

  test('a gate asks to get the object it judges, in its namespace', () => {
    assert.deepEqual(gateAttributes(request('GET', '/gates/robustnessruns/team-a/nightly?maxAge=1h')), {
      kind: 'resource',
      verb: 'get',
      group: 'etcd.robustness.io',
      resource: 'robustnessruns',
      namespace: 'team-a',
      name: 'nightly',
    });
    assert.deepEqual(gateAttributes(request('HEAD', '/gates/etcdclusters/db/main')), {
      kind: 'resource',
      verb: 'get',
      group: 'etcd.robustness.io',
      resource: 'etcdclusters',
      namespace: 'db',
      name: 'main',
    });
    // Anything else is its own path as a non-resource URL (so a 404 is only seen by who may read that path).
    assert.deepEqual(gateAttributes(request('GET', '/gates/pods/db/main')), { kind: 'nonResource', verb: 'get', path: '/gates/pods/db/main' });
    assert.deepEqual(gateAttributes(request('GET', '/gates/etcdclusters/db')), { kind: 'nonResource', verb: 'get', path: '/gates/etcdclusters/db' });
  });

  test('verbs as Kubernetes authorization names them', () => {
    assert.deepEqual(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', undefined].map(verbOf), ['get', 'get', 'create', 'update', 'patch', 'delete', 'get']);
  });

  test('the SubjectAccessReview spec carries the user and the attributes', () => {
    assert.deepEqual(subjectAccessReviewSpec(alice, metrics), {
      user: alice.username,
      uid: 'u1',
      groups: ['system:serviceaccounts'],
      nonResourceAttributes: { path: '/metrics', verb: 'get' },
    });
    const gate: RequestAttributes = { kind: 'resource', verb: 'get', group: 'etcd.robustness.io', resource: 'etcdclusters', namespace: 'db', name: 'main' };
    assert.deepEqual(subjectAccessReviewSpec({ username: 'bob', extra: { scopes: ['x'] } }, gate), {
      user: 'bob',
      extra: { scopes: ['x'] },
      resourceAttributes: { namespace: 'db', verb: 'get', group: 'etcd.robustness.io', resource: 'etcdclusters', name: 'main' },
    });
    assert.equal(describeAttributes(gate), 'get etcdclusters.etcd.robustness.io "main" in namespace "db"');
  });
});
