// Transient folders' ownership (src/processes.ts, src/local/scratch.ts): who owns a folder (pid and
// start time, so that a recycled pid is not the owner), and the reclaim of what dead owners left, with
// real processes as owners and real folders.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { claimFolder, createScratch, FolderBusyError, parseScratchName, reclaimScratch, removeScratch, ScratchKindError } from '../../src/local/scratch.ts';
import { currentProcess, ownerAlive, processStartTime, statFields, type ProcessIdentity } from '../../src/processes.ts';

/** The pid of a process that has exited (and whose pid no process holds now). */
function deadPid(): number {
  for (;;) {
    const { pid } = spawnSync(process.execPath, ['-e', '']);
    if (pid !== undefined && statFields(pid) === undefined) return pid;
  }
}

function me(): ProcessIdentity {
  const identity = currentProcess();
  assert.ok(identity, 'this test needs /proc');
  return identity;
}

/** A child process that stays until killed, with `args` on its command line; resolves once it runs. */
async function sleeper(args: string[] = []): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['-e', 'process.stdout.write("up"); setInterval(() => {}, 1000)', '--', ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout.once('data', () => resolve());
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`the sleeper exited (${code})`)));
  });
  return child;
}

async function killAndWait(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
}

describe('owner liveness (pid and start time)', () => {
  test('this process is alive as itself', () => {
    assert.equal(ownerAlive(me()), true);
  });

  test('a pid with another start time is a recycled pid: not the owner', () => {
    const { pid, pidStart } = me();
    assert.equal(ownerAlive({ pid, pidStart: String(Number(pidStart) + 1) }), false);
    assert.equal(ownerAlive({ pid, pidStart: '0' }), false);
  });

  test('an exited process is dead', () => {
    const pid = deadPid();
    assert.equal(processStartTime(pid), undefined);
    assert.equal(ownerAlive({ pid, pidStart: '1' }), false);
  });

  test('a zombie (exited, its status not yet collected by its parent) is dead', async () => {
    // `sleep 30` replaces the shell and never reaps the shell's background child.
    const parent = spawn('sh', ['-c', 'sleep 0 & echo $!; exec sleep 30'], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const pid = Number(await new Promise<string>((resolve) => parent.stdout.once('data', (chunk: Buffer) => resolve(chunk.toString()))));
      const deadline = Date.now() + 10_000;
      while (statFields(pid)?.[0] !== 'Z' && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
      assert.equal(statFields(pid)?.[0], 'Z');
      assert.equal(ownerAlive({ pid, pidStart: processStartTime(pid)! }), false);
    } finally {
      await killAndWait(parent);
    }
  });

  test('a live child is alive until it is killed', async () => {
    const child = await sleeper();
    const owner = { pid: child.pid!, pidStart: processStartTime(child.pid!)! };
    assert.equal(ownerAlive(owner), true);
    await killAndWait(child);
    assert.equal(ownerAlive(owner), false);
  });
});

describe('scratch folder names', () => {
  let parent: string;
  before(() => (parent = mkdtempSync(path.join(os.tmpdir(), 'scratch-names-'))));
  after(() => rmSync(parent, { recursive: true, force: true }));

  test('a created folder names its owner: this process, with its start time', () => {
    const folder = createScratch('cluster', parent);
    assert.deepEqual(parseScratchName(path.basename(folder)), { kind: 'cluster', ...me() });
  });

  test('any kind, pid and start time read back from the name', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[a-z][a-z0-9]{0,10}$/), fc.integer({ min: 1, max: 2 ** 31 - 1 }), fc.bigInt({ min: 0n, max: 2n ** 63n }), fc.stringMatching(/^[A-Za-z0-9]{6}$/), (kind, pid, start, random) => {
        assert.deepEqual(parseScratchName(`${kind}-${pid}-${start}-${random}`), { kind, pid, pidStart: String(start) });
      }),
    );
  });

  test('names that are not scratch folders are not read as owners', () => {
    for (const name of ['kept', 'etcd-robustness-abc123', 'robustnessrun-demo-abc123', 'cluster-0-1-abc123', 'Cluster-1-2-abc123', 'cluster-1-2-', 'cluster-1-x-abc123', 'cluster-1-2-ab_c']) {
      assert.equal(parseScratchName(name), undefined, name);
    }
  });

  test('a kind that would make an ambiguous name is refused with a typed error', () => {
    assert.throws(() => createScratch('my-kind', parent), ScratchKindError);
    assert.throws(() => createScratch('', parent), ScratchKindError);
  });
});

