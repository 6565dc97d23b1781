/**
 * The probe benchmark: recorded and live-checked traffic against a real local 3-member cluster, next to
 * etcd's own `benchmark` tool at the same client count.
 *
 *   node bench/probes.ts                       # 3 repetitions of 20 s per configuration
 *   node bench/probes.ts --reps 1 --duration 10s --only mix-1000
 *
 * Configurations (8 clients: 2 pinned to each member + 2 spread, one watch per member):
 * - mix-1000: the etcd profile's full mix at a target of 1,000 ops/s (the target: checker lag
 *   p99 under 2 s), with CPU per operation of the probe process;
 * - put-1000 / put-max: puts only, at 1,000 ops/s and unlimited; get-max: linearizable gets, unlimited;
 *   put-max-nowatch: put-max without the watch probes.
 * etcd's tool runs put at 1,000/s, put unlimited and range unlimited with --clients 8 --conns 8 (one
 * connection per client, as our clients have); the same Node etcd3 clients with nothing recorded run each
 * put/get configuration too, which separates the cost of recording and checking from the cost of the
 * Node gRPC client itself. Medians over the repetitions; every run must stay
 * linearizable or the benchmark fails. Results go to bench/.results/probes-<date>.json.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { parseDuration } from '../src/duration.ts';
import { LocalEtcdCluster } from '../src/local/index.ts';
import { executeRun, type RunProgress } from '../src/run/engine.ts';
import { defaultRobustnessRun } from '../src/run/manifest.ts';
import { Registry, RunMetrics } from '../src/run/metrics.ts';
import { RateLimiter } from '../src/probes/rate-limiter.ts';
import { recordingEtcdClient } from '../src/probes/recording-client.ts';
import { buildEtcdBenchmark, runEtcdBenchmark, type EtcdBenchmarkMix } from './etcd-benchmark.ts';

const benchDir = path.dirname(new URL(import.meta.url).pathname);
const { values: args } = parseArgs({
  options: {
    reps: { type: 'string', default: '3' },
    duration: { type: 'string', default: '20s' },
    only: { type: 'string' },
    'skip-etcd-benchmark': { type: 'boolean', default: false },
    // The probe alone (e.g. to profile it with --cpu-prof): no raw etcd3 client run.
    'skip-raw': { type: 'boolean', default: false },
  },
});
const reps = Number(args.reps);
const durationMs = parseDuration(args.duration);

const noReads = { get: 0, staleGet: 0, list: 0, keysOnlyList: 0, staleList: 0, delete: 0, multiOpTxn: 0, compareAndSet: 0, putWithLease: 0, leaseRevoke: 0 };
const probeConfigs: Record<string, { target: number; weights: Record<string, number>; watch?: boolean }> = {
  'mix-1000': { target: 1000, weights: {} },
  'put-1000': { target: 1000, weights: { ...noReads, put: 1 } },
  'put-max': { target: 1_000_000, weights: { ...noReads, put: 1 } },
  'get-max': { target: 1_000_000, weights: { ...noReads, put: 0, get: 1 } },
  // What the three watch probes cost on write-heavy traffic (every put arrives as three events).
  'put-max-nowatch': { target: 1_000_000, weights: { ...noReads, put: 1 }, watch: false },
};
const baselineConfigs: Record<string, { rate: number; mix: EtcdBenchmarkMix }> = {
  'put-1000': { rate: 1000, mix: 'put' },
  'put-max': { rate: 0, mix: 'put' },
  'get-max': { rate: 0, mix: 'range' },
};

interface RawSample {
  achievedQps: number;
  cpuMsPerKiloOp: number;
  mainThreadCpuMsPerKiloOp: number;
  /** V8's helper threads (GC, compilers) and libuv's (Linux only: NaN elsewhere). */
  helperThreadsCpuMsPerKiloOp: number;
}

/** Linux's USER_HZ: /proc/<pid>/task/<tid>/stat counts CPU time in these ticks on every mainstream architecture. */
const procTicksPerSecond = 100;

