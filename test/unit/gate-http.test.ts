// The gate endpoints: criteriaOf (query parameters), clusterGate and runGate (the answers), and
// gatesHandler end to end over a real loopback HTTP server whose lookup reads in-memory objects.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { Condition, EtcdCluster, GateResult, RobustnessRunResource, RobustnessRunStatus, UpgradeStatus } from '../../src/domain/index.ts';
import { clusterGate, criteriaOf, GateQueryError, gatesHandler, runGate, type GateLookup } from '../../src/controller/gates/http.ts';
import { defaultGateCriteria } from '../../src/controller/gates/criteria.ts';

const now = new Date('2026-11-25T12:00:00Z');

function condition(type: string, status: 'True' | 'False', message = ''): Condition {
  return { type, status, observedGeneration: 1, lastTransitionTime: '2026-11-25T11:00:00Z', reason: 'R', message };
}

function gateResult(step: string, phase: GateResult['phase'], reason?: string): GateResult {
  return { step, run: `c-u1-${step}`, phase, startedAt: '2026-11-25T11:00:00Z', ...(reason === undefined ? {} : { reason }) };
}

function upgradeStatus(gates: GateResult[], phase: UpgradeStatus['phase'] = 'Progressing'): UpgradeStatus {
  return { number: 1, from: '3.5.35', to: '3.6.6', phase, order: ['c-0', 'c-1', 'c-2'], startedAt: '2026-11-25T11:00:00Z', gates };
}

function cluster(conditions: Condition[] | undefined, upgrade?: UpgradeStatus, namespace: string | null = 'db'): EtcdCluster {
  const c: EtcdCluster = {
    apiVersion: 'etcd.robustness.io/v1alpha1',
    kind: 'EtcdCluster',
    metadata: { name: 'c', ...(namespace === null ? {} : { namespace }) },
    spec: {
      version: '3.6.6',
      replicas: 3,
      topology: 'standard',
      storage: { size: '1Gi' },
      image: { repository: 'gcr.io/etcd-development/etcd', failpoints: false, pullPolicy: 'IfNotPresent' },
      agent: { enabled: false },
      memberGracePeriod: '5m',
    },
  };
  if (conditions !== undefined) c.status = { phase: 'Running', conditions, ...(upgrade === undefined ? {} : { upgrade }) };
  return c;
}

function run(name: string, status: RobustnessRunStatus | undefined): RobustnessRunResource {
  return { apiVersion: 'etcd.robustness.io/v1alpha1', kind: 'RobustnessRun', metadata: { name, namespace: 'db' }, spec: {}, ...(status === undefined ? {} : { status }) };
}

const passed = (changes: Partial<RobustnessRunStatus> = {}): RobustnessRunStatus => ({
  phase: 'Passed',
  verdict: 'linearizable',
  runNumber: 4,
  endTime: '2026-11-25T11:30:00Z',
  operations: { ok: 990, failed: 5, unknown: 5 },
  ...changes,
});

describe('criteriaOf', () => {
  test('no parameters: the defaults and no maxAge', () => {
    assert.deepEqual(criteriaOf(new URLSearchParams('')), { criteria: defaultGateCriteria });
  });

  test('every parameter overrides its default', () => {
    assert.deepEqual(criteriaOf(new URLSearchParams('minAvailability=0.99&maxUnknownRate=0.01&watchChecks=false&maxAge=1h30m')), {
      criteria: { watchChecks: false, minAvailability: 0.99, maxUnknownRate: 0.01 },
      maxAgeMs: 5_400_000,
    });
    assert.equal(criteriaOf(new URLSearchParams('watchChecks=true')).criteria.watchChecks, true);
    assert.deepEqual(criteriaOf(new URLSearchParams('minAvailability=0&maxUnknownRate=1')).criteria, { watchChecks: true, minAvailability: 0, maxUnknownRate: 1 });
    assert.equal(criteriaOf(new URLSearchParams('maxAge=0s')).maxAgeMs, 0);
  });

  test('bad values are GateQueryErrors naming the parameter', () => {
    const bad: [string, RegExp][] = [
      ['minAvailability=1.5', /minAvailability=1\.5 must be a number from 0 to 1/],
      ['minAvailability=-0.1', /minAvailability=-0\.1/],
      ['minAvailability=', /minAvailability= must be a number/],
      ['minAvailability=%20', /minAvailability/],
      ['maxUnknownRate=abc', /maxUnknownRate=abc must be a number from 0 to 1/],
      ['maxUnknownRate=NaN', /maxUnknownRate=NaN/],
      ['maxUnknownRate=Infinity', /maxUnknownRate=Infinity/],
      ['watchChecks=yes', /watchChecks=yes must be true or false/],
      ['watchChecks=True', /watchChecks=True must be true or false/],
      ['maxAge=soon', /^query parameter maxAge=soon: "soon" is not a duration/],
      ['maxAge=', /maxAge=/],
    ];
    for (const [query, message] of bad) {
      assert.throws(
        () => criteriaOf(new URLSearchParams(query)),
        (error: unknown) => error instanceof GateQueryError && message.test(error.message),
        query,
      );
    }
  });
});

