import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { FailpointError, GofailClient } from '../../src/faults/index.ts';
import { freeLoopbackPorts } from '../../src/local/index.ts';

describe('GofailClient errors', () => {
  test('an invalid failpoint name is refused before any request', async () => {
    const client = new GofailClient('http://127.0.0.1:1');
    await assert.rejects(client.activate('../etc', 'panic'), (error: unknown) => {
      assert.ok(error instanceof FailpointError);
      assert.equal(error.failpoint, '../etc');
      assert.match(error.message, /not a valid failpoint name/);
      return true;
    });
  });

  test('an unreachable endpoint names the endpoint and the request', async () => {
    const [port] = await freeLoopbackPorts(1);
    const client = new GofailClient(`http://127.0.0.1:${port}/`);
    await assert.rejects(client.list(), new RegExp(`gofail at http://127\\.0\\.0\\.1:${port}: GET / failed`));
  });
});
