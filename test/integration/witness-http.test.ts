// The HTTP witness as a real process (`etcd-robustness witness`, through LocalWitness) and its client
// (HttpWitness): create, compare-and-swap won and lost, 20 concurrent writers on one version, an
// acknowledged write surviving SIGKILL, a corrupt data file stopping it, malformed requests, and an
// unreachable or silent witness.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createWitness } from '../../src/controller/witness/stores.ts';
import { HttpWitness } from '../../src/controller/witness/store-http.ts';
import { WitnessRecordError, WitnessUnavailableError, type WitnessRecord } from '../../src/domain/witness.ts';
import { freeLoopbackPorts, LocalWitness } from '../../src/local/index.ts';
import { KubeConfig } from '@kubernetes/client-node';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const cli = path.join(repo, 'src', 'cli.ts');

function record(overrides: Partial<WitnessRecord> = {}): WitnessRecord {
  return { epoch: 1, owner: 'operator-a', ownerTerm: 1, phase: 'single', members: ['m1'], fenced: [], updatedAt: new Date().toISOString(), ...overrides };
}

describe('the HTTP witness process', { timeout: 120_000 }, () => {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'etcd-robustness-witness-it-'));
  const started: LocalWitness[] = [];
  let dirs = 0;
  const freshDir = (): string => path.join(tmp, `w${++dirs}`);

  const startWitness = async (dataDir = freshDir()): Promise<{ process: LocalWitness; client: HttpWitness }> => {
    const process = new LocalWitness({ dataDir });
    started.push(process);
    process.start();
    await process.waitReady();
    return { process, client: new HttpWitness(process.url) };
  };

  after(async () => {
    for (const witness of started) await witness.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  test('create, compare-and-swap won and lost, the term rule; SIGTERM exits 0', async () => {
    const { process, client } = await startWitness();
    assert.match(process.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(client.description, process.url);
    assert.deepEqual(await client.read(), { version: '', record: undefined });

    const first = record({ epoch: 1, ownerTerm: 3 });
    const created = await client.compareAndSwap('', first);
    assert.deepEqual(created, { ok: true, version: '1' });
    assert.deepEqual(await client.read(), { version: '1', record: first });

    // Create again: lost, with what is there.
    const again = await client.compareAndSwap('', record({ epoch: 1, owner: 'operator-b' }));
    assert.equal(again.ok, false);
    if (!again.ok) assert.deepEqual(again.current, { version: '1', record: first });

    const second = record({ epoch: 2, ownerTerm: 3, phase: 'paired', members: ['m1', 'm2'] });
    assert.deepEqual(await client.compareAndSwap('1', second), { ok: true, version: '2' });

    // A stale version loses, naming both versions.
    const stale = await client.compareAndSwap('1', record({ epoch: 2, ownerTerm: 3 }));
    assert.equal(stale.ok, false);
    if (!stale.ok) {
      assert.deepEqual(stale.current, { version: '2', record: second });
      assert.match(stale.reason, /version "1" is not the current version "2"/);
    }
    // The current version but an older term: refused by the term rule.
    const oldTerm = await client.compareAndSwap('2', record({ epoch: 3, ownerTerm: 2, owner: 'operator-b' }));
    assert.equal(oldTerm.ok, false);
    if (!oldTerm.ok) assert.equal(oldTerm.reason, 'term 2 of operator-b is older than term 3 of operator-a');
    // An epoch that skips one: refused.
    const skip = await client.compareAndSwap('2', record({ epoch: 4, ownerTerm: 3 }));
    assert.equal(skip.ok, false);
    if (!skip.ok) assert.match(skip.reason, /epoch 4 does not follow epoch 2/);
    assert.deepEqual(await client.read(), { version: '2', record: second });

    const exit = await process.close();
    assert.deepEqual({ code: exit?.code, signal: exit?.signal }, { code: 0, signal: null });
    assert.match(readFileSync(process.logFile, 'utf8'), /^witness listening on http:\/\/127\.0\.0\.1:\d+$/m);
  });

  test('20 concurrent compare-and-swaps from the same version: exactly one wins, the others see it', async () => {
    const { client } = await startWitness();
    assert.deepEqual(await client.compareAndSwap('', record()), { ok: true, version: '1' });
    const attempts = Array.from({ length: 20 }, (_, i) => record({ epoch: 2, owner: `operator-${i}`, ownerTerm: 1 + i }));
    const results = await Promise.all(attempts.map((next) => client.compareAndSwap('1', next)));
    const winners = results.flatMap((r, i) => (r.ok ? [{ version: r.version, record: attempts[i]! }] : []));
    assert.equal(winners.length, 1, JSON.stringify(results));
    const winner = winners[0]!;
    assert.equal(winner.version, '2');
    for (const result of results) {
      if (!result.ok) assert.deepEqual(result.current, winner);
    }
    assert.deepEqual(await client.read(), winner);
  });

  test('SIGKILL right after acknowledged writes, then restart: the last acknowledged record is there, on the same URL', async () => {
    const { process, client } = await startWitness();
    let version = '';
    let last: WitnessRecord | undefined;
    for (let epoch = 1; epoch <= 5; epoch++) {
      last = record({ epoch, ownerTerm: epoch });
      const result = await client.compareAndSwap(version, last);
      assert.ok(result.ok, JSON.stringify(result));
      version = result.version;
      if (epoch % 2 === 1) continue;
      // Kill the moment the write was answered: it must already be on disk.
      const exit = await process.kill();
      assert.equal(exit?.signal, 'SIGKILL');
      await assert.rejects(client.read(), WitnessUnavailableError);
      const url = process.url;
      process.start();
      await process.waitReady();
      assert.equal(process.url, url);
      assert.deepEqual(await client.read(), { version, record: last });
    }
    // A write racing with the kill: either it was acknowledged (and is there after the restart) or the
    // client got an error; it is never half there.
    const racing = record({ epoch: 6, ownerTerm: 6 });
    const write = client.compareAndSwap(version, racing).then(
      (result) => ({ result, error: undefined }),
      (error: unknown) => ({ result: undefined, error }),
    );
    await process.kill();
    const outcome = await write;
    await process.restart();
    const after = await client.read();
    if (outcome.result === undefined) {
      assert.ok(outcome.error instanceof WitnessUnavailableError, String(outcome.error));
      assert.ok(after.version === version || after.version === '6', JSON.stringify(after));
    } else {
      assert.ok(outcome.result.ok, JSON.stringify(outcome.result));
      assert.deepEqual(after, { version: '6', record: racing });
    }
  });

  test('a corrupt data file: the witness exits non-zero naming the file, and leaves the file as it is', async () => {
    const dataDir = freshDir();
    mkdirSync(dataDir, { recursive: true });
    const file = path.join(dataDir, 'witness.json');
    const corrupt = '{"version": "3", "record": {"epoch": 3, "owner": ';
    writeFileSync(file, corrupt);
    const process = new LocalWitness({ dataDir });
    started.push(process);
    process.start();
    await assert.rejects(process.waitReady(), (error: Error) => {
      assert.match(error.message, /the witness exited \(code 1\)/);
      assert.ok(error.message.includes(`witness data file ${file}: corrupt: not JSON`), error.message);
      return true;
    });
    assert.equal(process.exit?.code, 1);
    assert.equal(readFileSync(file, 'utf8'), corrupt);

    // A valid JSON file with an invalid record: the same.
    writeFileSync(file, JSON.stringify({ version: '3', record: { ...record({ epoch: 3 }), phase: 'leading' } }));
    process.start();
    await assert.rejects(process.waitReady(), /witness data file .*witness\.json: corrupt: invalid record: phase must be one of/);
    assert.equal(process.exit?.code, 1);
  });

  test('malformed PUT bodies are answered 400 naming the field; unknown paths and methods 404 and 405', async () => {
    const { process, client } = await startWitness();
    const put = async (body: string): Promise<{ status: number; error: unknown }> => {
      const response = await fetch(`${process.url}/record`, { method: 'PUT', body, headers: { 'Content-Type': 'application/json' } });
      const answer = (await response.json()) as { error?: unknown };
      return { status: response.status, error: answer.error };
    };
    const cases: [string, RegExp][] = [
      ['', /request body is empty/],
      ['{"expectedVersion": ', /not valid JSON/],
      ['[]', /must be a JSON object/],
      [JSON.stringify({ record: record() }), /^expectedVersion: required/],
      [JSON.stringify({ expectedVersion: '' }), /^record: required/],
      [JSON.stringify({ expectedVersion: '', record: { ...record(), epoch: 'one' } }), /^record: epoch must be a whole number/],
      [JSON.stringify({ expectedVersion: '', record: { ...record(), members: 'm1' } }), /^record: members must be a list of member names/],
      [JSON.stringify({ expectedVersion: '', record: { ...record(), phase: 'failingOver' } }), /^record: a failingOver record names its survivor/],
      [JSON.stringify({ expectedVersion: '', record: record(), epoch: 1 }), /^epoch: unknown field/],
    ];
    for (const [body, message] of cases) {
      const { status, error } = await put(body);
      assert.equal(status, 400, body);
      assert.match(String(error), message, body);
    }
    assert.deepEqual(await client.read(), { version: '', record: undefined }, 'nothing was written');
    const big = await fetch(`${process.url}/record`, { method: 'PUT', body: 'x'.repeat(70_000) });
    assert.equal(big.status, 413);
    await big.arrayBuffer();
    const missing = await fetch(`${process.url}/records`);
    assert.equal(missing.status, 404);
    await missing.arrayBuffer();
    const wrongMethod = await fetch(`${process.url}/record`, { method: 'DELETE' });
    assert.equal(wrongMethod.status, 405);
    assert.equal(wrongMethod.headers.get('allow'), 'GET, PUT');
    await wrongMethod.arrayBuffer();
    const health = await fetch(`${process.url}/healthz`);
    assert.deepEqual(await health.json(), { status: 'ok', version: '' });
    // The client checks a record before it sends it.
    await assert.rejects(client.compareAndSwap('', { ...record(), owner: '' }), WitnessRecordError);
  });

  test('an unreachable witness, a silent one and a failing one: WitnessUnavailableError naming it', async () => {
    const [port] = await freeLoopbackPorts(1);
    const nobody = new HttpWitness(`http://127.0.0.1:${port!}`, { timeoutMs: 1000 });
    await assert.rejects(nobody.read(), (error: unknown) => {
      assert.ok(error instanceof WitnessUnavailableError, String(error));
      assert.equal(error.witness, `http://127.0.0.1:${port!}`);
      assert.match(error.message, /cannot reach it \(ECONNREFUSED\)/);
      return true;
    });
    await assert.rejects(nobody.compareAndSwap('', record()), WitnessUnavailableError);

    // A server that accepts and never answers; then one that answers 503.
    const sockets = new Set<Socket>();
    let mode: 'silent' | 'failing' = 'silent';
    const server = http.createServer((_req, res) => {
      if (mode === 'failing') {
        res.writeHead(503, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ error: 'the data file failed' }));
      }
    });
    server.on('connection', (socket: Socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const silent = new HttpWitness(url, { timeoutMs: 300 });
      const started = performance.now();
      await assert.rejects(silent.compareAndSwap('', record()), (error: unknown) => {
        assert.ok(error instanceof WitnessUnavailableError, String(error));
        assert.match(error.message, /no answer within 300 ms/);
        return true;
      });
      assert.ok(performance.now() - started < 5000);
      mode = 'failing';
      await assert.rejects(silent.read(), /witness http:\/\/127\.0\.0\.1:\d+: GET \/record: HTTP 503: the data file failed/);
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  test('createWitness: an http spec is an HttpWitness on its url', () => {
    const witness = createWitness({ kind: 'http', url: 'http://127.0.0.1:7000/' }, { namespace: 'ns', name: 'pair' }, new KubeConfig());
    assert.ok(witness instanceof HttpWitness);
    assert.equal(witness.description, 'http://127.0.0.1:7000');
    assert.throws(() => createWitness({ kind: 'http' }, { namespace: 'ns', name: 'pair' }, new KubeConfig()), /an http witness needs url/);
  });

  test('command line: --data-dir is required; --help describes it', async () => {
    const run = (args: string[]): Promise<{ code: number; stdout: string; stderr: string }> =>
      new Promise((resolve, reject) => {
        execFile(process.execPath, [cli, 'witness', ...args], { timeout: 30_000 }, (error, stdout, stderr) => {
          if (error !== null && typeof error.code !== 'number') {
            reject(new Error(`cannot run ${cli}: ${error.message}`));
            return;
          }
          resolve({ code: error ? Number(error.code) : 0, stdout, stderr });
        });
      });
    const missing = await run([]);
    assert.equal(missing.code, 64);
    assert.match(missing.stderr, /etcd-robustness: witness: --data-dir is required/);
    const badPort = await run(['--data-dir', freshDir(), '--port', '99999']);
    assert.equal(badPort.code, 64);
    assert.match(badPort.stderr, /--port: "99999" is not a port number/);
    const help = await run(['--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^Usage: etcd-robustness witness --data-dir DIR/);
  });
});
