// The fault agent against a real 3-member cluster whose members each have an agent (child processes
// of this test, with peer proxies and supervised restarts): the API's errors, every fault type, TTL
// leases healing by themselves, an agent restart healing what its predecessor left, and a runner
// SIGKILLed mid-fault leaving nothing behind.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Etcd3 } from 'etcd3';
import type { AgentFault } from '../../src/domain/index.ts';
import { AgentInsecureListenError, FaultAgent } from '../../src/faults/agent.ts';
import { certificateAuthorityBundle } from '../../src/controller/kit/certificates.ts';
import { AgentClient, AgentRequestError } from '../../src/faults/agent-client.ts';
import { holdFile } from '../../src/faults/hold.ts';
import { cliEntryPoint, LocalEtcdCluster, type LocalEtcdMember } from '../../src/local/etcd-cluster.ts';
import { freeLoopbackPorts } from '../../src/local/ports.ts';
import { ManagedProcess } from '../../src/local/process.ts';
import { LocalMemberRuntime } from '../../src/local/runtime.ts';
import { isHealthy } from '../../src/probes/health.ts';

const token = 'test-token-0123456789';


async function eventually(what: string, probe: () => Promise<boolean> | boolean, timeoutMs: number): Promise<number> {
  const start = Date.now();
  while (Date.now() - start < timeoutMs) {
    if (await probe()) return Date.now() - start;
    await sleep(50);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

async function requestError(promise: Promise<unknown>): Promise<AgentRequestError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof AgentRequestError) return error;
    throw error;
  }
  assert.fail('expected the agent to refuse the request');
}

/** Every pid whose command line mentions `text` (by scanning /proc). */
function pidsMentioning(text: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'latin1').includes(text)) pids.push(Number(entry));
    } catch {
      // Gone.
    }
  }
  return pids;
}

