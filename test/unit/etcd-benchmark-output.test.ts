import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { EtcdBenchmarkOutputError, etcdBenchmarkArgs, parseEtcdBenchmarkOutput, parseRusageLine, runEtcdBenchmark } from '../../bench/etcd-benchmark.ts';

// Captured from a real run of etcd's benchmark tool (bench/.bin/etcd-benchmark, etcd client v3.6.16)
// against a local 3-member etcd v3.6.16 cluster, by bench/etcd-benchmark-demo.ts:
//   etcd-benchmark --endpoints=<3 members> --clients=8 --conns=3 --precise put --rate=1000 --total=10000
//     --key-size=8 --val-size=8 --sequential-keys --key-space-size=10000
const putOutput = readFileSync(new URL('../fixtures/etcd-benchmark-put.txt', import.meta.url), 'utf8');

function assertRejects(text: string, reason: RegExp): void {
  assert.throws(
    () => parseEtcdBenchmarkOutput(text),
    (error: unknown) => {
      assert.ok(error instanceof EtcdBenchmarkOutputError, `expected EtcdBenchmarkOutputError, got ${String(error)}`);
      assert.match(error.message, /^cannot parse etcd benchmark output: /);
      assert.match(error.message, reason);
      assert.match(error.message, /--- output \(last lines\) ---/);
      return true;
    },
  );
}

describe('parseEtcdBenchmarkOutput', () => {
  test('reads the summary of a real put run', () => {
    const s = parseEtcdBenchmarkOutput(putOutput);
    assert.equal(s.requests, 10_000, 'the histogram counts add up to the successful requests');
    assert.equal(s.errors, 0);
    assert.equal(s.errorDistribution.size, 0);
    assert.equal(s.seconds, 10.122792169);
    assert.equal(s.requestsPerSecond, 987.8697332761569);
    assert.ok(Math.abs(s.p50Ms - 1.208694) < 1e-9, `p50 ${s.p50Ms}`);
    assert.ok(Math.abs(s.p99Ms - 8.078302) < 1e-9, `p99 ${s.p99Ms}`);
    assert.deepEqual([...s.percentilesMs.keys()], [10, 25, 50, 75, 90, 95, 99, 99.9]);
    // Requests/sec is successful requests over Total.
    assert.ok(Math.abs(s.requests / s.seconds - s.requestsPerSecond) < 1e-6);
  });

  test('reads the default (%4.4f) format and an error distribution', () => {
    const text = [
      '',
      'Summary:',
      '  Total:\t2.5000 secs.',
      '  Slowest:\t0.0500 secs.',
      '  Fastest:\t0.0010 secs.',
      '  Average:\t0.0030 secs.',
      '  Stddev:\t0.0010 secs.',
      '  Requests/sec:\t396.0000',
      '',
      'Response time histogram:',
      '  0.0010 [900]\t|∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎',
      '  0.0250 [90]\t|∎∎∎∎',
      '  0.0500 [0]\t|',
      '',
      'Latency distribution:',
      '  10% in 0.0015 secs.',
      '  50% in 0.0025 secs.',
      '  99% in 0.0400 secs.',
      '',
      'Error distribution:',
      '  [7]\tetcdserver: request timed out',
      '  [3]\trpc error: code = Unavailable desc = error reading from server: EOF',
      '',
    ].join('\n');
    const s = parseEtcdBenchmarkOutput(text);
    assert.equal(s.requests, 990);
    assert.equal(s.errors, 10);
    assert.equal(s.errorDistribution.get('etcdserver: request timed out'), 7);
    assert.equal(s.seconds, 2.5);
    assert.equal(s.requestsPerSecond, 396);
    assert.equal(s.p50Ms, 2.5);
    assert.equal(s.p99Ms, 40);
  });

  test('ignores what surrounds the summary (a range run prints a heading first, progress bars use \\r)', () => {
    const s = parseEtcdBenchmarkOutput(`bench with linearizable range\r 10000 / 10000 [====] 100.00%\n${putOutput}\n`);
    assert.equal(s.requests, 10_000);
  });

  test('rejects garbage with a clear error that shows the output', () => {
    assertRejects('', /no "Summary:" block/);
    assertRejects('hello world\nthis is not etcd benchmark output\n', /no "Summary:" block[\s\S]*this is not etcd benchmark output/);
    assertRejects('{"requests": 10000}', /no "Summary:" block/);
  });

  test('rejects an all-failed run, naming the failures', () => {
    assertRejects('\nError distribution:\n  [10000]\tcontext deadline exceeded\n', /all 10000 requests failed/);
  });

  test('rejects a summary with a missing or broken part', () => {
    assertRejects(putOutput.replace(/ {2}Requests\/sec:.*\n/, ''), /no "Requests\/sec:" line/);
    assertRejects(putOutput.replace(/Total:\t[\d.]+ secs\./, 'Total:\tNaN secs.'), /no "Total:" line/);
    assertRejects(putOutput.replace('Response time histogram:', 'Response histogram:'), /no "Response time histogram:" block/);
    assertRejects(putOutput.replace(/\[\d+\]/g, '[0]'), /histogram has no counted requests/);
    assertRejects(putOutput.replace(/\n {2}99% in .*\n/, '\n'), /lacks the 50% or the 99% line/);
    assertRejects(putOutput.slice(0, putOutput.indexOf('Latency distribution:')), /no "Latency distribution:" block/);
  });
});

