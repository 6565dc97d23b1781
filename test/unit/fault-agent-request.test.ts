// The fault agent's pure parts: request validation (raw JSON -> AgentFaultRequest or a 400 message),
// finding etcd in /proc by its data dir, the ballast's place, the agent CLI flags.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { parseAgentArgs, parseHostPort } from '../../src/commands/agent.ts';
import { ballastFile } from '../../src/faults/agent-ballast.ts';
import { dataDirArgument, etcdDataDirOf, findEtcdProcess } from '../../src/faults/agent-process.ts';
import { agentFaultTypes, parseFaultRequest } from '../../src/faults/agent-request.ts';
import { holdFile, holdUntil, maxHoldAheadMs, parseHold, removeHold, writeHold } from '../../src/faults/hold.ts';
import { RestartBackoff } from '../../src/local/process.ts';
import { selfSignedCertificate } from '../../src/controller/kit/certificates.ts';
import { UsageError } from '../../src/commands/usage.ts';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'etcd-robustness-agent-unit-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const max = 60_000;

function rejected(raw: unknown): string {
  const result = parseFaultRequest(raw, max);
  assert.equal(result.ok, false, `expected a rejection for ${JSON.stringify(raw)}`);
  return result.ok ? '' : result.error;
}

function accepted(raw: unknown): unknown {
  const result = parseFaultRequest(raw, max);
  assert.ok(result.ok, `expected ${JSON.stringify(raw)} to pass: ${result.ok ? '' : result.error}`);
  return result.request;
}