describe('fault agent on a real 3-member cluster', { timeout: 240_000 }, () => {
  let cluster: LocalEtcdCluster;
  let client: Etcd3;
  const agentOf = (m: LocalEtcdMember): AgentClient => new AgentClient(m.agentUrl!, token);

  before(async () => {
    cluster = await LocalEtcdCluster.start({ size: 3, failpoints: true, agents: { token } });
    client = new Etcd3({ hosts: cluster.endpoints });
  });

  after(async () => {
    client?.close();
    await cluster?.close();
  });

  /** After each fault: the whole cluster serves and every agent holds nothing. */
  async function assertClusterHealthy(): Promise<void> {
    for (const m of cluster.members) await m.waitHealthy(20_000);
    await client.put('/agent/health-check').value(String(Date.now()));
  }

  test('status names the member and its etcd process; the token is in a 0600 file', async () => {
    assert.equal(cluster.agentToken, token);
    for (const m of cluster.members) {
      assert.match(m.agentUrl ?? '', /^http:\/\/127\.0\.0\.1:\d+$/);
      const status = await agentOf(m).status();
      assert.deepEqual(status, { member: m.name, pid: m.pid, faults: [] });
    }
    assert.equal(statSync(path.join(cluster.dataRoot, 'agent-token')).mode & 0o777, 0o600);
  });

  test('a missing or wrong token is 401', async () => {
    const m = cluster.members[0]!;
    const error = await requestError(new AgentClient(m.agentUrl!, 'wrong').status());
    assert.equal(error.status, 401);
    assert.match(error.agentMessage, /bearer token/);
    const bare = await fetch(`${m.agentUrl!}/v1/faults`, { method: 'POST', body: '{"type":"kill"}' });
    assert.equal(bare.status, 401);
    assert.equal(bare.headers.get('www-authenticate'), 'Bearer');
    assert.equal(m.running, true, 'an unauthenticated kill must not kill');
  });

  test('bad requests: unknown type 400 listing the types, bad parameters 400 naming the field, 404, 405, bad JSON, too large', async () => {
    const m = cluster.members[0]!;
    const agent = agentOf(m);
    const unknown = await requestError(agent.inject({ type: 'reboot' } as unknown as { type: 'kill' }));
    assert.equal(unknown.status, 400);
    assert.match(unknown.agentMessage, /unknown fault type "reboot" \(types: kill, crash, pause, failpoint, network, diskPressure\)/);

    const missing = await requestError(agent.inject({ type: 'pause' } as unknown as { type: 'pause'; ttlMs: number }));
    assert.equal(missing.status, 400);
    assert.match(missing.agentMessage, /^ttlMs: required/);
    const negative = await requestError(agent.inject({ type: 'pause', ttlMs: -1 }));
    assert.equal(negative.status, 400);
    assert.match(negative.agentMessage, /^ttlMs: must be greater than 0/);
    const tooLong = await requestError(agent.inject({ type: 'diskPressure', bytes: 1024, ttlMs: 10 * 60_000 + 1 }));
    assert.equal(tooLong.status, 400);
    assert.match(tooLong.agentMessage, /^ttlMs: 600001 is above this agent's maximum of 600000 ms/);
    const badRule = await requestError(agent.inject({ type: 'network', ttlMs: 1000, rules: [{ from: 'm1', to: 'm2', action: 'drop' }] }));
    assert.match(badRule.agentMessage, /^rules\[0\]\.dropPercent: required/);

    const unknownId = await requestError(agent.heal('no-such-fault'));
    assert.equal(unknownId.status, 404);
    assert.match(unknownId.agentMessage, /no fault with id no-such-fault/);

    const headers = { Authorization: `Bearer ${token}` };
    const raw = async (route: string, init: RequestInit = {}): Promise<{ status: number; body: { error?: string }; allow: string | null }> => {
      const response = await fetch(`${m.agentUrl!}${route}`, { ...init, headers: { ...headers, ...(init.headers as Record<string, string> | undefined) } });
      return { status: response.status, body: (await response.json()) as { error?: string }, allow: response.headers.get('allow') };
    };
    const notFound = await raw('/v1/nothing');
    assert.equal(notFound.status, 404);
    assert.match(notFound.body.error ?? '', /no such path/);
    const wrongMethod = await raw('/v1/status', { method: 'POST', body: '{}' });
    assert.equal(wrongMethod.status, 405);
    assert.equal(wrongMethod.allow, 'GET');
    const notJson = await raw('/v1/faults', { method: 'POST', body: '{"type":' });
    assert.equal(notJson.status, 400);
    assert.match(notJson.body.error ?? '', /not valid JSON/);
    const large = await raw('/v1/faults', { method: 'POST', body: JSON.stringify({ type: 'pause', ttlMs: 1, pad: 'x'.repeat(100_000) }) });
    assert.equal(large.status, 413);
    assert.deepEqual((await agent.status()).faults, []);
  });

  test('kill: the etcd process exits, the supervisor restarts it, the cluster is healthy', async () => {
    const m = cluster.members[1]!;
    const before = m.pid;
    const restarts = m.restarts;
    const fault = await agentOf(m).inject({ type: 'kill' });
    assert.equal(fault.type, 'kill');
    assert.ok(fault.healedAt, 'a kill is done at once');
    await eventually('a new etcd process', () => m.restarts === restarts + 1 && m.running && m.pid !== before, 10_000);
    await assertClusterHealthy();
    assert.equal((await agentOf(m).status()).pid, m.pid);
  });

  /** A serializable read through one member only (its own data, no quorum needed). */
  async function readOn(m: LocalEtcdMember, key: string): Promise<string | null> {
    const pinned = new Etcd3({ hosts: m.endpoint });
    try {
      return await pinned.get(key).serializable(true).options({ deadline: Date.now() + 2000 }).string();
    } finally {
      pinned.close();
    }
  }

  test('crash: etcd is killed and held down for the TTL (hold file), then restarted on its data', async () => {
    const m = cluster.members[0]!;
    await client.put('/agent/before-crash').value('b');
    await eventually('m1 to have the write', async () => (await readOn(m, '/agent/before-crash').catch(() => null)) === 'b', 5000);
    const restarts = m.restarts;
    const injectedAt = Date.now();
    // A TTL well beyond the checks below: on a loaded machine the writes in between take seconds.
    const ttlMs = 10_000;
    const fault = await agentOf(m).inject({ type: 'crash', ttlMs });
    assert.equal(fault.type, 'crash');
    assert.equal(fault.healedAt, undefined, 'a crash lasts until its TTL');
    const hold = holdFile(m.dataDir);
    assert.equal(readFileSync(hold, 'utf8').trim(), String(Date.parse(fault.expiresAt)), 'the hold file holds the fault\'s expiry');
    await eventually('the crashed etcd to exit', () => !m.running, 5000);
    // The others keep a quorum and take writes meanwhile.
    const others = new Etcd3({ hosts: cluster.members.slice(1).map((x) => x.endpoint) });
    try {
      await others.put('/agent/during-crash').value('c');
    } finally {
      others.close();
    }
    await sleep(Math.max(0, injectedAt + 1500 - Date.now()));
    assert.equal(m.running, false, 'still down well past the usual 200 ms restart');
    assert.equal(m.restarts, restarts);
    assert.ok(m.held !== undefined, 'the supervisor says it is held');
    const status = await agentOf(m).status();
    assert.equal(status.pid, undefined);
    assert.deepEqual(status.faults.map((f) => f.type), ['crash']);
    await eventually('the member to serve again', () => isHealthy(m.endpoint, 500), ttlMs + 15_000);
    const downFor = Date.now() - injectedAt;
    assert.ok(downFor >= ttlMs - 100, `back after ${downFor} ms, before the TTL`);
    assert.equal(m.restarts, restarts + 1, 'restarted once, on its data');
    // The supervisor restarts at the hold's expiry; the agent's TTL timer removes the file and the fault
    // around the same moment, not necessarily first.
    await eventually('the agent to remove the hold at the TTL', () => !existsSync(hold), 5000);
    await eventually('the agent to drop the healed fault', async () => (await agentOf(m).status()).faults.length === 0, 5000);
    assert.equal(await readOn(m, '/agent/before-crash'), 'b', 'its data survived');
    await eventually('the restarted member to catch up', async () => (await readOn(m, '/agent/during-crash').catch(() => null)) === 'c', 10_000);
    await assertClusterHealthy();
  });

  test('crash healed by DELETE: etcd is restarted at once; a second crash while one is active is 409', async () => {
    const m = cluster.members[1]!;
    const agent = agentOf(m);
    const fault = await agent.inject({ type: 'crash', ttlMs: 60_000 });
    await eventually('the crashed etcd to exit', () => !m.running, 5000);
    const again = await requestError(agent.inject({ type: 'crash', ttlMs: 60_000 }));
    assert.equal(again.status, 409);
    assert.match(again.agentMessage, /a crash fault is already active/);
    await sleep(500);
    assert.equal(m.running, false);
    const healed = await agent.heal(fault.id);
    assert.ok(healed.healedAt);
    assert.equal(existsSync(holdFile(m.dataDir)), false);
    // Well before the 60 s TTL.
    await eventually('the member to serve right after the heal', () => isHealthy(m.endpoint, 500), 15_000);
    await assertClusterHealthy();
  });

  test('an agent SIGKILLed mid-crash is restarted and removes the hold on start: etcd comes back long before the TTL', async () => {
    const m = cluster.members[2]!;
    const local = m.agent!;
    await agentOf(m).inject({ type: 'crash', ttlMs: 60_000 });
    await eventually('the crashed etcd to exit', () => !m.running, 5000);
    const restarts = local.restarts;
    process.kill(local.pid!, 'SIGKILL');
    await eventually('a new agent process', () => local.restarts === restarts + 1 && local.running, 10_000);
    await eventually('the member to serve again', () => isHealthy(m.endpoint, 500), 20_000);
    assert.equal(existsSync(holdFile(m.dataDir)), false);
    assert.deepEqual((await agentOf(m).status()).faults, []);
    await assertClusterHealthy();
  });

  test('pause: the member stops answering and answers again after the TTL, without anyone calling the agent', async () => {
    const m = cluster.members[2]!;
    const restarts = m.restarts;
    const injectedAt = Date.now();
    const fault = await agentOf(m).inject({ type: 'pause', ttlMs: 1500 });
    assert.ok(Date.parse(fault.expiresAt) >= injectedAt + 1400);
    assert.equal(await isHealthy(m.endpoint, 500), false, 'a paused member must not answer');
    const pinned = new Etcd3({ hosts: m.endpoint });
    try {
      await assert.rejects(pinned.get('/agent/any').serializable(true).options({ deadline: Date.now() + 400 }).string());
    } finally {
      pinned.close();
    }
    await eventually('the paused member to answer again', () => isHealthy(m.endpoint, 500), 10_000);
    const pausedFor = Date.now() - injectedAt;
    assert.ok(pausedFor >= 1400, `answered again after ${pausedFor} ms, before the TTL`);
    assert.equal(m.restarts, restarts, 'resumed, not restarted');
    assert.deepEqual((await agentOf(m).status()).faults, []);
    await assertClusterHealthy();
  });

  test('failpoint raftBeforeSave=panic: the member panics on the next write, is restarted, and the failpoint is gone', async () => {
    const m = cluster.members[0]!;
    const agent = agentOf(m);
    const before = m.pid;
    const restarts = m.restarts;
    const fault = await agent.inject({ type: 'failpoint', name: 'raftBeforeSave', term: 'panic', ttlMs: 30_000 });
    const others = new Etcd3({ hosts: cluster.members.slice(1).map((x) => x.endpoint) });
    try {
      await others.put('/agent/panic-trigger').value('x');
    } finally {
      others.close();
    }
    await eventually('the panicked member to be restarted', () => m.restarts === restarts + 1 && m.running && m.pid !== before, 15_000);
    assert.match(readFileSync(m.logFile, 'utf8'), /panic/);
    await m.waitHealthy(20_000);
    // gofail state is per process: the restarted etcd has no active failpoint.
    const failpoints = await agent.failpoints();
    assert.equal(failpoints.find((f) => f.name === 'raftBeforeSave')?.term, '');
    // The agent still holds the lease; healing it finds nothing to undo and says so without error.
    const healed = await agent.heal(fault.id);
    assert.ok(healed.healedAt);
    assert.equal(healed.healError, undefined);
    await assertClusterHealthy();
  });

  test('failpoint sleep("100ms") is active until its TTL, then healed by the agent', async () => {
    const m = cluster.members[1]!;
    const agent = agentOf(m);
    await agent.inject({ type: 'failpoint', name: 'raftBeforeSave', term: 'sleep("100ms")', ttlMs: 1000 });
    assert.equal((await agent.failpoints()).find((f) => f.name === 'raftBeforeSave')?.term, 'sleep("100ms")');
    const conflict = await requestError(agent.inject({ type: 'failpoint', name: 'raftBeforeSave', term: 'panic', ttlMs: 1000 }));
    assert.equal(conflict.status, 409);
    await client.put('/agent/slow-write').value('y');
    await eventually('the failpoint to be deactivated', async () => (await agent.failpoints()).find((f) => f.name === 'raftBeforeSave')?.term === '', 5000);
    assert.deepEqual((await agent.status()).faults, []);
    const badTerm = await requestError(agent.inject({ type: 'failpoint', name: 'raftBeforeSave', term: 'not-a-term(', ttlMs: 1000 }));
    assert.equal(badTerm.status, 400);
  });

  test('diskPressure: a ballast file of the requested size beside the data dir, removed at the TTL', async () => {
    const m = cluster.members[0]!;
    const bytes = 32 * 1024 * 1024;
    const ballast = path.join(cluster.dataRoot, `.etcd-robustness-ballast-${m.name}`);
    await agentOf(m).inject({ type: 'diskPressure', bytes, ttlMs: 1500 });
    const stat = statSync(ballast);
    assert.equal(stat.size, bytes);
    assert.ok(stat.blocks * 512 >= bytes, `only ${stat.blocks * 512} bytes allocated: a sparse file is no pressure`);
    await eventually('the ballast to be removed', () => !existsSync(ballast), 5000);
    const tooBig = await requestError(agentOf(m).inject({ type: 'diskPressure', bytes: Number.MAX_SAFE_INTEGER, ttlMs: 1000 }));
    assert.equal(tooBig.status, 507);
    assert.match(tooBig.agentMessage, /bytes free/);
  });

  test('network: a blackhole around m3 (all agents) cuts it off; healing reconnects it', async () => {
    const { members } = await client.cluster.memberList({ linearizable: false });
    const peers = Object.fromEntries(members.map((x) => [BigInt(x.ID).toString(16), x.name]));
    const rules = ['m1', 'm2'].flatMap((other) => [
      { from: 'm3', to: other, action: 'blackhole' as const },
      { from: other, to: 'm3', action: 'blackhole' as const },
    ]);
    const m3 = cluster.member('m3');
    const injected: { m: LocalEtcdMember; fault: AgentFault }[] = [];
    try {
      for (const m of cluster.members) injected.push({ m, fault: await agentOf(m).inject({ type: 'network', rules, peers, ttlMs: 30_000 }) });
      assert.equal((await agentOf(m3).status()).faults[0]?.type, 'network');
      await eventually('isolated m3 to report unhealthy', async () => !(await isHealthy(m3.endpoint, 1000)), 15_000);
      // If m3 led, the majority elects a new leader first.
      await eventually('the majority to serve', () => isHealthy(cluster.member('m1').endpoint), 10_000);
      const majority = new Etcd3({ hosts: [cluster.member('m1').endpoint, cluster.member('m2').endpoint] });
      try {
        await majority.put('/agent/during-partition').value('z');
      } finally {
        majority.close();
      }
      assert.equal(await isHealthy(m3.endpoint, 1000), false, 'm3 is still cut off');
    } finally {
      for (const { m, fault } of injected) await agentOf(m).heal(fault.id);
    }
    await eventually('m3 to be healthy again', () => isHealthy(m3.endpoint, 1000), 20_000);
    await assertClusterHealthy();
    const pinned = new Etcd3({ hosts: m3.endpoint });
    try {
      assert.equal(await pinned.get('/agent/during-partition').string(), 'z');
    } finally {
      pinned.close();
    }
  });

  test('DELETE heals at once: one fault by id (again: the same answer), then all', async () => {
    const m = cluster.members[1]!;
    const agent = agentOf(m);
    const pause = await agent.inject({ type: 'pause', ttlMs: 60_000 });
    assert.equal(await isHealthy(m.endpoint, 500), false);
    const again = await requestError(agent.inject({ type: 'pause', ttlMs: 60_000 }));
    assert.equal(again.status, 409);
    const healed = await agent.heal(pause.id);
    assert.equal(healed.id, pause.id);
    await eventually('the member to answer right after the heal', () => isHealthy(m.endpoint, 1000), 3000);
    assert.deepEqual(await agent.heal(pause.id), healed);

    const ballast = path.join(cluster.dataRoot, `.etcd-robustness-ballast-${m.name}`);
    await agent.inject({ type: 'diskPressure', bytes: 1 << 20, ttlMs: 60_000 });
    await agent.inject({ type: 'pause', ttlMs: 60_000 });
    assert.equal((await agent.faults()).length, 2);
    const all = await agent.healAll();
    assert.deepEqual(all.map((f) => f.type).sort(), ['diskPressure', 'pause']);
    assert.equal(existsSync(ballast), false);
    await eventually('the member to answer after heal-all', () => isHealthy(m.endpoint, 1000), 3000);
    assert.deepEqual((await agent.status()).faults, []);
  });

  test('an agent SIGKILLed while a pause is active is restarted and heals the pause on start', async () => {
    const m = cluster.members[2]!;
    const local = m.agent!;
    await agentOf(m).inject({ type: 'pause', ttlMs: 60_000 });
    assert.equal(await isHealthy(m.endpoint, 500), false);
    const before = local.pid!;
    const restarts = local.restarts;
    process.kill(before, 'SIGKILL');
    await eventually('a new agent process', () => local.restarts === restarts + 1 && local.running, 10_000);
    await eventually('the restarted agent to answer', async () => (await agentOf(m).status().catch(() => undefined)) !== undefined, 10_000);
    await eventually('the member to answer again', () => isHealthy(m.endpoint, 1000), 10_000);
    assert.deepEqual((await agentOf(m).status()).faults, []);
    await assertClusterHealthy();
  });
});

describe('a crash whose agent is gone for good', { timeout: 60_000 }, () => {
  test('the hold expires by its TTL and the supervisor restarts etcd on its data', async () => {
    const cluster = await LocalEtcdCluster.start({ size: 1, supervise: true });
    let agent: ManagedProcess | undefined;
    try {
      const m = cluster.members[0]!;
      const tokenFile = path.join(cluster.dataRoot, 'token');
      writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });
      const [port] = await freeLoopbackPorts(1);
      const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('ETCD') && key !== 'NODE_TEST_CONTEXT'));
      const args = [cliEntryPoint, 'agent', '--member', m.name, '--data-dir', m.dataDir, '--listen', `127.0.0.1:${port!}`, '--token-file', tokenFile, '--exit-with-parent'];
      agent = new ManagedProcess('lone-agent', process.execPath, args, { env, logFile: path.join(cluster.dataRoot, 'agent.log') });
      const api = new AgentClient(`http://127.0.0.1:${port!}`, token);
      await eventually('the agent to answer', async () => (await api.status().catch(() => undefined))?.pid === m.pid, 15_000);
      const etcd = new Etcd3({ hosts: m.endpoint });
      try {
        await etcd.put('/agent/kept').value('k');
        const fault = await api.inject({ type: 'crash', ttlMs: 2500 });
        const expiresAt = Date.parse(fault.expiresAt);
        await eventually('the crashed etcd to exit', () => !m.running, 5000);
        await agent.kill();
        await sleep(Math.max(0, expiresAt - 1000 - Date.now()));
        assert.equal(m.running, false, 'held down with no agent left');
        await eventually('etcd to serve again once the hold expired', () => isHealthy(m.endpoint, 500), 15_000);
        assert.ok(Date.now() >= expiresAt, 'not before the expiry');
        assert.equal(existsSync(holdFile(m.dataDir)), true, 'nobody removed the hold: it was ignored once expired');
        assert.equal(m.restarts, 1);
        assert.equal(await etcd.get('/agent/kept').string(), 'k');
      } finally {
        etcd.close();
      }
    } finally {
      await agent?.kill();
      await cluster.close();
    }
  });
});

