import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { holdFile, writeHold } from '../../src/faults/hold.ts';
import { ManagedProcess } from '../../src/local/index.ts';
import { SupervisedProcess } from '../../src/local/process.ts';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'etcd-robustness-unit-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** True while the process exists and is not a zombie (an orphan's zombie may wait long to be reaped). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

async function eventuallyDead(pid: number): Promise<boolean> {
  // SIGKILL is delivered asynchronously; give the kernel a moment, without making speed the assertion.
  for (let i = 0; i < 100 && alive(pid); i++) await new Promise((r) => setTimeout(r, 50));
  return !alive(pid);
}

describe('ManagedProcess', () => {
  test('close() kills the child and reports how it ended', async () => {
    const proc = new ManagedProcess('sleeper', 'sleep', ['300'], { logFile: path.join(tmp, 'a.log') });
    const pid = proc.pid!;
    assert.ok(alive(pid));
    await proc.close();
    assert.equal(proc.running, false);
    assert.equal(proc.exit?.signal, 'SIGKILL');
    assert.ok(await eventuallyDead(pid));
  });

  test('stop() ends a paused child too', async () => {
    const proc = new ManagedProcess('sleeper', 'sleep', ['300'], { logFile: path.join(tmp, 'b.log') });
    proc.signal('SIGSTOP');
    const exit = await proc.stop(5000);
    assert.equal(exit.signal, 'SIGTERM');
  });

  test('a missing binary is reported as an exit with the spawn error', async () => {
    const proc = new ManagedProcess('ghost', path.join(tmp, 'no-such-binary'), [], { logFile: path.join(tmp, 'c.log') });
    const exit = await proc.exited;
    assert.match(String(exit.error?.message), /ENOENT/);
  });

  test('output goes to the log file', async () => {
    const log = path.join(tmp, 'd.log');
    const proc = new ManagedProcess('echo', 'sh', ['-c', 'echo to-stdout; echo to-stderr >&2'], { logFile: log });
    assert.equal((await proc.exited).code, 0);
    assert.match(readFileSync(log, 'utf8'), /to-stdout\nto-stderr/);
  });

  test('children die with the program that started them, even when it crashes', async () => {
    // A child program starts a long sleep and then throws; the sleep must not outlive it.
    const script = `
      import { ManagedProcess } from ${JSON.stringify(new URL('../../src/local/index.ts', import.meta.url).href)};
      const p = new ManagedProcess('sleeper', 'sleep', ['300'], { logFile: ${JSON.stringify(path.join(tmp, 'e.log'))} });
      console.log(p.pid);
      setTimeout(() => { throw new Error('crash on purpose'); }, 50);
    `;
    const result = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script]).catch(
      (error: unknown) => error as { stdout: string; code: number },
    );
    const pid = Number(result.stdout.trim());
    assert.ok(pid > 0, `no pid printed: ${JSON.stringify(result)}`);
    assert.ok(await eventuallyDead(pid), `sleep ${pid} outlived its crashed parent`);
  });
});

describe('SupervisedProcess and a hold file', () => {
  let n = 0;
  /** A supervised `sleep 300` whose restarts a hold file beside a fake data dir may hold back. */
  function supervised(): { proc: SupervisedProcess; hold: string; crash: () => Promise<number> } {
    const name = `held-${++n}`;
    const hold = holdFile(path.join(tmp, `${name}.etcd`));
    const proc = new SupervisedProcess(name, () => new ManagedProcess(name, 'sleep', ['300'], { logFile: path.join(tmp, `${name}.log`) }), { supervise: true, holdFile: hold });
    proc.start();
    proc.markReady();
    /** SIGKILLs the child behind the supervisor's back (as the agent does); resolves with the time it exited. */
    const crash = async (): Promise<number> => {
      const current = proc.current!;
      process.kill(current.pid!, 'SIGKILL');
      await current.exited;
      return Date.now();
    };
    return { proc, hold, crash };
  }

  async function restarted(proc: SupervisedProcess, restarts: number, timeoutMs: number): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (proc.restarts > restarts && proc.running) return Date.now();
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.fail(`not restarted within ${timeoutMs} ms`);
  }

  test('no restart while the hold is in force; restarted as soon as the file is removed', async () => {
    const { proc, hold, crash } = supervised();
    try {
      await writeHold(hold, Date.now() + 30_000);
      await crash();
      // The usual restart comes after 200 ms: well past that, the hold still keeps it down.
      await new Promise((r) => setTimeout(r, 800));
      assert.equal(proc.running, false);
      assert.equal(proc.restarts, 0);
      assert.ok(proc.held !== undefined && proc.held > Date.now(), `held: ${proc.held}`);
      assert.equal(proc.restarting, true, 'still supervised: it will be restarted');
      rmSync(hold);
      const removedAt = Date.now();
      const at = await restarted(proc, 0, 5000);
      assert.ok(at - removedAt < 2000, `restarted ${at - removedAt} ms after the hold file went`);
      assert.equal(proc.held, undefined);
    } finally {
      await proc.kill();
      rmSync(hold, { force: true });
    }
  });

  test('a hold nobody removes ends at its expiry (never held forever)', async () => {
    const { proc, hold, crash } = supervised();
    try {
      const until = Date.now() + 1200;
      await writeHold(hold, until);
      await crash();
      await new Promise((r) => setTimeout(r, 600));
      assert.equal(proc.restarts, 0, 'held until the expiry');
      const at = await restarted(proc, 0, 5000);
      assert.ok(at >= until, `restarted ${until - at} ms before the hold expired`);
    } finally {
      await proc.kill();
      rmSync(hold, { force: true });
    }
  });

  test('an expired or unreadable hold file is ignored: the usual restart', async () => {
    const { proc, hold, crash } = supervised();
    try {
      for (const [i, content] of [String(Date.now() - 1000), 'not a time', ''].entries()) {
        writeFileSync(hold, content);
        const exitedAt = await crash();
        const at = await restarted(proc, i, 5000);
        assert.ok(at - exitedAt < 2500, `restart ${i + 1} took ${at - exitedAt} ms despite a hold file of ${JSON.stringify(content)}`);
        assert.equal(proc.held, undefined);
      }
    } finally {
      await proc.kill();
      rmSync(hold, { force: true });
    }
  });

  test('stop() during a hold cancels the pending restart', async () => {
    const { proc, hold, crash } = supervised();
    try {
      await writeHold(hold, Date.now() + 30_000);
      await crash();
      await new Promise((r) => setTimeout(r, 400));
      await proc.stop();
      rmSync(hold);
      await new Promise((r) => setTimeout(r, 400));
      assert.equal(proc.running, false);
      assert.equal(proc.restarts, 0);
    } finally {
      await proc.kill();
      rmSync(hold, { force: true });
    }
  });
});
