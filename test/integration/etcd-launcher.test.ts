// tools/etcd-launcher, the member Pods' etcd entrypoint, as the real binary test/bin/build.sh builds:
// it runs its command as a child, starts it again in place after a SIGKILL (the agent's kill and crash
// faults) once the crash fault's hold file (read exactly as src/faults/hold.ts reads it) is over, ends
// with the command's own exit code otherwise, and `install` copies it where an init container puts it.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { holdUntil, maxHoldAheadMs } from '../../src/faults/hold.ts';
import { launcherBinary } from '../../src/local/index.ts';
import { eventually } from '../helpers/operator.ts';

/** Polls a synchronous check (every 20 ms, for up to 30 s). */
function soon<T>(what: string, check: () => T | undefined, describe: () => string): Promise<T> {
  return eventually(what, 30_000, () => Promise.resolve(check()), () => Promise.resolve(describe()), 20);
}

/** One start of the command, as it printed it. */
interface Start {
  pid: number;
  at: number;
  /** The arguments the launcher gave it (after the command's own). */
  args: string[];
}

/** A running launcher: the starts of its command so far, and its end. */
class Launcher {
  readonly child: ChildProcess;
  readonly starts: Start[] = [];
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  constructor(binary: string, args: readonly string[]) {
    this.child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let buffered = '';
    this.child.stdout!.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      for (const line of lines) if (line.trim() !== '') this.starts.push(JSON.parse(line) as Start);
    });
    this.child.stderr!.on('data', (chunk: Buffer) => (this.stderr += chunk.toString()));
    this.exited = new Promise((resolve) => this.child.on('close', (code, signal) => resolve({ code, signal })));
  }
  /** Waits for the n-th start (1-based). */
  started(n: number): Promise<Start> {
    return soon(`start ${n} of the command`, () => this.starts[n - 1], () => this.stderr);
  }
}

/** The supervised "etcd": prints its pid and the time it started, then runs until signalled, or exits with EXIT_CODE. */
const command = [
  process.execPath,
  '-e',
  'console.log(JSON.stringify({ pid: process.pid, at: Date.now(), args: process.argv.slice(1) })); const code = process.env.EXIT_CODE; if (code) process.exit(Number(code)); setInterval(() => {}, 1000);',
  '--', // what the launcher appends (--force-new-cluster) reaches the script's argv, not node's options
];