describe('parseFaultRequest', () => {
  test('accepts each fault type with its parameters', () => {
    assert.deepEqual(accepted({ type: 'kill' }), { type: 'kill' });
    assert.deepEqual(accepted({ type: 'crash', ttlMs: 2500 }), { type: 'crash', ttlMs: 2500 });
    assert.deepEqual(accepted({ type: 'pause', ttlMs: 1500 }), { type: 'pause', ttlMs: 1500 });
    assert.deepEqual(accepted({ type: 'failpoint', name: 'raftBeforeSave', term: 'sleep("100ms")', ttlMs: max }), {
      type: 'failpoint',
      name: 'raftBeforeSave',
      term: 'sleep("100ms")',
      ttlMs: max,
    });
    // A valid network request comes back as it was sent.
    const network = {
      type: 'network',
      ttlMs: 1000,
      rules: [
        { from: 'm1', to: 'm2', action: 'blackhole' },
        { from: 'm2', to: 'm1', action: 'delay', delayMs: 50, jitterMs: 10 },
        { from: 'm1', to: 'm3', action: 'drop', dropPercent: 30 },
      ],
      peers: { '8e9e05c52164694d': 'm1', abc: 'm2' },
    };
    assert.deepEqual(accepted(structuredClone(network)), network);
    assert.deepEqual(accepted({ type: 'diskPressure', bytes: 1 << 20, ttlMs: 10 }), { type: 'diskPressure', bytes: 1 << 20, ttlMs: 10 });
  });

  test('an unknown or missing type lists the types', () => {
    for (const raw of [{ type: 'reboot', ttlMs: 1 }, { type: 3 }]) {
      const error = rejected(raw);
      assert.match(error, /^type: unknown fault type/);
      for (const type of agentFaultTypes) assert.ok(error.includes(type), `${type} missing from: ${error}`);
    }
    assert.match(rejected({ ttlMs: 5 }), /^type: required, one of kill, crash, pause, failpoint, network, diskPressure$/);
  });

  test('a body that is not an object', () => {
    for (const raw of [null, [], 'pause', 42]) assert.match(rejected(raw), /must be a JSON object/);
  });

  test('ttlMs: required, positive, at most the maximum (kill has none)', () => {
    assert.match(rejected({ type: 'pause' }), /^ttlMs: required/);
    assert.match(rejected({ type: 'pause', ttlMs: -5 }), /^ttlMs: must be greater than 0, got -5$/);
    assert.match(rejected({ type: 'pause', ttlMs: 0 }), /^ttlMs: must be greater than 0/);
    assert.match(rejected({ type: 'pause', ttlMs: '5s' }), /^ttlMs: must be a number/);
    assert.match(rejected({ type: 'diskPressure', bytes: 1, ttlMs: max + 1 }), /^ttlMs: 60001 is above this agent's maximum of 60000 ms/);
    assert.match(rejected({ type: 'kill', ttlMs: 100 }), /^ttlMs: unknown field for a kill fault \(fields: type\)$/);
    assert.deepEqual(parseFaultRequest({ type: 'pause', ttlMs: 120_000 }, 120_000), { ok: true, request: { type: 'pause', ttlMs: 120_000 } });
  });

  test('failpoint: name and term', () => {
    assert.match(rejected({ type: 'failpoint', term: 'panic', ttlMs: 1 }), /^name: required/);
    assert.match(rejected({ type: 'failpoint', name: 'no such/name', term: 'panic', ttlMs: 1 }), /^name: "no such\/name" is not a failpoint name$/);
    assert.match(rejected({ type: 'failpoint', name: 'raftBeforeSave', ttlMs: 1 }), /^term: required/);
    assert.match(rejected({ type: 'failpoint', name: 'raftBeforeSave', term: '', ttlMs: 1 }), /^term: must be a non-empty string/);
    assert.match(rejected({ type: 'failpoint', name: 'raftBeforeSave', term: 'panic\nx', ttlMs: 1 }), /^term: must be one line/);
  });

  test('network: rules and peers, with the bad rule named by index', () => {
    assert.match(rejected({ type: 'network', ttlMs: 1 }), /^rules: required/);
    assert.match(rejected({ type: 'network', rules: [], ttlMs: 1 }), /^rules: required, a non-empty array/);
    assert.match(rejected({ type: 'network', rules: [{ from: 'm1', to: 'm2', action: 'cut' }], ttlMs: 1 }), /^rules\[0\]\.action: must be one of blackhole, delay, drop/);
    assert.match(rejected({ type: 'network', rules: [{ from: 'm1', to: 'm2', action: 'blackhole' }, { to: 'm2', action: 'blackhole' }], ttlMs: 1 }), /^rules\[1\]\.from: required/);
    assert.match(rejected({ type: 'network', rules: [{ from: 'm1', to: 'm1', action: 'blackhole' }], ttlMs: 1 }), /^rules\[0\]: from and to are the same member/);
    assert.match(rejected({ type: 'network', rules: [{ from: 'm1', to: 'm2', action: 'delay' }], ttlMs: 1 }), /^rules\[0\]\.delayMs: required for a delay rule/);
    assert.match(rejected({ type: 'network', rules: [{ from: 'm1', to: 'm2', action: 'drop' }], ttlMs: 1 }), /^rules\[0\]\.dropPercent: required for a drop rule/);
    assert.match(rejected({ type: 'network', rules: [{ from: 'm1', to: 'm2', action: 'drop', dropPercent: 101 }], ttlMs: 1 }), /^rules\[0\]\.dropPercent: must be at most 100, got 101$/);
    assert.match(rejected({ type: 'network', rules: [{ from: 'm1', to: 'm2', action: 'blackhole', delayMs: 5 }], ttlMs: 1 }), /^rules\[0\]\.delayMs: only for a delay rule/);
    assert.match(rejected({ type: 'network', rules: [{ from: 'm1', to: 'm2', action: 'blackhole', port: 1 }], ttlMs: 1 }), /^rules\[0\]\.port: unknown field/);
    assert.match(rejected({ type: 'network', rules: [{ from: 'm1', to: 'm2', action: 'blackhole' }], peers: { xyz: 'm1' }, ttlMs: 1 }), /^peers: "xyz" is not a member id in hex$/);
    assert.match(rejected({ type: 'network', rules: [{ from: 'm1', to: 'm2', action: 'blackhole' }], peers: { abc: 1 }, ttlMs: 1 }), /^peers\.abc: must be a member name/);
  });

  test('diskPressure: bytes is a positive whole number', () => {
    assert.match(rejected({ type: 'diskPressure', ttlMs: 1 }), /^bytes: required/);
    assert.match(rejected({ type: 'diskPressure', bytes: 0, ttlMs: 1 }), /^bytes: must be greater than 0/);
    assert.match(rejected({ type: 'diskPressure', bytes: 1.5, ttlMs: 1 }), /^bytes: must be a whole number/);
  });

  test('crash: ttlMs is required (the hold is a lease), nothing else is taken', () => {
    assert.match(rejected({ type: 'crash' }), /^ttlMs: required/);
    assert.match(rejected({ type: 'crash', ttlMs: 0 }), /^ttlMs: must be greater than 0, got 0$/);
    assert.match(rejected({ type: 'crash', ttlMs: max + 1 }), /^ttlMs: 60001 is above this agent's maximum of 60000 ms/);
    assert.match(rejected({ type: 'crash', ttlMs: 1000, member: 'm1' }), /^member: unknown field for a crash fault \(fields: type, ttlMs\)$/);
  });

  test('unknown fields are named', () => {
    assert.match(rejected({ type: 'pause', ttlMs: 1, member: 'm1' }), /^member: unknown field for a pause fault \(fields: type, ttlMs\)$/);
  });
});

describe('finding etcd by its data dir in /proc', () => {
  const proc = path.join(tmp, 'proc');
  const fake = (pid: number, args: string[], options: { cwd?: string; environ?: string[] } = {}): void => {
    mkdirSync(path.join(proc, String(pid)), { recursive: true });
    writeFileSync(path.join(proc, String(pid), 'cmdline'), args.map((a) => `${a}\0`).join(''));
    writeFileSync(path.join(proc, String(pid), 'environ'), (options.environ ?? []).map((e) => `${e}\0`).join(''));
    if (options.cwd) symlinkSync(options.cwd, path.join(proc, String(pid), 'cwd'));
  };
  fake(10, ['/usr/bin/node', 'cli.js', 'agent', '--data-dir', '/data/m1.etcd']); // the agent itself: not etcd
  fake(11, ['/bin/setpriv', '--pdeathsig', 'KILL', '--', '/bin/etcd', '--data-dir=/data/m1.etcd']); // not exec'd yet
  fake(12, ['/opt/etcd-v3.6.16/etcd', '--name=m1', '--data-dir=/data/m1.etcd']);
  fake(13, ['etcd', '--name', 'm2', '--data-dir', 'm2.etcd'], { cwd: '/data' });
  fake(14, ['/usr/local/bin/etcd', '--name=m3'], { environ: ['HOME=/', 'ETCD_DATA_DIR=/var/lib/etcd'] });
  fake(15, ['/usr/local/bin/etcdctl', '--data-dir=/data/m4.etcd']);
  mkdirSync(path.join(proc, 'self'));
  mkdirSync(path.join(proc, '16')); // a process that is gone (no cmdline)

  test('--data-dir=, --data-dir X, relative to its cwd, ETCD_DATA_DIR', () => {
    assert.equal(findEtcdProcess('/data/m1.etcd', proc), 12);
    assert.equal(findEtcdProcess('/data/m1.etcd/', proc), 12);
    assert.equal(findEtcdProcess('/data/m2.etcd', proc), 13);
    assert.equal(findEtcdProcess('/var/lib/etcd', proc), 14);
    assert.equal(findEtcdProcess('/data/m4.etcd', proc), undefined, 'etcdctl is not etcd');
    assert.equal(findEtcdProcess('/data/m9.etcd', proc), undefined);
    assert.equal(etcdDataDirOf(10, proc), undefined);
    assert.equal(etcdDataDirOf(16, proc), undefined);
  });

  test('dataDirArgument', () => {
    assert.equal(dataDirArgument(['etcd', '-data-dir=/x']), '/x');
    assert.equal(dataDirArgument(['etcd', '-data-dir', '/y']), '/y');
    assert.equal(dataDirArgument(['etcd', '--data-dir-other=/z']), undefined);
  });

  test('the real /proc: this process is no etcd', () => {
    assert.equal(findEtcdProcess(path.join(tmp, 'nothing-runs-here')), undefined);
  });
});

describe('ballastFile', () => {
  test('beside the data dir when that folder is writable on the same filesystem', () => {
    const dataDir = path.join(tmp, 'b', 'm1.etcd');
    mkdirSync(dataDir, { recursive: true });
    assert.equal(ballastFile(dataDir, 'm1'), path.join(tmp, 'b', '.etcd-robustness-ballast-m1'));
  });
});

describe('the crash fault\'s hold file', () => {
  test('beside the data dir, whatever the trailing slash', () => {
    assert.equal(holdFile('/var/lib/etcd/data'), '/var/lib/etcd/data.hold');
    assert.equal(holdFile('/var/lib/etcd/data/'), '/var/lib/etcd/data.hold');
  });

  test('parseHold: whole ms since the epoch, blanks around allowed; anything else is no hold', () => {
    assert.equal(parseHold('1700000000000\n'), 1_700_000_000_000);
    assert.equal(parseHold('  42 '), 42);
    for (const text of ['', 'soon', '-5', '1.5', '1e12', '12 34', '99999999999999999']) assert.equal(parseHold(text), undefined, JSON.stringify(text));
  });

  test('holdUntil: in force only while it reads as an expiry in the future, and not implausibly far', async () => {
    const dir = mkdtempSync(path.join(tmp, 'hold-'));
    const file = holdFile(path.join(dir, 'm1.etcd'));
    const now = 1_700_000_000_000;
    assert.equal(holdUntil(file, now), undefined, 'no file, no hold');
    await writeHold(file, now + 5000);
    assert.equal(holdUntil(file, now), now + 5000);
    assert.equal(holdUntil(file, now + 5000), undefined, 'expired');
    assert.equal(holdUntil(file, now - maxHoldAheadMs), undefined, 'too far ahead to be real');
    writeFileSync(file, 'garbage');
    assert.equal(holdUntil(file, now), undefined, 'unreadable');
    assert.equal(await removeHold(file), true);
    assert.equal(await removeHold(file), false);
    await assert.rejects(writeHold(file, 1.5), RangeError);
  });
});

describe('agent flags', () => {
  const tokenFile = path.join(tmp, 'token');
  writeFileSync(tokenFile, ' s3cret \n');

  test('parses every flag and reads the token', () => {
    const command = parseAgentArgs([
      '--member', 'm1', '--data-dir', '/d/m1.etcd', '--listen', '127.0.0.1:9000', '--token-file', tokenFile,
      '--gofail-url', 'http://127.0.0.1:22381', '--peer-listen', '127.0.0.1:2380', '--peer-target', '[::1]:12380',
      '--max-ttl', '2m', '--exit-with-parent',
    ]);
    assert.equal(command.exitWithParent, true);
    const { commitLog, ...options } = command.options;
    assert.equal(typeof commitLog, 'function', 'the survivor recovery runs etcd-wal-commit');
    assert.deepEqual(options, {
      member: 'm1',
      dataDir: '/d/m1.etcd',
      listen: { host: '127.0.0.1', port: 9000 },
      token: 's3cret',
      maxTtlMs: 120_000,
      gofailUrl: 'http://127.0.0.1:22381',
      peerProxy: { listen: { host: '127.0.0.1', port: 2380 }, target: { host: '::1', port: 12380 } },
    });
  });

  test('usage errors', () => {
    const base = ['--member', 'm1', '--data-dir', '/d', '--listen', '127.0.0.1:9000', '--token-file', tokenFile];
    assert.throws(() => parseAgentArgs(base.slice(2)), /--member is required/);
    assert.throws(() => parseAgentArgs([...base, '--max-ttl', 'soon']), /--max-ttl: "soon" is not a duration/);
    assert.throws(() => parseAgentArgs([...base, '--peer-listen', '127.0.0.1:1']), /--peer-listen and --peer-target go together/);
    assert.throws(() => parseAgentArgs(['--member', 'm1', '--data-dir', '/d', '--listen', ':1', '--token-file', path.join(tmp, 'none')]));
    assert.throws(() => parseHostPort('localhost', '--listen'), /--listen: "localhost" is not HOST:PORT/);
    assert.throws(() => parseAgentArgs([...base, '--tls-cert-file', tokenFile]), /--tls-cert-file and --tls-key-file go together/);
  });

  test('a non-loopback --listen needs TLS: the bearer token must not cross the network in clear', async () => {
    const wide = ['--member', 'm1', '--data-dir', '/d', '--listen', ':9095', '--token-file', tokenFile];
    for (const listen of [':9095', '0.0.0.0:9095', '10.1.2.3:9095', '[::]:9095']) {
      assert.throws(
        () => parseAgentArgs(['--member', 'm1', '--data-dir', '/d', '--listen', listen, '--token-file', tokenFile]),
        (error: unknown) => error instanceof UsageError && /is not a loopback address: the bearer token would cross the network in clear/.test(error.message),
        listen,
      );
    }
    const { cert, key } = await selfSignedCertificate('agent', ['localhost']);
    writeFileSync(path.join(tmp, 'tls.crt'), cert);
    writeFileSync(path.join(tmp, 'tls.key'), key);
    const secure = parseAgentArgs([...wide, '--tls-cert-file', path.join(tmp, 'tls.crt'), '--tls-key-file', path.join(tmp, 'tls.key')]);
    assert.deepEqual(secure.options.listen, { host: '0.0.0.0', port: 9095 });
    assert.deepEqual(secure.options.tls, { cert, key });
    assert.throws(() => parseAgentArgs([...wide, '--tls-cert-file', path.join(tmp, 'none.crt'), '--tls-key-file', path.join(tmp, 'tls.key')]), /--tls-cert-file: cannot read/);
  });
});

describe('RestartBackoff', () => {
  test('200 ms, doubling on quick crashes up to 2 s, back to 200 ms after a stable run', () => {
    const backoff = new RestartBackoff();
    assert.deepEqual([1, 1, 1, 1, 1, 1].map((ran) => backoff.next(ran)), [200, 400, 800, 1600, 2000, 2000]);
    assert.equal(backoff.next(60_000), 200);
    assert.equal(backoff.next(5), 400);
  });
});
