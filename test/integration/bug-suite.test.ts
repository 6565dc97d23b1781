// The CI subset of the historical bug suite (npm run bugs runs all of it): the fastest bugs, each on the
// release that has it (the run must catch it, with a violation of the kind its bug.json expects) and on
// the release that fixed it (the run must pass). Real etcd releases, built here with gofail by
// test/bin/build-release.sh, run by `etcd-robustness run --local` exactly as `npm run bugs` runs them, so a
// change to the probes, the faults or the checks that loses a bug fails CI. The scenarios stop at their
// first violation (abortOnViolation), so a run on the affected release lasts about as long as catching takes.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { buildRelease, runScenario } from '../../bench/bug-runner.ts';
import { loadBugSuite } from '../../bench/bug-suite.ts';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const dir = mkdtempSync(path.join(os.tmpdir(), 'etcd-robustness-bugs-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** The CI subset: one-member scenarios that catch their bug within seconds (docs/bugs.md has the rates). */
const ciBugs = [14370, 15220];
/** Runs on the affected release until one catches the bug: a run may draw a fault plan that misses it. */
const attempts = 3;
/** The fixed release's run in CI. */
const fixedDuration = '20s';

describe('historical etcd bugs: caught on the affected release, passing on the fixed one', () => {
  for (const spec of loadBugSuite(path.join(root, 'examples', 'bugs'), ciBugs)) {
    test(`etcd issue ${spec.issue} (${spec.title}): ${spec.affected} caught, ${spec.fixed} passes`, { timeout: 20 * 60_000 }, async () => {
      for (const release of [spec.affected, spec.fixed]) {
        const error = await buildRelease(release, path.join(dir, `build-${release}.log`));
        assert.equal(error, undefined, `building etcd ${release}: ${error}`);
      }
      const tries = [];
      for (let i = 0; i < attempts; i++) {
        const run = await runScenario(spec, spec.affected, 'affected', spec.issue * 100 + i, path.join(dir, `${spec.issue}-${spec.affected}-${i}`));
        tries.push(run);
        if (run.result === 'caught') break;
      }
      const caught = tries.find((run) => run.result === 'caught');
      assert.ok(caught, `${spec.affected} did not show ${spec.expect.join(' or ')} in ${attempts} runs: ${JSON.stringify(tries.map((r) => ({ result: r.result, kinds: r.kinds, reason: r.reason })))}`);
      assert.ok(caught.kinds.some((kind) => spec.expect.includes(kind)), `kinds found: ${caught.kinds.join(', ')}`);
      // Shorter than the manifest's (npm run bugs runs it whole): enough faults to show a false alarm.
      const fixed = await runScenario(spec, spec.fixed, 'fixed', spec.issue * 100, path.join(dir, `${spec.issue}-${spec.fixed}`), fixedDuration);
      assert.equal(fixed.result, 'passed', `${spec.fixed} must pass: ${JSON.stringify({ result: fixed.result, kinds: fixed.kinds, reason: fixed.reason })}`);
    });
  }
});
