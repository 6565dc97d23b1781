// The historical bug suite's pure parts (bench/bug-suite.ts): every bug in examples/bugs/ has a valid spec
// and a manifest that `run --local` accepts for its cluster size, a run's verdict.json is read into the
// kinds it found, and a run is classified against what its release asks (caught / passed).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { BugSpecError, classify, findingsOf, formatTable, loadBugSuite, meetsBar, parseBugSpec, summarizeRelease, type BugSpec, type SuiteRun } from '../../bench/bug-suite.ts';
import { checkRunMembers, parseRobustnessRun } from '../../src/run/manifest.ts';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const suiteDir = path.join(root, 'examples', 'bugs');

const spec: BugSpec = { issue: 15220, title: 'progress notification ahead of events', members: 1, affected: 'v3.5.7', fixed: 'v3.5.8', expect: ['watch:bookmarkable'], dir: '/x/15220' };

describe('bug specs', () => {
  test('every bug in examples/bugs has a valid spec and a manifest run --local accepts for its members', () => {
    const specs = loadBugSuite(suiteDir);
    assert.ok(specs.length >= 7, `the suite has ${specs.length} bugs`);
    for (const bug of specs) {
      const file = path.join(bug.dir, 'run.yaml');
      const run = parseRobustnessRun(readFileSync(file, 'utf8'), { file, defaultMode: 'exclusive' });
      checkRunMembers(run, Array.from({ length: bug.members }, (_, i) => `m${i + 1}`), file);
      assert.equal(run.spec.mode, 'exclusive', `${file}: a fresh cluster, revisions checked exactly`);
      assert.ok(run.spec.checks.linearizability || run.spec.checks.watch, `${file}: some check runs`);
    }
  });

  test('picking bugs: the ones named, and an unknown one is an error naming the suite', () => {
    assert.deepEqual(
      loadBugSuite(suiteDir, [15220, 14370]).map((s) => s.issue),
      [14370, 15220],
    );
    assert.throws(() => loadBugSuite(suiteDir, [1]), (error: unknown) => error instanceof BugSpecError && /no bug 1 \(the suite has .*14370/.test(error.message));
  });

  test('a malformed spec names the file and the field', () => {
    const good = { issue: 15220, title: 't', members: 1, affected: 'v3.5.7', fixed: 'v3.5.8', expect: ['watch:bookmarkable'] };
    const bad = (patch: Record<string, unknown>, pattern: RegExp, dir = '/x/15220'): void => {
      assert.throws(() => parseBugSpec(JSON.stringify({ ...good, ...patch }), 'bug.json', dir), (error: unknown) => error instanceof BugSpecError && error.file === 'bug.json' && pattern.test(error.message));
    };
    assert.deepEqual(parseBugSpec(JSON.stringify(good), 'bug.json', '/x/15220'), { ...good, dir: '/x/15220' });
    assert.throws(() => parseBugSpec('{', 'bug.json', '/x/15220'), /bug.json: not JSON/);
    bad({ members: 2 }, /"members" must be 1, 3 or 5/);
    bad({ affected: '3.5.7' }, /"affected" must be an etcd release like v3\.5\.4 \(or v3\.5\.13\+<patch>\), got "3\.5\.7"/);
    bad({ affected: 'v3.5.13+' }, /"affected" must be an etcd release like v3\.5\.4/);
    // A patched release (test/bin/etcd-release/patches/<patch>.patch) is a release of its own.
    const patched = { ...good, affected: 'v3.5.13+compactBeforeSetFinishedCompact', fixed: 'v3.5.14' };
    assert.deepEqual(parseBugSpec(JSON.stringify(patched), 'bug.json', '/x/15220'), { ...patched, dir: '/x/15220' });
    const flagged = { ...good, etcdFlags: ['--experimental-compaction-batch-limit=1'] };
    assert.deepEqual(parseBugSpec(JSON.stringify(flagged), 'bug.json', '/x/15220'), { ...flagged, dir: '/x/15220' });
    bad({ fixed: 'v3.5.7' }, /name the same release/);
    bad({ expect: ['watch:sideways'] }, /unknown violation kind "watch:sideways"/);
    bad({ expect: [] }, /"expect" must be a non-empty list/);
    bad({ extra: 1 }, /unknown field "extra"/);
    const flags = ['--snapshot-count=10', '--experimental-watch-progress-notify-interval=10ms'];
    assert.deepEqual(parseBugSpec(JSON.stringify({ ...good, etcdFlags: flags }), 'bug.json', '/x/15220'), { ...good, etcdFlags: flags, dir: '/x/15220' });
    bad({ etcdFlags: '--snapshot-count=10' }, /"etcdFlags" must be a list/);
    bad({ etcdFlags: ['snapshot-count=10'] }, /"etcdFlags": an etcd flag must start with "--"/);
    bad({ etcdFlags: [10] }, /"etcdFlags": an etcd flag must be a string, got 10/);
    bad({}, /"issue" is 15220 but the folder is 14370/, '/x/14370');
  });
});

describe('reading a run and classifying it', () => {
  const summary = (fields: Record<string, unknown>): unknown => ({ outcome: { phase: 'Passed' }, live: { verdict: 'linearizable' }, linearizability: { verdict: 'linearizable', staleReadViolations: 0 }, watchViolations: [], ...fields });

  test('the kinds a verdict.json shows', () => {
    const failed = findingsOf(
      summary({
        outcome: { phase: 'Failed', reason: 'watch bookmarkable' },
        live: { verdict: 'linearizable', firstViolationMs: 4200 },
        watchViolations: [{ property: 'bookmarkable' }, { property: 'bookmarkable' }, { property: 'ordered' }],
        hashKv: { equal: false },
        linearizability: { verdict: 'violation', staleReadViolations: 2 },
      }),
      'verdict.json',
    );
    assert.deepEqual(failed, { phase: 'Failed', kinds: ['hashKV', 'linearizability', 'staleRead', 'watch:bookmarkable', 'watch:ordered'], firstViolationMs: 4200, reason: 'watch bookmarkable' });
    assert.deepEqual(findingsOf(summary({}), 'verdict.json').kinds, []);
    assert.throws(() => findingsOf({ live: {} }, 'verdict.json'), /verdict.json: the run summary has no outcome phase/);
  });

  test('affected release: caught only by an expected kind', () => {
    const f = (phase: string, kinds: string[]) => ({ phase, kinds, firstViolationMs: undefined, reason: undefined });
    assert.equal(classify(f('Failed', ['watch:bookmarkable']), spec, 'affected'), 'caught');
    assert.equal(classify(f('Failed', ['linearizability']), spec, 'affected'), 'other');
    assert.equal(classify(f('Passed', []), spec, 'affected'), 'missed');
    assert.equal(classify(f('Inconclusive', []), spec, 'affected'), 'inconclusive');
    assert.equal(classify(f('Passed', []), spec, 'fixed'), 'passed');
    assert.equal(classify(f('Failed', ['watch:bookmarkable']), spec, 'fixed'), 'violation');
    assert.equal(classify(f('Inconclusive', []), spec, 'fixed'), 'inconclusive');
  });

  test('a release summary, the bar (4 of 5 caught, every fixed run passing) and the table', () => {
    const run = (role: 'affected' | 'fixed', result: SuiteRun['result'], firstViolationMs?: number): SuiteRun => ({
      issue: 15220,
      release: role === 'affected' ? 'v3.5.7' : 'v3.5.8',
      role,
      seed: 1,
      result,
      kinds: result === 'caught' ? ['watch:bookmarkable'] : [],
      ...(firstViolationMs === undefined ? {} : { firstViolationMs }),
    });
    const runs = [run('affected', 'caught', 3000), run('affected', 'caught', 9000), run('affected', 'caught', 5000), run('affected', 'caught', 4000), run('affected', 'missed'), ...Array.from({ length: 5 }, () => run('fixed', 'passed'))];
    const affected = summarizeRelease(15220, 'v3.5.7', 'affected', runs);
    const fixed = summarizeRelease(15220, 'v3.5.8', 'fixed', runs);
    assert.deepEqual(affected, { issue: 15220, release: 'v3.5.7', role: 'affected', runs: 5, good: 4, medianFirstViolationMs: 4500, kinds: ['watch:bookmarkable'] });
    assert.equal(fixed.good, 5);
    assert.equal(meetsBar(affected, fixed), true);
    assert.equal(meetsBar({ ...affected, good: 3 }, fixed), false);
    assert.equal(meetsBar(affected, { ...fixed, good: 4 }), false);
    assert.equal(meetsBar(affected, { ...fixed, buildError: 'no Go' }), false);
    const table = formatTable([{ spec, affected, fixed }]).split('\n');
    assert.equal(table.length, 2);
    assert.match(table[1]!, /^15220\s+v3\.5\.7\s+5\s+4\/5\s+4\.5 s\s+watch:bookmarkable\s+v3\.5\.8\s+5\s+5\/5\s+met$/);
    assert.match(formatTable([{ spec, affected: { ...affected, buildError: 'x' }, fixed }]), /build failed.*NOT met/);
  });
});
