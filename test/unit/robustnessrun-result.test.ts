import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import type { CheckReport, WatchViolation } from '../../src/checker/result.ts';
import { runOfResource, violationsOf } from '../../src/controller/robustnessrun/reconciler.ts';
import { outcomeOfResult } from '../../src/run/outcome.ts';
import type { Verdict } from '../../src/domain/history.ts';
import type { ObjectMeta } from '../../src/domain/kube.ts';
import type { RobustnessRunResource, RobustnessRunSpecInput, ViolationSummary } from '../../src/domain/run-resource.ts';
import { ManifestError } from '../../src/run/manifest.ts';
import type { RunResult } from '../../src/run/index.ts';

function result(overrides: Partial<RunResult> = {}): RunResult {
  return {
    verdict: 'linearizable',
    reason: undefined,
    live: { verdict: 'linearizable', reason: undefined, lagP50Ms: 1, lagP99Ms: 3, worstLagP99Ms: 5, peakWaitingForWatch: 2, resolved: 100, method: 'revision' },
    report: undefined,
    history: undefined,
    operations: { ok: 100, failed: 0, unknown: 0, byType: {} },
    watch: { streams: 1, events: 10, resumes: 0, liveViolations: 0 },
    achievedQps: 50,
    belowMinQpsIntervals: 0,
    startTime: '2025-01-01T00:00:00Z',
    endTime: '2025-01-01T00:01:00Z',
    durationMs: 60_000,
    stoppedEarly: undefined,
    seed: 1,
    prefix: '/etcd-robustness/r1/',
    mode: 'shared',
    selfTest: undefined,
    faults: { planned: 0, injected: 0, failed: 0, events: [] },
    ...overrides,
  };
}

function watchViolation(property: WatchViolation['property'], message: string): WatchViolation {
  return { property, watch: 1, message, events: [] };
}

function report(overrides: { verdict?: Verdict; reason?: string; watch?: WatchViolation[] } = {}): CheckReport {
  const verdict = overrides.verdict ?? 'linearizable';
  return {
    verdict,
    linearizability: {
      verdict,
      operations: 100,
      ...(overrides.reason === undefined ? {} : { violation: { prefix: [], unplaceable: [3], states: [], reason: overrides.reason } }),
    },
    watch: { checked: 1, violations: overrides.watch ?? [] },
    elapsedMs: 5,
  };
}

describe('outcomeOfResult: the phase of a run result under its spec', () => {
  const spec = { traffic: { qps: { min: 10 } } };
  test('a violation fails the run, even when aborted', () => {
    assert.equal(outcomeOfResult(result({ verdict: 'violation' }), spec).phase, 'Failed');
    assert.equal(outcomeOfResult(result({ verdict: 'violation' }), spec, { reason: 'Stopped', message: 'stopped' }).phase, 'Failed');
  });

  test('an aborted run without a violation is Aborted, with the reason it was stopped', () => {
    const aborted = outcomeOfResult(result({ verdict: 'linearizable' }), spec, { reason: 'TargetDeleted', message: 'EtcdCluster ns/demo was deleted during the run' });
    assert.deepEqual(aborted, { phase: 'Aborted', reason: 'TargetDeleted', message: 'EtcdCluster ns/demo was deleted during the run' });
    assert.equal(outcomeOfResult(result({ verdict: 'inconclusive' }), spec, { reason: 'Stopped', message: 'x' }).phase, 'Aborted');
  });

  test('linearizable passes, inconclusive is Inconclusive', () => {
    assert.equal(outcomeOfResult(result({ verdict: 'linearizable' }), spec).phase, 'Passed');
    assert.equal(outcomeOfResult(result({ verdict: 'inconclusive' }), spec).phase, 'Inconclusive');
  });

  test('failed faults and low traffic come from the result and the spec', () => {
    const failedFaults = result({ faults: { planned: 3, injected: 3, failed: 1, events: [] } });
    assert.equal(outcomeOfResult(failedFaults, spec).reason, 'FaultsFailed');
    assert.equal(outcomeOfResult(failedFaults, { ...spec, faults: { tolerateFailures: true } }).phase, 'Passed');
    assert.equal(outcomeOfResult(result({ achievedQps: 9.9 }), spec).reason, 'TrafficBelowMinimum');
  });
});