describe('fault agent without etcd, gofail or proxy', { timeout: 30_000 }, () => {
  let agent: FaultAgent;
  let root: string;

  before(async () => {
    root = mkdtempSync(path.join(os.tmpdir(), 'etcd-robustness-agent-'));
    agent = await FaultAgent.start({ member: 'x1', dataDir: path.join(root, 'x1.etcd'), listen: { host: '127.0.0.1', port: 0 }, token, maxTtlMs: 5000 });
  });

  after(async () => {
    await agent?.close();
    rmSync(root, { recursive: true, force: true });
  });

  test('409 with a clear message for what this agent cannot do', async () => {
    const client = new AgentClient(agent.url, token);
    assert.deepEqual(await client.status(), { member: 'x1', pid: undefined, faults: [] });
    const noGofail = await requestError(client.failpoints());
    assert.equal(noGofail.status, 409);
    assert.match(noGofail.agentMessage, /no gofail API.*--gofail-url/);
    const noEtcd = await requestError(client.inject({ type: 'kill' }));
    assert.equal(noEtcd.status, 409);
    assert.match(noEtcd.agentMessage, /no etcd process with --data-dir=.*x1\.etcd is running/);
    const noProxy = await requestError(client.inject({ type: 'network', ttlMs: 1000, rules: [{ from: 'x1', to: 'x2', action: 'blackhole' }] }));
    assert.equal(noProxy.status, 409);
    assert.match(noProxy.agentMessage, /runs no peer proxy/);
    const tooLong = await requestError(client.inject({ type: 'pause', ttlMs: 5001 }));
    assert.match(tooLong.agentMessage, /maximum of 5000 ms/);
  });

  test('a ballast written beside the data dir is removed when the agent closes', async () => {
    const client = new AgentClient(agent.url, token);
    await client.inject({ type: 'diskPressure', bytes: 4096, ttlMs: 5000 });
    assert.equal(statSync(path.join(root, '.etcd-robustness-ballast-x1')).size, 4096);
    const second = await FaultAgent.start({ member: 'x1', dataDir: path.join(root, 'x1.etcd'), listen: { host: '127.0.0.1', port: 0 }, token });
    // A new agent instance heals what it finds on start (as after a crash of the first one).
    assert.equal(existsSync(path.join(root, '.etcd-robustness-ballast-x1')), false);
    await second.close();
    const healed = await agent.healAll();
    assert.equal(healed.length, 1);
  });

  test('an unreachable agent is an AgentRequestError without status', async () => {
    const error = await requestError(new AgentClient('http://127.0.0.1:9', token, { timeoutMs: 1000 }).status());
    assert.equal(error.status, undefined);
  });
  test('over TLS: the client verifies the agent against its CA, and the token never goes in clear', async () => {
    const bundle = await certificateAuthorityBundle('test agents', ['localhost']);
    const dataDir = path.join(root, 'x2.etcd');
    // Not on a non-loopback address without TLS: the token would cross the network in clear.
    await assert.rejects(FaultAgent.start({ member: 'x2', dataDir, listen: { host: '0.0.0.0', port: 0 }, token }), AgentInsecureListenError);
    const secure = await FaultAgent.start({ member: 'x2', dataDir, listen: { host: '127.0.0.1', port: 0 }, token, tls: { cert: bundle.cert, key: bundle.key } });
    try {
      const port = new URL(secure.url).port;
      assert.equal(secure.url, `https://127.0.0.1:${port}`);
      // By the name the certificate holds, trusting only the agents' CA.
      const client = new AgentClient(`https://localhost:${port}`, token, { ca: bundle.ca });
      assert.equal((await client.status()).member, 'x2');
      // By its address, checking the name the certificate must hold (the in-cluster test reaches Pods so).
      assert.equal((await new AgentClient(secure.url, token, { ca: bundle.ca, serverName: 'localhost' }).status()).member, 'x2');
      const wrongName = await requestError(new AgentClient(secure.url, token, { ca: bundle.ca }).status());
      assert.match(wrongName.agentMessage, /IP: 127\.0\.0\.1 is not in the cert's list|altnames/);
      const other = await certificateAuthorityBundle('someone else', ['localhost']);
      const untrusted = await requestError(new AgentClient(`https://localhost:${port}`, token, { ca: other.ca }).status());
      assert.equal(untrusted.status, undefined);
      assert.match(untrusted.agentMessage, /certificate/);
      // Plain HTTP to the TLS port gets no API answer (the request, token included, is not served).
      const plain = await requestError(new AgentClient(`http://127.0.0.1:${port}`, token, { timeoutMs: 2000 }).status());
      assert.notEqual(plain.status, 200);
      assert.ok(plain.status === undefined || plain.status === 400, `plain HTTP: ${plain.message}`);
    } finally {
      await secure.close();
    }
  });
});

describe('LocalMemberRuntime with agents', { timeout: 60_000 }, () => {
  test('members carry their agent URL; the generated token opens the agents', async () => {
    const runtime = new LocalMemberRuntime({ size: 1, agents: {} });
    try {
      assert.equal(runtime.agentToken, undefined);
      await runtime.create();
      const [member] = runtime.members();
      assert.match(member?.agentUrl ?? '', /^http:\/\/127\.0\.0\.1:\d+$/);
      assert.match(runtime.agentToken ?? '', /^[\w-]{32}$/);
      const status = await new AgentClient(member!.agentUrl!, runtime.agentToken!).status();
      assert.equal(status.member, 'm1');
      assert.equal(typeof status.pid, 'number');
      assert.ok((await new AgentClient(member!.agentUrl!, runtime.agentToken!).failpoints()).length > 0, 'failpoints are on by default');
    } finally {
      await runtime.close();
    }
    const plain = new LocalMemberRuntime({ size: 1 });
    try {
      await plain.create();
      assert.equal(plain.members()[0]?.agentUrl, undefined);
      assert.equal(plain.agentToken, undefined);
    } finally {
      await plain.close();
    }
  });
});

describe('a runner that dies mid-fault', { timeout: 120_000 }, () => {
  for (const mode of ['SIGKILL', 'crash'] as const) {
    const what =
      mode === 'SIGKILL'
        ? 'SIGKILLed: its etcd (pdeathsig KILL) and agents (pdeathsig TERM) die with it, the agents healing their faults on the way out'
        : 'crashing (uncaught exception): its exit hook kills etcd and SIGTERMs the agents, which heal their faults';
    test(what, async () => {
      const root = mkdtempSync(path.join(os.tmpdir(), 'etcd-robustness-runner-dies-'));
      const helper = new URL('../helpers/agent-runner.ts', import.meta.url).pathname;
      const runner = spawn(process.execPath, [helper, root, ...(mode === 'crash' ? ['crash'] : [])], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      runner.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
      runner.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
      const exited = new Promise<void>((resolve) => runner.once('exit', () => resolve()));
      try {
        await eventually('the runner to be ready', () => out.includes('ready') || runner.exitCode !== null, 60_000).catch(() => undefined);
        assert.match(out, /ready/, `runner output:\n${out}\n${err}`);
        const ready = JSON.parse(out.slice(out.indexOf('{'), out.indexOf('}') + 1)) as { etcd: number[]; agents: number[]; ballast: string };
        if (mode === 'SIGKILL') {
          assert.equal(existsSync(ready.ballast), true);
          const children = pidsMentioning(root).filter((pid) => pid !== runner.pid);
          assert.deepEqual(children.sort(), [...ready.etcd, ...ready.agents].sort(), 'three etcd and three agents run');
          runner.kill('SIGKILL');
        }
        await exited;
        if (mode === 'crash') assert.match(err, /crashes on purpose/);
        await eventually('no etcd or agent process of the dead runner', () => pidsMentioning(root).length === 0, 10_000);
        assert.equal(existsSync(ready.ballast), false, 'the agent removed its ballast before exiting');
      } finally {
        if (runner.exitCode === null && runner.signalCode === null) runner.kill('SIGKILL');
        for (const pid of pidsMentioning(root)) process.kill(pid, 'SIGKILL');
        rmSync(root, { recursive: true, force: true });
      }
    });
  }
});