describe('parseRusageLine', () => {
  test('reads the last line bash `time` printed, among the tool’s own stderr', () => {
    const stderr = ' 10000 / 10000 [===] 100.00% 10s\n\n__ETCD_BENCHMARK_RUSAGE__ user=2.104 sys=1.212 real=10.254\n';
    assert.deepEqual(parseRusageLine(stderr), { user: 2.104, sys: 1.212, real: 10.254 });
    assert.equal(parseRusageLine('no timing here'), undefined);
  });
});

describe('etcdBenchmarkArgs', () => {
  const base = { endpoints: ['http://127.0.0.1:2379', 'http://127.0.0.1:2479'], clients: 8, conns: 2, rate: 1000, total: 10_000 };

  test('builds the tool’s command lines', () => {
    assert.deepEqual(etcdBenchmarkArgs({ ...base, mix: 'put', valueSize: 256 }), [
      '--endpoints=http://127.0.0.1:2379,http://127.0.0.1:2479',
      '--clients=8',
      '--conns=2',
      '--precise',
      'put',
      '--rate=1000',
      '--total=10000',
      '--key-size=8',
      '--val-size=256',
      '--sequential-keys',
      '--key-space-size=10000',
    ]);
    assert.deepEqual(etcdBenchmarkArgs({ ...base, rate: 0, mix: 'range' }).slice(4), ['range', 'etcd-benchmark/range', '--consistency=l', '--rate=0', '--total=10000']);
    assert.equal(etcdBenchmarkArgs({ ...base, mix: 'txn-put' })[4], 'txn-put');
  });

  test('rejects bad options', () => {
    assert.throws(() => etcdBenchmarkArgs({ ...base, endpoints: [], mix: 'put' }), /endpoints must not be empty/);
    assert.throws(() => etcdBenchmarkArgs({ ...base, clients: 0, mix: 'put' }), /clients must be a positive integer/);
    assert.throws(() => etcdBenchmarkArgs({ ...base, rate: -1, mix: 'put' }), /rate must be a non-negative integer/);
    assert.throws(() => etcdBenchmarkArgs({ ...base, keySize: 1, mix: 'put' }), /keySize 1 is too small for 10000 distinct keys/);
  });
});

describe('runEtcdBenchmark', () => {
  test('names the build script when the tool is not built', async () => {
    await assert.rejects(
      runEtcdBenchmark({ endpoints: ['127.0.0.1:1'], clients: 1, conns: 1, rate: 0, total: 1, mix: 'put', binary: '/nonexistent/etcd-benchmark' }),
      /etcd's benchmark tool not found at \/nonexistent\/etcd-benchmark: build it with `bash bench\/build-etcd-benchmark.sh`/,
    );
  });
});