/**
 * CPU time (µs) of this process's threads by kind, from /proc (Linux): the live checker's worker thread
 * ('live-checker', its Worker name), the main thread, and the rest (V8's GC and compiler threads, libuv's
 * pool). Where /proc is missing, undefined: the figures become NaN. Tick resolution (10 ms) is fine for
 * seconds of traffic.
 */
function threadCpuUs(): { checker: number; helpers: number } | undefined {
  let tasks: string[];
  try {
    tasks = readdirSync('/proc/self/task');
  } catch {
    return undefined;
  }
  const mainTid = String(process.pid);
  let checker = 0;
  let helpers = 0;
  for (const tid of tasks) {
    let stat: string;
    let name: string;
    try {
      stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      name = readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim();
    } catch {
      continue; // the thread ended meanwhile
    }
    // Fields after the command name (which may hold spaces, inside parentheses): utime and stime are the 12th and 13th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const us = ((Number(fields[11]) + Number(fields[12])) * 1e6) / procTicksPerSecond;
    if (tid === mainTid) continue;
    if (name === 'live-checker') checker += us;
    else helpers += us;
  }
  return { checker, helpers };
}

/**
 * The same Node etcd3 clients (8, pinned and spread the same way) sending the same puts or gets through
 * the same rate limiter, with nothing recorded or checked: what the probe costs over the raw client.
 * With `watch`, also one etcd3 watch per member on the keys written (previous values included, events
 * dropped): the cluster and the client then carry the watch traffic the probe's watch probes carry.
 */
async function rawRun(cluster: LocalEtcdCluster, config: { target: number; weights: Record<string, number> }, watch = false): Promise<RawSample> {
  const hosts = [...cluster.members.flatMap((m) => [[m.endpoint], [m.endpoint]]), cluster.endpoints, cluster.endpoints];
  const clients = hosts.map((h) => recordingEtcdClient(h));
  const watchClients = watch ? cluster.members.map((m) => recordingEtcdClient([m.endpoint])) : [];
  let watchEvents = 0;
  const watchers = await Promise.all(watchClients.map((etcd) => etcd.watch().prefix('/bench/raw/').withPreviousKV().create()));
  for (const w of watchers) w.on('data', (response) => (watchEvents += response.events.length));
  const limiter = new RateLimiter({ target: config.target, burst: Math.min(config.target, 1000) });
  const puts = (config.weights['put'] ?? 0) > 0;
  let ops = 0;
  let stopped = false;
  let counter = 0;
  const loops = clients.map(async (etcd, i) => {
    while (!stopped) {
      await limiter.acquire();
      const key = Buffer.from(`/bench/raw/key${(counter++ % 10)}`);
      const deadline = Date.now() + 2000;
      if (puts) await etcd.kv.put({ key, value: Buffer.from(`v${i}-${counter}`.padEnd(32, 'x')) }, { deadline });
      else await etcd.kv.range({ key }, { deadline });
      ops++;
    }
  });
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const cpu0 = process.cpuUsage();
  const main0 = process.threadCpuUsage();
  const threads0 = threadCpuUs();
  const ops0 = ops;
  const t0 = performance.now();
  await new Promise((resolve) => setTimeout(resolve, durationMs - 1000));
  const cpu1 = process.cpuUsage();
  const main1 = process.threadCpuUsage();
  const threads1 = threadCpuUs();
  const done = ops - ops0;
  const seconds = (performance.now() - t0) / 1000;
  stopped = true;
  limiter.close();
  await Promise.all(loops);
  await Promise.all(watchers.map((w) => w.cancel()));
  for (const c of [...clients, ...watchClients]) c.close();
  if (watch && watchEvents === 0) throw new Error('raw etcd3 with watches: the watches received no event');
  const cpuUs = cpu1.user + cpu1.system - (cpu0.user + cpu0.system);
  const mainUs = main1.user + main1.system - (main0.user + main0.system);
  const helpersUs = threads0 && threads1 ? threads1.helpers - threads0.helpers : NaN;
  return {
    achievedQps: done / seconds,
    cpuMsPerKiloOp: cpuUs / 1000 / (done / 1000),
    mainThreadCpuMsPerKiloOp: mainUs / 1000 / (done / 1000),
    helperThreadsCpuMsPerKiloOp: helpersUs / 1000 / (done / 1000),
  };
}

