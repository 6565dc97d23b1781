import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { faultNames, targetRules } from '../../src/domain/faults.ts';
import { checkFaultParam, defaultFaultChoices, faultCatalog, faultDefinition, isFaultName, validateFaultParams } from '../../src/faults/catalog.ts';

describe('fault catalog', () => {
  test('every fault name has one definition, under its own name, in faultNames order', () => {
    assert.deepEqual(faultCatalog.map((d) => d.name), [...faultNames]);
    for (const name of faultNames) assert.equal(faultDefinition(name).name, name);
  });

  test('definitions are consistent: default target allowed, targets known, defaults valid, failpoints only on gofail faults', () => {
    for (const d of faultCatalog) {
      assert.ok(d.allowedTargets.includes(d.defaultTarget), `${d.name}: default target ${d.defaultTarget} not allowed`);
      for (const t of d.allowedTargets) assert.ok(targetRules.includes(t), `${d.name}: ${t}`);
      assert.ok(d.description.length > 10);
      assert.equal(d.kind === 'failpoint', d.needsGofail, d.name);
      assert.equal(d.failpoint !== undefined, d.needsGofail, d.name);
      if (d.failpoint !== undefined) {
        assert.equal(d.failpoint.term, 'panic');
        assert.ok(d.instantaneous);
        assert.ok(d.needsAgent);
      }
      for (const [field, param] of Object.entries(d.params)) {
        if (param.default !== undefined) assert.deepEqual(checkFaultParam(d.name, field, param.default), { value: param.default }, `${d.name}.${field}`);
      }
    }
  });

  test('instantaneous faults are exactly the ones without a duration', () => {
    const instantaneous = faultCatalog.filter((d) => d.instantaneous).map((d) => d.name);
    assert.deepEqual(instantaneous, [
      'kill',
      'memberReplace',
      'leaderTransfer',
      'defragment',
      'compact',
      'rollingRestart',
      ...faultNames.filter((n) => n.endsWith('Panic')),
    ]);
  });

  test("gofail failpoint names are etcd v3.6's", () => {
    const names = faultCatalog.flatMap((d) => (d.failpoint === undefined ? [] : [d.failpoint.name]));
    assert.deepEqual(names, [
      'raftBeforeSave',
      'raftAfterSave',
      'beforeCommit',
      'afterCommit',
      'defragBeforeCopy',
      'defragBeforeRename',
      'compactBeforeCommitBatch',
      'compactAfterCommitBatch',
      'compactBeforeSetFinishedCompact',
      'raftBeforeApplySnap',
    ]);
    assert.equal(faultDefinition('defragBeforeCopyPanic').failpoint?.trigger, 'defragment');
    assert.equal(faultDefinition('raftBeforeApplySnapPanic').failpoint?.trigger, 'snapshot');
    assert.equal(faultDefinition('compactBeforeSetFinishedCompactPanic').failpoint?.trigger, 'compact');
  });

  test('crash: a process fault through the agent, with a duration, on one member or a minority or majority, no parameters', () => {
    const crash = faultDefinition('crash');
    assert.equal(crash.kind, 'process');
    assert.equal(crash.needsAgent, true);
    assert.equal(crash.needsGofail, false);
    assert.equal(crash.instantaneous, false);
    assert.equal(crash.defaultTarget, 'random');
    assert.deepEqual([...crash.allowedTargets], ['random', 'leader', 'follower', 'member', 'minority', 'majority']);
    assert.deepEqual(validateFaultParams('crash', {}), { params: {} });
    assert.deepEqual(validateFaultParams('crash', { ttlMs: 5 }), { problem: 'crash takes no parameters', field: 'ttlMs' });
    assert.deepEqual(faultNames.slice(0, 3), ['kill', 'crash', 'pause']);
  });

  test('compact and the compaction failpoints take revision: trailing (default) or latest; no other fault does', () => {
    const withRevision = faultCatalog.filter((d) => Object.hasOwn(d.params, 'revision')).map((d) => d.name);
    assert.deepEqual(withRevision, ['compact', 'compactBeforeCommitBatchPanic', 'compactAfterCommitBatchPanic', 'compactBeforeSetFinishedCompactPanic']);
    assert.deepEqual(validateFaultParams('compactBeforeSetFinishedCompactPanic', {}), { params: { revision: 'trailing' } });
    assert.deepEqual(validateFaultParams('compact', { revision: 'latest' }), { params: { revision: 'latest' } });
    assert.deepEqual(validateFaultParams('compact', { revision: 'newest' }), { problem: 'must be one of trailing, latest, got "newest"', field: 'revision' });
  });

  test('the default choices are catalog faults', () => {
    for (const name of defaultFaultChoices) assert.ok(isFaultName(name));
    assert.equal(isFaultName('explode'), false);
  });

  test('validateFaultParams fills defaults (etcd robustness delay values) and keeps given values', () => {
    assert.deepEqual(validateFaultParams('delay', {}), { params: { delayMs: 75, jitterMs: 50 } });
    assert.deepEqual(validateFaultParams('delay', { delayMs: 200 }), { params: { delayMs: 200, jitterMs: 50 } });
    assert.deepEqual(validateFaultParams('drop', {}), { params: { percent: 50 } });
    assert.deepEqual(validateFaultParams('partition', { mode: 'isolate' }), { params: { mode: 'isolate' } });
    assert.deepEqual(validateFaultParams('partition', {}), { params: { mode: 'split' } });
    assert.deepEqual(validateFaultParams('kill', {}), { params: {} });
    assert.deepEqual(validateFaultParams('diskPressure', { bytes: 2 ** 30 }), { params: { bytes: 2 ** 30 } });
  });

  test('validateFaultParams rejects unknown parameters, wrong types and out-of-range values, naming the field', () => {
    assert.deepEqual(validateFaultParams('kill', { delayMs: 5 }), { problem: 'kill takes no parameters', field: 'delayMs' });
    assert.deepEqual(validateFaultParams('delay', { percent: 5 }), { problem: 'unknown parameter of delay (allowed: delayMs, jitterMs)', field: 'percent' });
    assert.deepEqual(validateFaultParams('delay', { delayMs: '100' }), { problem: 'must be an integer between 0 and 10000, got "100"', field: 'delayMs' });
    assert.deepEqual(validateFaultParams('delay', { jitterMs: 1.5 }), { problem: 'must be an integer between 0 and 10000, got 1.5', field: 'jitterMs' });
    assert.deepEqual(validateFaultParams('drop', { percent: 101 }), { problem: 'must be a number between 1 and 100, got 101', field: 'percent' });
    assert.deepEqual(validateFaultParams('drop', { percent: Number.NaN }), { problem: 'must be a number between 1 and 100, got NaN', field: 'percent' });
    assert.deepEqual(validateFaultParams('partition', { mode: 'half' }), { problem: 'must be one of isolate, split, asymmetric, got "half"', field: 'mode' });
    assert.deepEqual(validateFaultParams('partition', { mode: [] }), { problem: 'must be one of isolate, split, asymmetric, got a list', field: 'mode' });
    // Inherited names are not parameters.
    assert.deepEqual(validateFaultParams('delay', { toString: 1 }), { problem: 'unknown parameter of delay (allowed: delayMs, jitterMs)', field: 'toString' });
  });
});