describe('clusterGate', () => {
  test('not Available: failing with the condition message, or "no status yet"', () => {
    const answer = clusterGate(cluster([condition('Available', 'False', '1 of 3 members serve')]));
    assert.equal(answer.passing, false);
    assert.equal(answer.kind, 'etcdcluster');
    assert.equal(answer.name, 'db/c');
    assert.equal(answer.reason, 'not Available: 1 of 3 members serve');
    assert.equal(clusterGate(cluster(undefined)).reason, 'not Available: no status yet');
    assert.equal(clusterGate(cluster(undefined, undefined, null)).name, 'default/c');
  });

  test('UpgradeBlocked True fails even though Available', () => {
    const answer = clusterGate(cluster([condition('Available', 'True'), condition('UpgradeBlocked', 'True', 'gate end failed')], upgradeStatus([], 'Blocked')));
    assert.equal(answer.passing, false);
    assert.equal(answer.reason, 'upgrade blocked: gate end failed');
    assert.deepEqual(answer.upgrade, { from: '3.5.35', to: '3.6.6', phase: 'Blocked' });
  });

  test('the last finished gate failed: failing, naming the step and run; a Running gate after it does not count', () => {
    const gates = [gateResult('before', 'Passed'), gateResult('after-c-0', 'Failed', 'availability 0.5 is below 0.95'), gateResult('after-c-0-retry', 'Running')];
    const answer = clusterGate(cluster([condition('Available', 'True'), condition('UpgradeBlocked', 'False')], upgradeStatus(gates)));
    assert.equal(answer.passing, false);
    assert.equal(answer.reason, 'the last gate (after-c-0, run c-u1-after-c-0) failed: availability 0.5 is below 0.95');
    assert.deepEqual(answer.lastGate, gates[1]);
  });

  test('a failed gate answered by a roll-back passes: the members run the version from before', () => {
    const gates = [gateResult('after-c-0', 'Failed', 'availability 0.5 is below 0.95')];
    const answer = clusterGate(cluster([condition('Available', 'True'), condition('UpgradeBlocked', 'False')], upgradeStatus(gates, 'RolledBack')));
    assert.equal(answer.passing, true);
    assert.equal(answer.reason, 'Available; the upgrade to 3.6.6 was rolled back to 3.5.35 after its gate after-c-0 failed');
  });

  test('passing: Available without upgrade gates, and Available with a passed last gate', () => {
    const plain = clusterGate(cluster([condition('Available', 'True'), condition('UpgradeBlocked', 'False')]));
    assert.equal(plain.passing, true);
    assert.equal(plain.reason, 'Available, no upgrade gate has run');
    assert.equal(plain.upgrade, undefined);
    assert.equal(plain.phase, 'Running');

    const gated = clusterGate(cluster([condition('Available', 'True')], upgradeStatus([gateResult('before', 'Failed', 'x'), gateResult('before', 'Passed')], 'Succeeded')));
    assert.equal(gated.passing, true);
    assert.equal(gated.reason, 'Available; the last gate (before) passed');
  });
});