interface ProbeSample {
  achievedQps: number;
  cpuMsPerKiloOp: number;
  /** The same, of the main thread alone: the rest is the live checker's thread and V8's helper threads (GC). */
  mainThreadCpuMsPerKiloOp: number;
  /** The live checker's worker thread, and the other threads (V8's GC and compilers, libuv): NaN off Linux. */
  checkerThreadCpuMsPerKiloOp: number;
  helperThreadsCpuMsPerKiloOp: number;
  lagP99MaxMs: number;
  lagP99FinalMs: number;
  rssMaxMb: number;
  operations: number;
  unknown: number;
  verdict: string;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

async function probeRun(cluster: LocalEtcdCluster, name: string, config: { target: number; weights: Record<string, number>; watch?: boolean }, workDir: string): Promise<ProbeSample> {
  const run = defaultRobustnessRun({ name, defaultMode: 'exclusive' });
  run.spec.durationMs = durationMs;
  run.spec.traffic.qps = { target: config.target, burst: Math.min(config.target, 1000), min: 0 };
  run.spec.traffic.weights = config.weights;
  run.spec.traffic.clients = { perMember: 2, spread: 2 };
  run.spec.traffic.requestTimeoutMs = 2000;
  run.spec.watch.enabled = config.watch ?? true;
  // Samples during traffic only: CPU and operations at each progress tick.
  const samples: { at: number; cpuUs: number; mainUs: number; checkerUs: number; helpersUs: number; ops: number; progress: RunProgress }[] = [];
  let rssMax = 0;
  const result = await executeRun({
    run,
    clusterName: 'bench',
    members: cluster.members.map((m) => ({ name: m.name, endpoint: m.endpoint, running: true })),
    historyDir: path.join(workDir, `${name}-${Date.now()}`, 'history'),
    metrics: new RunMetrics(new Registry(), { run: name, cluster: 'bench' }),
    progressIntervalMs: 1000,
    // Long benchmark runs stream to disk; the offline re-check is not what is measured here.
    keepOperations: 0,
    onProgress: (progress) => {
      const cpu = process.cpuUsage();
      const main = process.threadCpuUsage();
      const threads = threadCpuUs();
      rssMax = Math.max(rssMax, process.memoryUsage.rss());
      samples.push({
        at: progress.elapsedMs,
        cpuUs: cpu.user + cpu.system,
        mainUs: main.user + main.system,
        checkerUs: threads?.checker ?? NaN,
        helpersUs: threads?.helpers ?? NaN,
        ops: progress.operations,
        progress,
      });
    },
  });
  if (result.verdict !== 'linearizable') throw new Error(`${name}: verdict ${result.verdict}: ${result.reason ?? ''}`);
  // Skip the first second (start-up) and anything after the traffic stopped.
  const traffic = samples.filter((s) => s.at > 1000 && s.at <= durationMs + 500);
  const first = traffic[0]!;
  const last = traffic[traffic.length - 1]!;
  const ops = last.ops - first.ops;
  return {
    achievedQps: ops / ((last.at - first.at) / 1000),
    cpuMsPerKiloOp: (last.cpuUs - first.cpuUs) / 1000 / (ops / 1000),
    mainThreadCpuMsPerKiloOp: (last.mainUs - first.mainUs) / 1000 / (ops / 1000),
    checkerThreadCpuMsPerKiloOp: (last.checkerUs - first.checkerUs) / 1000 / (ops / 1000),
    helperThreadsCpuMsPerKiloOp: (last.helpersUs - first.helpersUs) / 1000 / (ops / 1000),
    lagP99MaxMs: Math.max(...traffic.map((s) => s.progress.lagP99Ms)),
    lagP99FinalMs: result.live.lagP99Ms,
    rssMaxMb: rssMax / 2 ** 20,
    operations: result.operations.ok + result.operations.failed + result.operations.unknown,
    unknown: result.operations.unknown,
    verdict: result.verdict,
  };
}

async function main(): Promise<void> {
  const started = new Date();
  const selected = Object.keys(probeConfigs).filter((n) => args.only === undefined || args.only.split(',').includes(n));
  if (!args['skip-etcd-benchmark']) await buildEtcdBenchmark();
  const workDir = mkdtempSync(path.join(os.tmpdir(), 'bench-probes-'));
  const probe: Record<string, ProbeSample[]> = {};
  const baseline: Record<string, { requestsPerSecond: number; cpuMsPerKiloOp: number; p99Ms: number }[]> = {};
  const raw: Record<string, RawSample[]> = {};
  const rawWatch: Record<string, RawSample[]> = {};
  const cluster = await LocalEtcdCluster.start({ size: 3 });
  try {
    for (let rep = 0; rep < reps; rep++) {
      for (const name of selected) {
        const sample = await probeRun(cluster, name, probeConfigs[name]!, workDir);
        (probe[name] ??= []).push(sample);
        console.log(`probe ${name} rep ${rep + 1}: ${sample.achievedQps.toFixed(0)} ops/s, ${sample.cpuMsPerKiloOp.toFixed(0)} ms CPU per 1k ops (main thread ${sample.mainThreadCpuMsPerKiloOp.toFixed(0)}, checker thread ${sample.checkerThreadCpuMsPerKiloOp.toFixed(0)}, GC and other threads ${sample.helperThreadsCpuMsPerKiloOp.toFixed(0)}), lag p99 max ${sample.lagP99MaxMs.toFixed(1)} ms, RSS ${sample.rssMaxMb.toFixed(0)} MB`);
        if (!args['skip-raw'] && (name === 'put-1000' || name === 'put-max' || name === 'get-max')) {
          const r = await rawRun(cluster, probeConfigs[name]!);
          (raw[name] ??= []).push(r);
          console.log(`raw etcd3 ${name} rep ${rep + 1}: ${r.achievedQps.toFixed(0)} ops/s, ${r.cpuMsPerKiloOp.toFixed(0)} ms CPU per 1k ops (main thread ${r.mainThreadCpuMsPerKiloOp.toFixed(0)}, other threads ${r.helperThreadsCpuMsPerKiloOp.toFixed(0)})`);
        }
        if (!args['skip-raw'] && name === 'put-max') {
          const r = await rawRun(cluster, probeConfigs[name]!, true);
          (rawWatch[name] ??= []).push(r);
          console.log(`raw etcd3 + watches ${name} rep ${rep + 1}: ${r.achievedQps.toFixed(0)} ops/s, ${r.cpuMsPerKiloOp.toFixed(0)} ms CPU per 1k ops (main thread ${r.mainThreadCpuMsPerKiloOp.toFixed(0)}, other threads ${r.helperThreadsCpuMsPerKiloOp.toFixed(0)})`);
        }
        const base = baselineConfigs[name];
        if (base && !args['skip-etcd-benchmark']) {
          const total = Math.round((base.rate > 0 ? base.rate : 3000) * (durationMs / 1000));
          const r = await runEtcdBenchmark({ endpoints: cluster.endpoints, clients: 8, conns: 8, rate: base.rate, total, mix: base.mix, valueSize: 32 });
          (baseline[name] ??= []).push({ requestsPerSecond: r.requestsPerSecond, cpuMsPerKiloOp: (r.cpuSeconds * 1e6) / r.requests, p99Ms: r.p99Ms });
          console.log(`etcd benchmark ${name} rep ${rep + 1}: ${r.requestsPerSecond.toFixed(0)} req/s, ${((r.cpuSeconds * 1e6) / r.requests).toFixed(0)} ms CPU per 1k req`);
        }
      }
    }
  } finally {
    await cluster.close();
    rmSync(workDir, { recursive: true, force: true });
  }

  const rows: Record<string, unknown>[] = [];
  for (const name of selected) {
    const s = probe[name]!;
    const b = baseline[name];
    const row: Record<string, unknown> = {
      config: name,
      'ops/s': Math.round(median(s.map((x) => x.achievedQps))),
      'CPU ms/1k ops': Math.round(median(s.map((x) => x.cpuMsPerKiloOp))),
      'main thread CPU ms/1k': Math.round(median(s.map((x) => x.mainThreadCpuMsPerKiloOp))),
      'checker thread CPU ms/1k': Math.round(median(s.map((x) => x.checkerThreadCpuMsPerKiloOp))),
      'GC+other threads CPU ms/1k': Math.round(median(s.map((x) => x.helperThreadsCpuMsPerKiloOp))),
      'lag p99 max ms': Number(median(s.map((x) => x.lagP99MaxMs)).toFixed(1)),
      'RSS max MB': Math.round(median(s.map((x) => x.rssMaxMb))),
    };
    const r = raw[name];
    if (r) {
      row['raw etcd3 ops/s'] = Math.round(median(r.map((x) => x.achievedQps)));
      row['raw etcd3 CPU ms/1k'] = Math.round(median(r.map((x) => x.cpuMsPerKiloOp)));
      row['raw etcd3 main thread CPU ms/1k'] = Math.round(median(r.map((x) => x.mainThreadCpuMsPerKiloOp)));
      row['raw etcd3 GC+other threads CPU ms/1k'] = Math.round(median(r.map((x) => x.helperThreadsCpuMsPerKiloOp)));
      row['vs raw: throughput'] = Number((median(s.map((x) => x.achievedQps)) / median(r.map((x) => x.achievedQps))).toFixed(2));
      row['vs raw: CPU'] = Number((median(s.map((x) => x.cpuMsPerKiloOp)) / median(r.map((x) => x.cpuMsPerKiloOp))).toFixed(2));
    }
    const rw = rawWatch[name];
    if (rw) {
      row['raw+watch ops/s'] = Math.round(median(rw.map((x) => x.achievedQps)));
      row['raw+watch CPU ms/1k'] = Math.round(median(rw.map((x) => x.cpuMsPerKiloOp)));
      row['vs raw+watch: throughput'] = Number((median(s.map((x) => x.achievedQps)) / median(rw.map((x) => x.achievedQps))).toFixed(2));
      row['vs raw+watch: CPU'] = Number((median(s.map((x) => x.cpuMsPerKiloOp)) / median(rw.map((x) => x.cpuMsPerKiloOp))).toFixed(2));
    }
    if (b) {
      const rps = median(b.map((x) => x.requestsPerSecond));
      const cpu = median(b.map((x) => x.cpuMsPerKiloOp));
      row['etcd bench req/s'] = Math.round(rps);
      row['etcd bench CPU ms/1k'] = Math.round(cpu);
      row['vs etcd bench: throughput'] = Number((median(s.map((x) => x.achievedQps)) / rps).toFixed(2));
      row['vs etcd bench: CPU'] = Number((median(s.map((x) => x.cpuMsPerKiloOp)) / cpu).toFixed(2));
    }
    rows.push(row);
  }
  console.table(rows);
  const resultsDir = path.join(benchDir, '.results');
  mkdirSync(resultsDir, { recursive: true });
  const out = path.join(resultsDir, `probes-${started.toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(out, `${JSON.stringify({ started: started.toISOString(), durationMs, reps, cpus: os.cpus().length, rows, probe, raw, rawWatch, baseline }, null, 2)}\n`);
  console.log(`results: ${out}`);
}

await main();
