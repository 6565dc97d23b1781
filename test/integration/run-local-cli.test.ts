// `etcd-robustness run --local` end to end, as a user runs it: a real local cluster, /metrics served
// while the run goes, Ctrl-C stopping it cleanly with a report, and the self-test's deliberately stale
// reads caught as a violation (exit 1, the violation in the report).
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { execFileSync } from 'node:child_process';
import { cliPath as cli, startCli, waitForOutput } from '../helpers/cli-child.ts';


describe('etcd-robustness run --local', { timeout: 180_000 }, () => {
  let dir: string;
  const children: ChildProcess[] = [];

  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'run-local-cli-'));
  });

  after(() => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  test('the default run serves /metrics while it runs, stops on SIGINT (exit 2: stopped early, not passed), and leaves a checked report', async () => {
    const report = path.join(dir, 'default-report');
    const run = startCli(['run', '--local', '--duration', '60s', '--report', report, '--progress-interval', '1s'], dir);
    children.push(run.child);
    const url = await waitForOutput('the metrics URL', () => /^metrics: (\S+)$/m.exec(run.stdout())?.[1], 60_000, run);
    await waitForOutput('three progress lines', () => ((run.stderr().match(/ops\/s/g)?.length ?? 0) >= 3 ? true : undefined), 60_000, run);
    const metrics = await (await fetch(url)).text();
    assert.match(metrics, /etcd_robustness_operations_total\{run="local",cluster="local",type="put",outcome="ok"\} [1-9]/);
    assert.match(metrics, /etcd_robustness_verdict\{run="local",cluster="local"\} 1/);
    assert.match(metrics, /etcd_robustness_run_active\{run="local",cluster="local"\} 1/);
    assert.match(metrics, /etcd_robustness_checker_lag_seconds\{run="local",cluster="local",quantile="0.99"\}/);
    run.child.kill('SIGINT');
    const code = await run.exited;
    // A run cut short is no pass, whatever its history says (src/run/outcome.ts): exit 2.
    assert.equal(code, 2, run.stderr());
    assert.match(run.stdout(), /^outcome: Aborted \(Stopped: stopped by the user/m);
    const verdict = JSON.parse(readFileSync(path.join(report, 'verdict.json'), 'utf8')) as { verdict: string; stoppedEarly?: string; operations: { ok: number }; outcome: { phase: string; reason: string } };
    assert.equal(verdict.verdict, 'linearizable');
    assert.deepEqual([verdict.outcome.phase, verdict.outcome.reason], ['Aborted', 'Stopped']);
    assert.equal(verdict.stoppedEarly, 'stopped by the user');
    assert.ok(verdict.operations.ok > 100);
    assert.ok(existsSync(path.join(report, 'report.html')));
    // The recorded history re-checks offline to the same verdict.
    const check = execFileSync(process.execPath, [cli, 'check', path.join(report, 'history')], { encoding: 'utf8' });
    assert.match(check, /\tlinearizable\t/);
  });

  test('a fault aimed at a member the local cluster does not have is refused before any traffic: exit 64, naming the fault and the members', async () => {
    const manifest = path.join(dir, 'no-such-member.yaml');
    writeFileSync(
      manifest,
      ['apiVersion: etcd.robustness.io/v1alpha1', 'kind: RobustnessRun', 'metadata:', '  name: no-such-member', 'spec:', '  duration: 5s', '  faults:', '    choices:', '      - fault: kill', '        target: member', '        member: etcd-99', ''].join('\n'),
    );
    const report = path.join(dir, 'no-such-member-report');
    const run = startCli(['run', '--local', manifest, '--report', report], dir);
    children.push(run.child);
    const code = await run.exited;
    assert.equal(code, 64, `${run.stdout()}\n${run.stderr()}`);
    assert.ok(
      run.stderr().includes(`${manifest}: spec.faults.choices[0].member: kill targets member "etcd-99", which this cluster does not have (its members: m1, m2, m3)`),
      run.stderr(),
    );
    assert.ok(!existsSync(path.join(report, 'history')), 'no traffic was recorded');
  });

  test('the self-test sends reads through a lagging member as serializable while recording them linearizable: exit 1, violation reported', async () => {
    const manifest = path.join(dir, 'self-test.yaml');
    writeFileSync(
      manifest,
      ['apiVersion: etcd.robustness.io/v1alpha1', 'kind: RobustnessRun', 'metadata:', '  name: self-test', 'spec:', '  duration: 6s', '  selfTest:', '    staleReads: {}', ''].join('\n'),
    );
    const report = path.join(dir, 'self-test-report');
    const run = startCli(['run', '--local', manifest, '--report', report], dir);
    children.push(run.child);
    const code = await run.exited;
    assert.equal(code, 1, `${run.stdout()}\n${run.stderr()}`);
    assert.match(run.stdout(), /^verdict: violation \(operation \d+ \(range\) cannot be linearized/m);
    const verdict = JSON.parse(readFileSync(path.join(report, 'verdict.json'), 'utf8')) as { verdict: string; selfTest?: string; linearizability?: { verdict: string } };
    assert.equal(verdict.verdict, 'violation');
    assert.match(verdict.selfTest ?? '', /^staleReads via m\d$/);
    assert.equal(verdict.linearizability?.verdict, 'violation');
    assert.match(readFileSync(path.join(report, 'report.html'), 'utf8'), /violation/);
  });
});