describe('runGate', () => {
  test('a finished run is judged by the criteria, with its figures', () => {
    const answer = runGate(run('r', passed()), defaultGateCriteria, now);
    assert.equal(answer.passing, true);
    assert.equal(answer.kind, 'robustnessrun');
    assert.equal(answer.name, 'db/r');
    assert.equal(answer.run, 4);
    assert.equal(answer.verdict, 'linearizable');
    assert.equal(answer.availability, 0.99);
    assert.equal(answer.unknownRate, 0.005);
    assert.equal(answer.endTime, '2026-11-25T11:30:00Z');
    assert.deepEqual(answer.criteria, defaultGateCriteria);
    const strict = runGate(run('r', passed()), { ...defaultGateCriteria, minAvailability: 0.995 }, now);
    assert.equal(strict.passing, false);
    assert.match(strict.reason, /^availability 0\.99 is below 0\.995/);
  });

  test('no run finished: failing', () => {
    assert.equal(runGate(run('r', undefined), defaultGateCriteria, now).reason, 'no run has finished yet');
    assert.equal(runGate(run('r', {}), defaultGateCriteria, now).passing, false);
  });

  test('running without a previous run: failing, naming the run in progress', () => {
    const answer = runGate(run('r', { phase: 'Running', runNumber: 1 }), defaultGateCriteria, now);
    assert.equal(answer.passing, false);
    assert.equal(answer.reason, 'run 1 is in progress and no run has finished yet');
    assert.equal(runGate(run('r', { phase: 'Pending' }), defaultGateCriteria, now).reason, 'run 1 is in progress and no run has finished yet');
  });

  test('running with a previous run: judged on that run\'s phase (verdict only)', () => {
    const last = { number: 3, phase: 'Passed' as const, verdict: 'linearizable' as const, startTime: '2026-11-25T10:00:00Z', endTime: '2026-11-25T10:10:00Z' };
    const ok = runGate(run('r', { phase: 'Running', runNumber: 4, lastRun: last }), defaultGateCriteria, now);
    assert.equal(ok.passing, true);
    assert.equal(ok.run, 3);
    assert.equal(ok.verdict, 'linearizable');
    assert.equal(ok.reason, 'run 4 is in progress; judged on run 3, which ended Passed (verdict only)');
    const bad = runGate(run('r', { phase: 'Running', runNumber: 4, lastRun: { ...last, phase: 'Failed', verdict: 'violation' } }), defaultGateCriteria, now);
    assert.equal(bad.passing, false);
    assert.equal(bad.verdict, 'violation');
  });

  test('maxAge: a run that ended longer ago fails, one within it (or exactly at it) is judged', () => {
    const halfHour = 30 * 60_000;
    assert.equal(runGate(run('r', passed()), defaultGateCriteria, now, halfHour).passing, true);
    const old = runGate(run('r', passed()), defaultGateCriteria, now, halfHour - 1);
    assert.equal(old.passing, false);
    assert.equal(old.reason, 'the last run ended at 2026-11-25T11:30:00Z, longer ago than maxAge');
    const noEnd = runGate(run('r', passed({ endTime: undefined })), defaultGateCriteria, now, halfHour);
    assert.equal(noEnd.passing, false);
    assert.equal(noEnd.reason, 'the last run ended at an unknown time, longer ago than maxAge');
    // A failing run stays failing whatever its age.
    assert.equal(runGate(run('r', passed({ verdict: 'violation', phase: 'Failed' })), defaultGateCriteria, now, halfHour).passing, false);
  });
});

