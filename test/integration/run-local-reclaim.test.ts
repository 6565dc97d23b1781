// Nothing left behind by a killed `run --local`: its members' data lives in a scratch folder named after
// it (src/local/scratch.ts); SIGKILL mid-run takes its etcd members with it (parent-death signal), and
// the next run --local removes the folder, says how much it freed, and keeps the killed run's history.
// A run still going meanwhile keeps its folder and finishes undisturbed.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { pidsWithArgument } from '../../src/node/machine.ts';
import { startCli, waitForOutput, type Started } from '../helpers/cli-child.ts';


describe('what killed runs and operators left is reclaimed by the next start', { timeout: 180_000 }, () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'run-local-reclaim-'));
  // The runs' os.tmpdir(): their scratch parent is <tmp>/etcd-robustness-<uid>, this test's alone.
  const tmp = path.join(dir, 'tmp');
  mkdirSync(tmp);
  const env = { ...process.env, TMPDIR: tmp };
  const parent = path.join(tmp, `etcd-robustness-${os.userInfo().uid}`);
  const children: ChildProcess[] = [];
  const stray: number[] = [];

  after(() => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    for (const pid of stray) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Gone already.
      }
    }
    rmSync(dir, { recursive: true, force: true });
  });

  const folderOf = (run: Started): string | undefined => {
    const name = existsSync(parent) ? readdirSync(parent).find((n) => n.startsWith(`cluster-${run.child.pid}-`)) : undefined;
    return name === undefined ? undefined : path.join(parent, name);
  };

  test("the killed run's members die with it, its data folder is reclaimed by the next run, its history is kept; a live run's folder is not touched", async () => {
    const manifest = path.join(dir, 'quiet.yaml');
    // No minimum rate: what is asserted here is reclaiming, and the next run lasts 2 s, most of it
    // start-up: on a loaded machine it fell below the default minimum (target / 2) and exited 2.
    writeFileSync(manifest, ['apiVersion: etcd.robustness.io/v1alpha1', 'kind: RobustnessRun', 'metadata:', '  name: quiet', 'spec:', '  duration: 120s', '  traffic: {qps: {min: 0}}', ''].join('\n'));
    const run = (report: string, extra: string[] = []): Started => {
      const started = startCli(['run', '--local', manifest, '--members', '1', '--report', path.join(dir, report), '--progress-interval', '1s', ...extra], dir, env);
      children.push(started.child);
      return started;
    };
    const progressed = (r: Started) => (): true | undefined => (/ops\/s/.test(r.stderr()) ? true : undefined);

    const live = run('live');
    const killed = run('killed');
    await waitForOutput('the live run to make progress', progressed(live), 60_000, live);
    await waitForOutput('the doomed run to make progress', progressed(killed), 60_000, killed);
    const liveFolder = folderOf(live);
    const killedFolder = folderOf(killed);
    assert.ok(liveFolder && killedFolder, `each run's data folder is named after it under ${parent}: ${existsSync(parent) ? readdirSync(parent).join(', ') : '(none)'}`);
    const members = pidsWithArgument(`${killedFolder}/`);
    assert.ok(members.length > 0, 'the doomed run has an etcd member working in its folder');

    killed.child.kill('SIGKILL');
    await killed.exited;
    // Its members got the parent-death signal: none outlives it (else they are killed here, and the test fails).
    try {
      await waitForOutput('the killed run\'s members to exit', () => (pidsWithArgument(`${killedFolder}/`).length === 0 ? true : undefined), 10_000);
    } catch (error) {
      stray.push(...pidsWithArgument(`${killedFolder}/`));
      throw error;
    }
    assert.ok(existsSync(killedFolder), 'SIGKILL left the data folder behind');
    const history = path.join(dir, 'killed', 'history');
    assert.ok(readdirSync(history).some((f) => statSync(path.join(history, f)).size > 0), 'the killed run recorded some history');

    const next = run('next', ['--duration', '2s']);
    assert.equal(await next.exited, 0, `${next.stdout()}\n${next.stderr()}`);
    const line = new RegExp(`reclaimed ${killedFolder.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: \\d+\\.\\d MiB left by process ${killed.child.pid}, which no longer runs`);
    assert.match(next.stderr(), line);
    assert.equal(existsSync(killedFolder), false, 'the next run removed the killed run\'s data');
    assert.ok(readdirSync(history).length > 0, "the killed run's history stays where it was asked for");

    assert.ok(existsSync(liveFolder), "the live run's folder is untouched");
    assert.equal(live.child.exitCode, null, 'the live run still runs');
    live.child.kill('SIGINT');
    // Stopped early: checked and reported, but not passed (exit 2).
    assert.equal(await live.exited, 2, live.stderr());
    assert.equal(existsSync(liveFolder), false, 'a run that stops cleanly removes its own folder');
    assert.deepEqual(readdirSync(parent), [], 'nothing is left under the scratch parent');
  });

  test("the operator's start reclaims too, and keeps its runs' work folders in a scratch folder of its own", async () => {
    const gone = spawn(process.execPath, ['-e', '']);
    await new Promise((resolve) => gone.once('exit', resolve));
    const left = path.join(parent, `cluster-${gone.pid}-1-abc123`);
    mkdirSync(path.join(left, 'm1.etcd'), { recursive: true });
    // Reclaiming needs no API server: this one answers nothing (the operator keeps retrying until killed).
    const kubeconfig = path.join(dir, 'unreachable.kubeconfig');
    writeFileSync(kubeconfig, ['apiVersion: v1', 'kind: Config', 'clusters:', '- name: c', '  cluster:', '    server: https://127.0.0.1:1', 'users:', '- name: u', '  user:', '    token: t', 'contexts:', '- name: c', '  context:', '    cluster: c', '    user: u', 'current-context: c', ''].join('\n'));
    const operator = startCli(['operator', '--runtime=local', '--kubeconfig', kubeconfig, '--leader-elect=false', '--metrics-port', '0', '--health-port', '0', '--bind-address', '127.0.0.1', '--data-dir', path.join(dir, 'members')], dir, env);
    children.push(operator.child);
    await waitForOutput('the operator to start', () => (/^health: /m.test(operator.stdout()) ? true : undefined), 30_000, operator);
    assert.match(operator.stderr(), new RegExp(`reclaimed ${left.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: [\\d.]+ KiB left by process ${gone.pid}`));
    assert.equal(existsSync(left), false);
    assert.deepEqual(readdirSync(parent).filter((n) => n.startsWith(`runs-${operator.child.pid}-`)).length, 1, readdirSync(parent).join(', '));
    operator.child.kill('SIGKILL');
    await operator.exited;
  });
});