describe('etcd-launcher (tools/etcd-launcher)', () => {
  let binary: string;
  let dir: string;
  let hold: string;
  const launch = (): Launcher => new Launcher(binary, [`--hold-file=${hold}`, '--', ...command]);

  before(() => {
    binary = launcherBinary();
    dir = mkdtempSync(path.join(os.tmpdir(), 'etcd-launcher-'));
    hold = path.join(dir, 'data.hold');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('it runs the command as its child, starts it again at once after a SIGKILL, and stops with it on SIGTERM', async () => {
    rmSync(hold, { force: true });
    const launcher = launch();
    const first = await launcher.started(1);
    assert.notEqual(first.pid, launcher.child.pid, 'a child, which the launcher outlives');
    process.kill(first.pid, 'SIGKILL');
    const second = await launcher.started(2);
    assert.notEqual(second.pid, first.pid);
    assert.match(launcher.stderr, /killed \(SIGKILL\): starting it again/);
    launcher.child.kill('SIGTERM');
    const end = await launcher.exited;
    assert.equal(end.code, 128 + os.constants.signals.SIGTERM, launcher.stderr);
    assert.equal(launcher.starts.length, 2, 'not started again after a stop');
  });

  test('after a SIGKILL with a hold in place, the command starts again only when the hold expires', async () => {
    rmSync(hold, { force: true });
    const launcher = launch();
    const first = await launcher.started(1);
    const until = Date.now() + 1500;
    writeFileSync(hold, `${until}\n`);
    process.kill(first.pid, 'SIGKILL');
    const second = await launcher.started(2);
    assert.ok(second.at >= until, `started again at ${second.at}, held until ${until}`);
    assert.match(launcher.stderr, /held down by .*data\.hold until/);
    launcher.child.kill('SIGTERM');
    await launcher.exited;
  });

  test('a hold removed before it expires (the fault healed) lets the command start then', async () => {
    const until = Date.now() + 10 * 60_000;
    writeFileSync(hold, `${until}\n`);
    const launcher = launch();
    await soon('the launcher to announce the hold', () => (launcher.stderr.includes('held down by') ? true : undefined), () => launcher.stderr);
    assert.equal(launcher.starts.length, 0, 'nothing started while held');
    const removed = Date.now();
    unlinkSync(hold);
    const first = await launcher.started(1);
    assert.ok(first.at >= removed && first.at < until, JSON.stringify({ removed, first }));
    launcher.child.kill('SIGTERM');
    await launcher.exited;
  });

  test('a stop signal while held ends the launcher without starting the command', async () => {
    writeFileSync(hold, `${Date.now() + 10 * 60_000}\n`);
    const launcher = launch();
    await soon('the launcher to announce the hold', () => (launcher.stderr.includes('held down by') ? true : undefined), () => launcher.stderr);
    launcher.child.kill('SIGTERM');
    assert.equal((await launcher.exited).code, 0);
    assert.equal(launcher.starts.length, 0);
    rmSync(hold, { force: true });
  });

  test('a command that exits by itself ends the launcher with its code (the kubelet sees the crash)', async () => {
    rmSync(hold, { force: true });
    const launcher = new Launcher(binary, [`--hold-file=${hold}`, '--', 'env', 'EXIT_CODE=3', ...command]);
    assert.equal((await launcher.exited).code, 3, launcher.stderr);
    assert.equal(launcher.starts.length, 1, 'not started again');
  });

  test('it reads a hold file as src/faults/hold.ts does: expired, garbage and implausible holds are ignored', async () => {
    const now = Date.now();
    const texts = ['', 'soon', ' 12 ', '1e3', `${now - 1}`, `${now + maxHoldAheadMs + 60_000}`, `${now + 60_000}x`, `  ${now + 60_000}  \n`, `${now + 60_000}`, `00${now + 60_000}`];
    for (const text of texts) {
      writeFileSync(hold, text);
      const held = holdUntil(hold) !== undefined;
      const launcher = launch();
      const outcome = await soon(
        `${JSON.stringify(text)}: held or started`,
        () => (launcher.stderr.includes('held down by') ? 'held' : launcher.starts.length > 0 ? 'started' : undefined),
        () => launcher.stderr,
      );
      launcher.child.kill('SIGTERM');
      await launcher.exited;
      assert.equal(outcome, held ? 'held' : 'started', `${JSON.stringify(text)}: hold.ts says ${held ? 'held' : 'not held'}`);
    }
    rmSync(hold, { force: true });
  });

  test('several hold files: the command starts only when none holds (the crash fault and the survivor recovery each keep their own)', async () => {
    const recoveryHold = path.join(dir, 'data.recovery-hold');
    rmSync(hold, { force: true });
    const launcher = new Launcher(binary, [`--hold-file=${hold}`, `--hold-file=${recoveryHold}`, '--', ...command]);
    const first = await launcher.started(1);
    writeFileSync(recoveryHold, `${Date.now() + 10 * 60_000}\n`);
    const crashUntil = Date.now() + 800;
    writeFileSync(hold, `${crashUntil}\n`);
    process.kill(first.pid, 'SIGKILL');
    await soon('the launcher to announce the hold', () => (launcher.stderr.includes('held down by') ? true : undefined), () => launcher.stderr);
    // The crash's hold expires; the recovery's still holds.
    await new Promise((resolve) => setTimeout(resolve, crashUntil - Date.now() + 500));
    assert.equal(launcher.starts.length, 1, 'not started while the second hold holds');
    const released = Date.now();
    unlinkSync(recoveryHold);
    const second = await launcher.started(2);
    assert.ok(second.at >= released, JSON.stringify({ released, second }));
    launcher.child.kill('SIGTERM');
    await launcher.exited;
  });

  test('while the force file exists each start adds --force-new-cluster; once it is removed, starts are plain', async () => {
    const force = path.join(dir, 'data.force-new-cluster');
    rmSync(hold, { force: true });
    writeFileSync(force, '3\n');
    const launcher = new Launcher(binary, [`--hold-file=${hold}`, `--force-file=${force}`, '--', ...command]);
    const first = await launcher.started(1);
    assert.deepEqual(first.args, ['--force-new-cluster']);
    process.kill(first.pid, 'SIGKILL');
    const second = await launcher.started(2);
    assert.deepEqual(second.args, ['--force-new-cluster'], 'still forced: the failover is not over');
    unlinkSync(force);
    process.kill(second.pid, 'SIGKILL');
    const third = await launcher.started(3);
    assert.deepEqual(third.args, [], 'plain once the force file is gone');
    assert.match(launcher.stderr, /data\.force-new-cluster exists: starting etcd with --force-new-cluster/);
    launcher.child.kill('SIGTERM');
    await launcher.exited;
  });

  test('install copies the launcher where an init container puts it, executable', async () => {
    const dest = path.join(dir, 'bin-etcd-launcher');
    const installed = new Launcher(binary, ['install', dest]);
    assert.equal((await installed.exited).code, 0, installed.stderr);
    assert.equal(statSync(dest).mode & 0o111, 0o111, 'executable by all');
    const copy = new Launcher(dest, ['--hold-file=', '--']);
    assert.equal((await copy.exited).code, 2, 'the copy runs (a usage error)');
    assert.match(copy.stderr, /usage: etcd-launcher/);
  });

  test('a command that does not exist is a clear error, not a silent exit', async () => {
    rmSync(hold, { force: true });
    const launcher = new Launcher(binary, [`--hold-file=${hold}`, '--', 'no-such-etcd-binary']);
    assert.equal((await launcher.exited).code, 127);
    assert.match(launcher.stderr, /no-such-etcd-binary/);
  });
});