describe('reclaiming what dead owners left', () => {
  let parent: string;
  const children: ChildProcess[] = [];
  before(() => (parent = mkdtempSync(path.join(os.tmpdir(), 'scratch-reclaim-'))));
  after(async () => {
    for (const child of children) await killAndWait(child);
    rmSync(parent, { recursive: true, force: true });
  });

  function deadFolder(kind: string, owner: ProcessIdentity = { pid: deadPid(), pidStart: '1' }): string {
    const folder = path.join(parent, `${kind}-${owner.pid}-${owner.pidStart}-abc123`);
    mkdirSync(path.join(folder, 'm1.etcd', 'member'), { recursive: true });
    writeFileSync(path.join(folder, 'm1.etcd', 'member', 'wal'), Buffer.alloc(1 << 20, 1));
    return folder;
  }

  test("a dead owner's folder is removed and reported with its size; a recycled pid's too", () => {
    const dead = deadFolder('cluster');
    const recycled = deadFolder('apiserver', { pid: process.pid, pidStart: String(Number(me().pidStart) + 7) });
    const lines: string[] = [];
    const result = reclaimScratch({ parent, log: (line) => lines.push(line) });
    assert.equal(existsSync(dead), false);
    assert.equal(existsSync(recycled), false);
    assert.deepEqual(result.reclaimed.map((r) => r.folder).sort(), [dead, recycled].sort());
    for (const r of result.reclaimed) assert.ok(r.bytes >= 1 << 20, `${r.folder}: ${r.bytes} bytes`);
    assert.equal(lines.length, 2);
    assert.ok(lines.some((l) => l.includes(dead) && /\d\.\d MiB/.test(l)), lines.join('\n'));
    assert.deepEqual(readdirSync(parent).filter((n) => n.startsWith('reclaim-')), [], 'nothing half-removed stays');
  });

  test("a live owner's folder is never touched: this process's, and another process's until it is killed", async () => {
    const mine = createScratch('run', parent);
    writeFileSync(path.join(mine, 'data'), 'x');
    const script = `const { createScratch } = await import(${JSON.stringify(new URL('../../src/local/scratch.ts', import.meta.url).href)}); process.stdout.write(createScratch('dev', ${JSON.stringify(parent)})); setInterval(() => {}, 1000);`;
    const other = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(other);
    const theirs = await new Promise<string>((resolve) => other.stdout.once('data', (chunk: Buffer) => resolve(chunk.toString())));
    assert.equal(parseScratchName(path.basename(theirs))?.pid, other.pid);

    assert.deepEqual(reclaimScratch({ parent, log: () => undefined }).reclaimed, []);
    assert.equal(readFileSync(path.join(mine, 'data'), 'utf8'), 'x');
    assert.equal(existsSync(theirs), true);

    await killAndWait(other);
    const result = reclaimScratch({ parent, log: () => undefined });
    assert.deepEqual(result.reclaimed.map((r) => r.folder), [theirs]);
    assert.equal(existsSync(mine), true);
    removeScratch(mine);
    assert.equal(existsSync(mine), false);
  });

  test('a dead owner\'s folder that a live process still works in (an etcd that outlived its parent) is kept until it stops', async () => {
    const folder = deadFolder('cluster');
    const etcd = await sleeper([`--data-dir=${folder}/m1.etcd`]);
    children.push(etcd);
    const first = reclaimScratch({ parent, log: () => undefined });
    assert.deepEqual(first.reclaimed, []);
    assert.deepEqual(first.inUse, [{ folder, pids: [etcd.pid] }]);
    assert.equal(existsSync(folder), true);
    await killAndWait(etcd);
    assert.deepEqual(reclaimScratch({ parent, log: () => undefined }).reclaimed.map((r) => r.folder), [folder]);
  });

  test('histories in a dead owner\'s folder are results: moved to kept/, the rest removed', () => {
    const folder = deadFolder('runs');
    const history = path.join(folder, 'robustnessrun-demo-x1y2z3', 'history');
    mkdirSync(history, { recursive: true });
    writeFileSync(path.join(history, 'segment-000001.jsonl'), '{"op":1}\n');
    const [reclaimed] = reclaimScratch({ parent, log: () => undefined }).reclaimed;
    const kept = path.join(parent, 'kept', path.basename(folder), 'robustnessrun-demo-x1y2z3', 'history');
    assert.deepEqual(reclaimed?.keptHistories, [kept]);
    assert.equal(readFileSync(path.join(kept, 'segment-000001.jsonl'), 'utf8'), '{"op":1}\n');
    assert.equal(existsSync(folder), false);
    // kept/ is not a scratch folder: the next reclaim leaves it.
    reclaimScratch({ parent, log: () => undefined });
    assert.equal(existsSync(kept), true);
  });

  test('folders whose names are not scratch folders\' are left alone', () => {
    for (const name of ['etcd-robustness-abc123', 'notes']) mkdirSync(path.join(parent, name), { recursive: true });
    reclaimScratch({ parent, log: () => undefined });
    assert.equal(existsSync(path.join(parent, 'etcd-robustness-abc123')), true);
    assert.equal(existsSync(path.join(parent, 'notes')), true);
  });

  test('a folder that cannot be removed is reported and does not stop the others', () => {
    const stuck = deadFolder('cluster');
    // The name reclaim would move it to is taken by a non-empty folder: the rename fails (ENOTEMPTY).
    const blocker = path.join(parent, `reclaim-${me().pid}-${me().pidStart}-${path.basename(stuck).replace(/[^A-Za-z0-9]/g, '')}`);
    mkdirSync(blocker);
    writeFileSync(path.join(blocker, 'x'), 'x');
    const other = deadFolder('apiserver');
    const lines: string[] = [];
    const result = reclaimScratch({ parent, log: (line) => lines.push(line) });
    assert.deepEqual(result.failed.map((f) => f.folder), [stuck]);
    assert.deepEqual(result.reclaimed.map((r) => r.folder), [other]);
    assert.ok(lines.some((l) => l.startsWith(`could not reclaim ${stuck}: `)), lines.join('\n'));
    rmSync(blocker, { recursive: true });
    assert.deepEqual(reclaimScratch({ parent, log: () => undefined }).reclaimed.map((r) => r.folder), [stuck]);
  });

  test('no parent yet: nothing to reclaim', () => {
    assert.deepEqual(reclaimScratch({ parent: path.join(parent, 'absent'), log: () => undefined }), { reclaimed: [], inUse: [], failed: [] });
  });
});

