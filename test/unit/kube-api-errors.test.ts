// How every controller module reads a failed Kubernetes API call (src/controller/kube-api.ts): the HTTP
// status only when the API answered, and the API server's own message.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ApiException } from '@kubernetes/client-node';
import { apiErrorMessage, apiStatusCode, isConflict, isNotFound, kubeApiFailure } from '../../src/controller/kube-api.ts';

const status = (code: number, message: string): ApiException<string> =>
  new ApiException(code, 'Unknown API Status Code!', JSON.stringify({ kind: 'Status', message, code }), {});

test('an answer with a Status body: its code and its message', () => {
  const gone = status(404, 'configmaps "x" not found');
  assert.equal(apiStatusCode(gone), 404);
  assert.ok(isNotFound(gone) && !isConflict(gone));
  assert.ok(isConflict(status(409, 'the object has been modified')));
  assert.equal(apiErrorMessage(gone), 'HTTP 404: configmaps "x" not found');
  assert.deepEqual(kubeApiFailure(gone), { status: 404, message: 'configmaps "x" not found' });
});

test('an answer without a Status: the body text, or client-node\'s own message line', () => {
  const proxy = new ApiException(502, 'Bad Gateway', 'upstream gone', {});
  assert.equal(apiErrorMessage(proxy), 'HTTP 502: upstream gone');
  assert.deepEqual(kubeApiFailure(proxy), { status: 502, message: 'upstream gone' });
  const empty = new ApiException(401, 'Unauthorized', '', {});
  assert.deepEqual(kubeApiFailure(empty), { status: 401, message: 'Unauthorized' });
});

test('no answer (a refused connection, an abort or a timeout): no status, the error\'s own message', () => {
  const refused = Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNREFUSED' } });
  assert.equal(apiStatusCode(refused), undefined);
  assert.equal(apiErrorMessage(refused), 'fetch failed');
  // A DOMException's numeric code (20 for an abort, 23 for a timeout) is not an HTTP status.
  const timeout = new DOMException('The operation was aborted due to timeout', 'TimeoutError');
  assert.equal(apiStatusCode(timeout), undefined);
  assert.ok(!isNotFound(timeout));
  assert.deepEqual(kubeApiFailure(timeout), { status: undefined, message: 'The operation was aborted due to timeout' });
});