describe('gatesHandler over loopback HTTP', () => {
  const clusters = new Map<string, EtcdCluster>([
    ['db/good', { ...cluster([condition('Available', 'True')]), metadata: { name: 'good', namespace: 'db' } }],
    ['db/down', { ...cluster([condition('Available', 'False', 'no quorum')]), metadata: { name: 'down', namespace: 'db' } }],
  ]);
  const runs = new Map<string, RobustnessRunResource>([
    ['db/ok', run('ok', passed())],
    ['db/bad', run('bad', passed({ phase: 'Failed', verdict: 'violation', violations: [{ check: 'linearizability', summary: 'stale read' }] }))],
  ]);
  const looked: string[] = [];
  const lookup: GateLookup = {
    cluster: (namespace, name) => {
      looked.push(`cluster ${namespace}/${name}`);
      return Promise.resolve(clusters.get(`${namespace}/${name}`));
    },
    run: (namespace, name) => {
      looked.push(`run ${namespace}/${name}`);
      return Promise.resolve(runs.get(`${namespace}/${name}`));
    },
  };
  const handler = gatesHandler(lookup, () => now);
  let server: http.Server;
  let base = '';

  before(async () => {
    server = http.createServer((request, response) => {
      void handler(request, response);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    await new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
  });

  async function get(path: string): Promise<{ status: number; type: string | null; body: Record<string, unknown> }> {
    const response = await fetch(`${base}${path}`);
    return { status: response.status, type: response.headers.get('content-type'), body: (await response.json()) as Record<string, unknown> };
  }

  test('a passing cluster: 200 with a JSON answer', async () => {
    const { status, type, body } = await get('/gates/etcdclusters/db/good');
    assert.equal(status, 200);
    assert.equal(type, 'application/json');
    assert.equal(body.passing, true);
    assert.equal(body.kind, 'etcdcluster');
    assert.equal(body.name, 'db/good');
    assert.equal(body.reason, 'Available, no upgrade gate has run');
  });

  test('a failing cluster: 503 with the reason', async () => {
    const { status, body } = await get('/gates/etcdclusters/db/down');
    assert.equal(status, 503);
    assert.deepEqual({ passing: body.passing, reason: body.reason }, { passing: false, reason: 'not Available: no quorum' });
  });

  test('a missing cluster or run: 404 naming it', async () => {
    const c = await get('/gates/etcdclusters/db/nope');
    assert.equal(c.status, 404);
    assert.deepEqual(c.body, { passing: false, kind: 'etcdcluster', name: 'db/nope', reason: 'no such EtcdCluster' });
    const r = await get('/gates/robustnessruns/other/ok');
    assert.equal(r.status, 404);
    assert.deepEqual(r.body, { passing: false, kind: 'robustnessrun', name: 'other/ok', reason: 'no such RobustnessRun' });
  });

  test('runs: 200 passing, 503 failing, criteria from the query', async () => {
    const ok = await get('/gates/robustnessruns/db/ok');
    assert.equal(ok.status, 200);
    assert.equal(ok.body.passing, true);
    assert.equal(ok.body.availability, 0.99);
    assert.deepEqual(ok.body.criteria, defaultGateCriteria);

    const bad = await get('/gates/robustnessruns/db/bad');
    assert.equal(bad.status, 503);
    assert.equal(bad.body.reason, 'the run ended Failed with verdict violation (linearizability: stale read)');

    const strict = await get('/gates/robustnessruns/db/ok?minAvailability=0.999&watchChecks=false');
    assert.equal(strict.status, 503);
    assert.deepEqual(strict.body.criteria, { watchChecks: false, minAvailability: 0.999, maxUnknownRate: 0.05 });

    const stale = await get('/gates/robustnessruns/db/ok?maxAge=10m');
    assert.equal(stale.status, 503);
    assert.match(String(stale.body.reason), /longer ago than maxAge/);
    assert.equal((await get('/gates/robustnessruns/db/ok?maxAge=1h')).status, 200);
  });

  test('bad query parameters: 400 with the error, before any lookup', async () => {
    looked.length = 0;
    const { status, body } = await get('/gates/robustnessruns/db/ok?minAvailability=2');
    assert.equal(status, 400);
    assert.deepEqual(body, { error: 'query parameter minAvailability=2 must be a number from 0 to 1' });
    assert.equal((await get('/gates/robustnessruns/db/nope?maxAge=forever')).status, 400);
    assert.deepEqual(looked, []);
  });

  test('unknown paths: 404 with the usage', async () => {
    for (const path of ['/gates/', '/gates/etcdclusters/db', '/gates/pods/db/x', '/gates/etcdclusters/db/good/extra']) {
      const { status, body } = await get(path);
      assert.equal(status, 404, path);
      assert.match(String(body.error), /^unknown gate .*use \/gates\/etcdclusters\/<namespace>\/<name> or \/gates\/robustnessruns\/<namespace>\/<name>$/, path);
    }
  });
  test('a namespace or name that is no object name (an encoded slash) is a 400: the authorizer judged exactly these segments', async () => {
    for (const path of ['/gates/etcdclusters/db%2Fother/good', '/gates/robustnessruns/db/..%2Fx', '/gates/etcdclusters/DB/good']) {
      const { status, body } = await get(path);
      assert.equal(status, 400, path);
      assert.match(String(body.error), /the namespace and name must be Kubernetes object names/, path);
    }
  });
});
