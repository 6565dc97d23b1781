import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { ManagedProcess } from '../../src/local/index.ts';

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