describe('violationsOf', () => {
  test('none for a clean run', () => {
    assert.deepEqual(violationsOf(result({ report: report() }), []), []);
    assert.deepEqual(violationsOf(result({ hashKv: { equal: true, compared: true, detail: 'same' } }), []), []);
    // A member that could not be asked (still being replaced when the run ended) is no evidence of divergence.
    assert.deepEqual(violationsOf(result({ hashKv: { equal: false, compared: false, detail: 'not compared: 4 DEADLINE_EXCEEDED' } }), []), []);
  });

  test('the live violations come first and are kept', () => {
    const live: ViolationSummary[] = [{ check: 'linearizability', summary: 'live reason' }];
    const found = violationsOf(result({ verdict: 'violation', report: report({ verdict: 'violation', reason: 'offline reason' }) }), live);
    assert.deepEqual(found, live, 'linearizability is reported once');
    assert.notEqual(found, live);
  });

  test('a linearizability violation of the report is added with its evidence reason, else the result reason', () => {
    assert.deepEqual(violationsOf(result({ report: report({ verdict: 'violation', reason: 'read of 5 returned 4' }) }), []), [{ check: 'linearizability', summary: 'read of 5 returned 4' }]);
    assert.deepEqual(violationsOf(result({ reason: 'result reason', report: report({ verdict: 'violation' }) }), []), [{ check: 'linearizability', summary: 'result reason' }]);
    assert.deepEqual(violationsOf(result({ report: report({ verdict: 'violation' }) }), []), [{ check: 'linearizability', summary: 'not linearizable' }]);
  });

  test('watch violations are added as watch_<property>, without duplicating live ones', () => {
    const live: ViolationSummary[] = [{ check: 'watch_ordered', summary: 'revision 5 after 7' }];
    const found = violationsOf(
      result({ report: report({ watch: [watchViolation('ordered', 'revision 5 after 7'), watchViolation('ordered', 'revision 9 after 11'), watchViolation('reliable', 'gap at 20')] }) }),
      live,
    );
    assert.deepEqual(found, [
      { check: 'watch_ordered', summary: 'revision 5 after 7' },
      { check: 'watch_ordered', summary: 'revision 9 after 11' },
      { check: 'watch_reliable', summary: 'gap at 20' },
    ]);
  });

  test('a long watch violation seen live (its summary cut to 1000 characters) is not listed twice', () => {
    const message = `stream 3: ${'x'.repeat(1500)}`;
    const found = violationsOf(result({ report: report({ watch: [watchViolation('ordered', message)] }) }), [{ check: 'watch_ordered', summary: message.slice(0, 1000) }]);
    assert.deepEqual(found, [{ check: 'watch_ordered', summary: message.slice(0, 1000) }]);
  });

  test('a HashKV mismatch is a violation', () => {
    assert.deepEqual(violationsOf(result({ hashKv: { equal: false, compared: true, detail: 'main-1 differs at 40' } }), []), [{ check: 'hash_kv', summary: 'main-1 differs at 40' }]);
  });

  test('at most 10, the first found, each summary at most 1000 characters', () => {
    const watch = Array.from({ length: 15 }, (_, k) => watchViolation('unique', `duplicate event ${k} ${'x'.repeat(2000)}`));
    const found = violationsOf(result({ report: report({ verdict: 'violation', reason: 'y'.repeat(5000), watch }) }), []);
    assert.equal(found.length, 10);
    assert.equal(found[0]!.check, 'linearizability');
    assert.equal(found[0]!.summary, 'y'.repeat(1000));
    assert.ok(found.every((v) => v.summary.length <= 1000));
    assert.ok(found[9]!.summary.startsWith('duplicate event 8 '));
  });

  test('property: bounded, live first, no duplicates when live and report agree on short messages', () => {
    const propertyArb = fc.constantFrom<WatchViolation['property']>('ordered', 'unique', 'atomic', 'reliable', 'filtered');
    const msgArb = fc.string({ minLength: 1, maxLength: 40 });
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.record({ property: propertyArb, message: msgArb }), { maxLength: 14, selector: (v) => `${v.property}/${v.message}` }),
        fc.nat(14),
        fc.boolean(),
        fc.option(msgArb, { nil: undefined }),
        (watch, liveCount, linViolation, hashDetail) => {
          const live = watch.slice(0, Math.min(liveCount, 10)).map((v) => ({ check: `watch_${v.property}`, summary: v.message }));
          const r = result({
            report: report({ verdict: linViolation ? 'violation' : 'linearizable', ...(linViolation ? { reason: 'bad read' } : {}), watch: watch.map((v) => watchViolation(v.property, v.message)) }),
            ...(hashDetail === undefined ? {} : { hashKv: { equal: false, compared: true, detail: hashDetail } }),
          });
          const found = violationsOf(r, live);
          assert.ok(found.length <= 10);
          assert.deepEqual(found.slice(0, live.length), live);
          const keys = found.map((v) => `${v.check}/${v.summary}`);
          assert.equal(new Set(keys).size, keys.length);
          const expected = live.length + (linViolation ? 1 : 0) + (watch.length - live.length) + (hashDetail === undefined ? 0 : 1);
          assert.equal(found.length, Math.min(10, expected));
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('runOfResource', () => {
  function resource(spec: RobustnessRunSpecInput, metadata: Partial<ObjectMeta> = {}): RobustnessRunResource {
    return { apiVersion: 'etcd.robustness.io/v1alpha1', kind: 'RobustnessRun', metadata: { name: 'nightly', namespace: 'team-a', ...metadata }, spec };
  }

  test('a valid resource parses with its cluster reference, name and namespace, in shared mode by default', () => {
    const run = runOfResource(resource({ clusterRef: { name: 'main', namespace: 'db' }, duration: '90s', schedule: { kind: 'cron', cron: '*/5 * * * *' } }));
    assert.equal(run.kind, 'RobustnessRun');
    assert.deepEqual(run.metadata, { name: 'nightly', namespace: 'team-a' });
    assert.deepEqual(run.spec.clusterRef, { name: 'main', namespace: 'db' });
    assert.equal(run.spec.mode, 'shared');
    assert.equal(run.spec.durationMs, 90_000);
    assert.equal(run.spec.schedule.kind, 'cron');
    assert.equal(run.spec.schedule.cron, '*/5 * * * *');
    assert.equal(run.spec.schedule.suspend, false);
  });

  test('an explicit mode is kept', () => {
    assert.equal(runOfResource(resource({ clusterRef: { name: 'main' }, mode: 'exclusive' })).spec.mode, 'exclusive');
  });

  test('a resource without a namespace parses without one', () => {
    const r = resource({ clusterRef: { name: 'main' } });
    delete r.metadata.namespace;
    assert.deepEqual(runOfResource(r).metadata, { name: 'nightly' });
  });

  test('server-side metadata (uid, resourceVersion, managedFields, ...) does not break parsing', () => {
    const metadata: Partial<ObjectMeta> & { managedFields: unknown[] } = {
      uid: '6b1e0a2c-0000-4000-8000-000000000001',
      resourceVersion: '123456',
      generation: 4,
      creationTimestamp: '2025-01-01T00:00:00Z',
      labels: { team: 'storage' },
      annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{"spec":{}}' },
      finalizers: ['etcd.robustness.io/run-cleanup'],
      ownerReferences: [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'x', uid: 'u' }],
      managedFields: [{ manager: 'kubectl', operation: 'Apply', apiVersion: 'etcd.robustness.io/v1alpha1', fieldsType: 'FieldsV1', fieldsV1: { 'f:spec': {} } }],
    };
    const run = runOfResource(resource({ clusterRef: { name: 'main' } }, metadata));
    assert.deepEqual(run.metadata, { name: 'nightly', namespace: 'team-a' });
    assert.deepEqual(run.spec.clusterRef, { name: 'main' });
  });

  test('an invalid resource throws a ManifestError naming the field and the resource', () => {
    const invalid = (spec: RobustnessRunSpecInput, path: string): void => {
      assert.throws(
        () => runOfResource(resource(spec)),
        (error: unknown) => {
          assert.ok(error instanceof ManifestError);
          assert.equal(error.path, path);
          assert.equal(error.file, 'RobustnessRun team-a/nightly');
          assert.match(error.message, new RegExp(path.replace(/\./g, '\\.')));
          return true;
        },
      );
    };
    invalid({ clusterRef: { name: 'main' }, duration: 'soon' }, 'spec.duration');
    invalid({ clusterRef: { name: 'main' }, traffic: { keys: -1 } }, 'spec.traffic.keys');
    invalid({ clusterRef: { name: 'main' }, schedule: { kind: 'cron', cron: 'not a cron' } }, 'spec.schedule.cron');
    invalid({ clusterRef: { name: 'main' }, unknownField: true } as RobustnessRunSpecInput, 'spec.unknownField');
  });

  test('every problem is reported at once', () => {
    try {
      runOfResource(resource({ clusterRef: { name: 'main' }, duration: 'soon', traffic: { keys: 0 } }));
      assert.fail('accepted');
    } catch (error) {
      assert.ok(error instanceof ManifestError);
      assert.deepEqual(error.issues.map((i) => i.path), ['spec.duration', 'spec.traffic.keys']);
    }
  });
});
