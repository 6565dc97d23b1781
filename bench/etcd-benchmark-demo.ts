/**
 * etcd's benchmark tool against a real local 3-member cluster: the baseline figures the probe
 * benchmark compares with. Builds the tool if needed (bench/build-etcd-benchmark.sh), starts a
 * LocalEtcdCluster, runs put and linearizable range (and txn-put) at each rate, prints a table, and
 * always stops the cluster.
 *
 *   node bench/etcd-benchmark-demo.ts                      # 8 clients, 3 conns, 10000 requests, rates 1000 and unlimited
 *   node bench/etcd-benchmark-demo.ts --rates 1000 --total 2000
 *
 * Options: --clients N (default 8), --conns N (default 3: one connection per member), --total N
 * (default 10000), --rates R,R... (default 1000,0; 0 = unlimited), --mixes put,range,txn-put (default
 * put,range at a rate, put,range,txn-put unlimited: txn-put is only run unlimited unless listed).
 * Results go to bench/.results/etcd-benchmark-<date>.json, the tool's raw output of each run beside it.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { LocalEtcdCluster } from '../src/local/etcd-cluster.ts';
import { buildEtcdBenchmark, runEtcdBenchmark } from './etcd-benchmark.ts';
import type { EtcdBenchmarkMix, EtcdBenchmarkResult } from './etcd-benchmark.ts';
import { intOption } from './options.ts';

const benchDir = path.dirname(new URL(import.meta.url).pathname);
const resultsDir = path.join(benchDir, '.results');

const { values: args } = parseArgs({
  options: {
    clients: { type: 'string' },
    conns: { type: 'string' },
    total: { type: 'string' },
    rates: { type: 'string' },
    mixes: { type: 'string' },
  },
});
const clients = intOption(args.clients, 8, 'clients');
const conns = intOption(args.conns, 3, 'conns');
const total = intOption(args.total, 10_000, 'total');
const rates = (args.rates ?? '1000,0').split(',').map((r) => intOption(r.trim(), 0, 'rates'));
const allMixes: readonly EtcdBenchmarkMix[] = ['put', 'range', 'txn-put'];
const mixesFor = (rate: number): EtcdBenchmarkMix[] => {
  if (args.mixes === undefined) return rate === 0 ? ['put', 'range', 'txn-put'] : ['put', 'range'];
  return args.mixes.split(',').map((m) => {
    const mix = allMixes.find((known) => known === m.trim());
    if (!mix) throw new Error(`--mixes: unknown mix ${m} (known: ${allMixes.join(', ')})`);
    return mix;
  });
};

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ')).join('\n');
}

interface Row {
  mix: EtcdBenchmarkMix;
  rate: number;
  result: EtcdBenchmarkResult;
}

async function main(): Promise<void> {
  const binary = await buildEtcdBenchmark();
  const cluster = await LocalEtcdCluster.start({ size: 3 });
  const rows: Row[] = [];
  try {
    console.log(`etcd ${cluster.binaries.version}, 3 members: ${cluster.endpoints.join(' ')}`);
    for (const rate of rates) {
      for (const mix of mixesFor(rate)) {
        const result = await runEtcdBenchmark({ endpoints: cluster.endpoints, clients, conns, rate, total, mix, binary });
        console.log(`  ${mix} @ ${rate === 0 ? 'unlimited' : `${rate}/s`}: ${result.requestsPerSecond.toFixed(0)} req/s`);
        rows.push({ mix, rate, result });
      }
    }
  } finally {
    await cluster.close();
  }

  const header = ['mix', 'rate', 'clients', 'conns', 'requests', 'errors', 'seconds', 'req/s', 'p50 ms', 'p99 ms', 'cpu s', 'cpu ms/1k req'];
  const lines = rows.map(({ mix, rate, result: r }) => [
    mix === 'range' ? 'range (linearizable)' : mix,
    rate === 0 ? 'unlimited' : String(rate),
    String(clients),
    String(conns),
    String(r.requests),
    String(r.errors),
    r.seconds.toFixed(2),
    r.requestsPerSecond.toFixed(0),
    r.p50Ms.toFixed(2),
    r.p99Ms.toFixed(2),
    r.cpuSeconds.toFixed(2),
    ((r.cpuSeconds * 1e6) / r.requests).toFixed(0),
  ]);
  console.log(`\netcd's benchmark tool (${path.relative(process.cwd(), binary)}), 3-member local cluster\n`);
  console.log(table([header, ...lines]));

  mkdirSync(resultsDir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  for (const { mix, rate, result } of rows) {
    writeFileSync(path.join(resultsDir, `etcd-benchmark-${stamp}-${mix}-${rate === 0 ? 'unlimited' : rate}.txt`), result.output);
  }
  const file = path.join(resultsDir, `etcd-benchmark-${stamp}.json`);
  const json = rows.map(({ mix, rate, result: { output: _output, ...figures } }) => ({ mix, rate, clients, conns, total, ...figures }));
  writeFileSync(file, `${JSON.stringify(json, null, 2)}\n`);
  console.log(`\nresults: ${path.relative(process.cwd(), file)}`);
}

await main();