describe('a kept folder (dev --data-dir) has one live owner at a time', () => {
  let dir: string;
  before(() => (dir = mkdtempSync(path.join(os.tmpdir(), 'scratch-claim-'))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test("a live owner's folder is refused; the release frees it", () => {
    const release = claimFolder(dir, 'dev', () => undefined);
    assert.throws(() => claimFolder(dir, 'dev', () => undefined), (error: unknown) => error instanceof FolderBusyError && error.owner.pid === process.pid && error.message.includes(dir));
    release();
    assert.equal(existsSync(path.join(dir, 'owner.json')), false);
    claimFolder(dir, 'dev', () => undefined)();
  });

  test("a dead owner's (or a recycled pid's) folder is taken over, and said so", () => {
    for (const owner of [{ pid: deadPid(), pidStart: '1' }, { pid: process.pid, pidStart: '0' }]) {
      writeFileSync(path.join(dir, 'owner.json'), JSON.stringify({ ...owner, command: 'dev', startedAt: '' }));
      const lines: string[] = [];
      const release = claimFolder(dir, 'dev', (line) => lines.push(line));
      assert.match(lines.join('\n'), new RegExp(`taking it over from dev process ${owner.pid}, which no longer runs`));
      assert.equal((JSON.parse(readFileSync(path.join(dir, 'owner.json'), 'utf8')) as ProcessIdentity).pid, process.pid);
      release();
    }
  });

  test("the release leaves another owner's record alone", () => {
    const release = claimFolder(dir, 'dev', () => undefined);
    const other = { pid: deadPid(), pidStart: '1', command: 'dev', startedAt: '' };
    writeFileSync(path.join(dir, 'owner.json'), JSON.stringify(other));
    release();
    assert.equal(existsSync(path.join(dir, 'owner.json')), true);
    rmSync(path.join(dir, 'owner.json'));
  });
});
