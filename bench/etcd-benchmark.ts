/**
 * etcd's own load generator (`benchmark`, etcd's tools/benchmark) as the baseline for the probe
 * benchmark: the throughput and latency etcd's own Go client reaches at a given client count, and the
 * CPU time the tool spends to do it.
 *
 * bench/build-etcd-benchmark.sh builds the tool into bench/.bin/etcd-benchmark from
 * bench/etcd-benchmark/go.mod (etcd libraries at v3.6.16, the version the tests run).
 *
 * What the tool does (read from its source, worth knowing before comparing with it):
 * - `--clients N` goroutines share `--conns M` gRPC connections (client i uses connection i mod M);
 *   connection j dials endpoint j mod len(endpoints), so M >= the member count spreads the load.
 * - `--rate R` is one token bucket (burst 1) shared by all clients: R requests per second in total.
 * - Only successful requests enter the summary; failures are listed under "Error distribution".
 *   `requests` below counts the successes, `errors` the failures.
 * - Latencies are taken around each call (time.Now() before and after, in the tool's process).
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { Etcd3 } from 'etcd3';

const benchDir = path.dirname(new URL(import.meta.url).pathname);
export const etcdBenchmarkBuildScript = path.join(benchDir, 'build-etcd-benchmark.sh');
export const etcdBenchmarkBinary = path.join(benchDir, '.bin', 'etcd-benchmark');

export type EtcdBenchmarkMix = 'put' | 'range' | 'txn-put';

export interface EtcdBenchmarkOptions {
  /** Client URLs (http://127.0.0.1:2379) or host:port. */
  endpoints: string[];
  /** Concurrent request loops (the tool's --clients). */
  clients: number;
  /** gRPC connections the clients share (the tool's --conns). */
  conns: number;
  /** Requests per second over all clients together; 0 = unlimited. */
  rate: number;
  /** Requests to send. */
  total: number;
  /**
   * put: one key per request (--sequential-keys over a key space of `total` keys);
   * range: linearizable reads of one key (seeded first with a value of `valueSize` bytes);
   * txn-put: a txn with one put per request, keys sequential over a key space of `total` keys.
   */
  mix: EtcdBenchmarkMix;
  /** Bytes per key for put and txn-put (the tool's default: 8). */
  keySize?: number;
  /** Bytes per value (the tool's default: 8). */
  valueSize?: number;
  /** The key the range mix reads (default "etcd-benchmark/range"). */
  rangeKey?: string;
  /** Kill the tool after this long (default: 10 minutes). */
  timeoutMs?: number;
  /** Another build of the tool (default: bench/.bin/etcd-benchmark). */
  binary?: string;
}

/** A run of the tool: its summary's figures, and what it cost. */
export interface EtcdBenchmarkResult extends Omit<EtcdBenchmarkSummary, 'percentilesMs' | 'errorDistribution'> {
  /** CPU time (user + sys) of the tool's process, start to exit. */
  cpuSeconds: number;
  /** The command line that ran (binary and arguments). */
  command: string[];
  /** The tool's standard output, as printed. */
  output: string;
}

/** What parseEtcdBenchmarkOutput reads from the tool's summary. */
export interface EtcdBenchmarkSummary {
  /** Successful requests (the ones in the tool's summary). */
  requests: number;
  /** Failed requests (the tool's "Error distribution"); 0 on a clean run. */
  errors: number;
  /** The tool's "Total": from its first request to its last response. */
  seconds: number;
  /** The tool's "Requests/sec" (successful requests / seconds). */
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  /** Every latency percentile the tool printed, percent -> milliseconds. */
  percentilesMs: ReadonlyMap<number, number>;
  /** Error message -> count, from "Error distribution". */
  errorDistribution: ReadonlyMap<string, number>;
}

export class EtcdBenchmarkOutputError extends Error {
  override name = 'EtcdBenchmarkOutputError';
  readonly output: string;
  constructor(reason: string, output: string) {
    super(`cannot parse etcd benchmark output: ${reason}\n--- output (last lines) ---\n${tail(output, 25)}`);
    this.output = output;
  }
}

function tail(text: string, lines: number): string {
  const all = text.replace(/\s+$/, '').split('\n');
  const shown = all.slice(-lines).join('\n');
  return shown.length > 4000 ? `…${shown.slice(-4000)}` : shown || '(empty)';
}

const NUMBER = String.raw`[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?`;

/**
 * Parses the text `benchmark put|range|txn-put` prints on standard output (with or without
 * --precise): the "Summary" block, the response time histogram (whose counts add up to the
 * successful requests), the latency percentiles and the error distribution. Throws
 * EtcdBenchmarkOutputError, with the output's tail, when something is missing.
 */
export function parseEtcdBenchmarkOutput(output: string): EtcdBenchmarkSummary {
  const text = output.replaceAll('\r', '\n');
  const errorDistribution = new Map<string, number>();
  let errors = 0;
  const errorsAt = text.indexOf('\nError distribution:');
  if (errorsAt >= 0) {
    for (const line of text.slice(errorsAt).split('\n').slice(2)) {
      const m = /^\s+\[(\d+)\]\t(.*)$/.exec(line);
      if (!m) break;
      const count = Number(m[1]);
      errorDistribution.set(m[2]!, (errorDistribution.get(m[2]!) ?? 0) + count);
      errors += count;
    }
  }

  const summaryAt = text.indexOf('\nSummary:\n');
  if (summaryAt < 0) {
    throw new EtcdBenchmarkOutputError(errors > 0 ? `no "Summary:" block: all ${errors} requests failed` : 'no "Summary:" block', output);
  }
  const body = text.slice(summaryAt);
  const field = (label: string, unit: string): number => {
    const m = new RegExp(String.raw`^\s+${label}:\s+(${NUMBER})${unit}\s*$`, 'm').exec(body);
    if (!m) throw new EtcdBenchmarkOutputError(`no "${label}:" line in the summary`, output);
    const value = Number(m[1]);
    if (!Number.isFinite(value) || value < 0) throw new EtcdBenchmarkOutputError(`"${label}:" is not a non-negative number: ${m[1]}`, output);
    return value;
  };
  const seconds = field('Total', String.raw` secs\.`);
  const requestsPerSecond = field('Requests/sec', '');

  const histogramAt = body.indexOf('\nResponse time histogram:\n');
  if (histogramAt < 0) throw new EtcdBenchmarkOutputError('no "Response time histogram:" block', output);
  let requests = 0;
  let buckets = 0;
  for (const line of body.slice(histogramAt).split('\n').slice(2)) {
    const m = new RegExp(String.raw`^\s+${NUMBER} \[(\d+)\]\t\|`).exec(line);
    if (!m) break;
    requests += Number(m[1]);
    buckets++;
  }
  if (buckets === 0 || requests === 0) throw new EtcdBenchmarkOutputError('the response time histogram has no counted requests', output);

  const percentilesMs = new Map<number, number>();
  const latencyAt = body.indexOf('\nLatency distribution:\n');
  if (latencyAt < 0) throw new EtcdBenchmarkOutputError('no "Latency distribution:" block', output);
  for (const line of body.slice(latencyAt).split('\n').slice(2)) {
    const m = new RegExp(String.raw`^\s+(${NUMBER})% in (${NUMBER}) secs\.\s*$`).exec(line);
    if (!m) break;
    percentilesMs.set(Number(m[1]), Number(m[2]) * 1000);
  }
  const p50Ms = percentilesMs.get(50);
  const p99Ms = percentilesMs.get(99);
  if (p50Ms === undefined || p99Ms === undefined) {
    throw new EtcdBenchmarkOutputError('the latency distribution lacks the 50% or the 99% line', output);
  }
  return { requests, errors, seconds, requestsPerSecond, p50Ms, p99Ms, percentilesMs, errorDistribution };
}

/** Runs bench/build-etcd-benchmark.sh (a no-op when the binary is up to date); returns the binary. */
export async function buildEtcdBenchmark(): Promise<string> {
  const { code, stderr } = await run('bash', [etcdBenchmarkBuildScript], { inheritStderr: true });
  if (code !== 0) throw new Error(`bash ${path.relative(process.cwd(), etcdBenchmarkBuildScript)} failed (exit ${code})${stderr ? `: ${tail(stderr, 10)}` : ''}`);
  return etcdBenchmarkBinary;
}

function positiveInteger(value: number, name: string, allowZero = false): number {
  if (!Number.isSafeInteger(value) || value < (allowZero ? 0 : 1)) {
    throw new RangeError(`${name} must be a ${allowZero ? 'non-negative' : 'positive'} integer, got ${value}`);
  }
  return value;
}

/** The tool's arguments for these options. */
export function etcdBenchmarkArgs(options: EtcdBenchmarkOptions): string[] {
  if (options.endpoints.length === 0) throw new RangeError('endpoints must not be empty');
  const clients = positiveInteger(options.clients, 'clients');
  const conns = positiveInteger(options.conns, 'conns');
  const rate = positiveInteger(options.rate, 'rate', true);
  const total = positiveInteger(options.total, 'total');
  const keySize = positiveInteger(options.keySize ?? 8, 'keySize');
  const valueSize = positiveInteger(options.valueSize ?? 8, 'valueSize', true);
  // Sequential keys are varints of 0..total-1 written into keySize bytes: they must fit.
  if (options.mix !== 'range' && keySize < varintBytes(total - 1)) {
    throw new RangeError(`keySize ${keySize} is too small for ${total} distinct keys (needs ${varintBytes(total - 1)} bytes)`);
  }
  const global = [`--endpoints=${options.endpoints.join(',')}`, `--clients=${clients}`, `--conns=${conns}`, '--precise'];
  switch (options.mix) {
    case 'put':
      return [
        ...global,
        'put',
        `--rate=${rate}`,
        `--total=${total}`,
        `--key-size=${keySize}`,
        `--val-size=${valueSize}`,
        '--sequential-keys',
        `--key-space-size=${total}`,
      ];
    case 'range':
      return [...global, 'range', options.rangeKey ?? defaultRangeKey, '--consistency=l', `--rate=${rate}`, `--total=${total}`];
    case 'txn-put':
      return [...global, 'txn-put', `--rate=${rate}`, `--total=${total}`, `--key-size=${keySize}`, `--val-size=${valueSize}`, '--txn-ops=1', `--key-space-size=${total}`];
  }
}

const defaultRangeKey = 'etcd-benchmark/range';

/** Bytes of Go's binary.PutVarint (zig-zag) encoding of n >= 0. */
function varintBytes(n: number): number {
  let u = 2 * n;
  let bytes = 1;
  while (u >= 0x80) {
    u = Math.floor(u / 128);
    bytes++;
  }
  return bytes;
}

// `time` (the bash keyword) reports the user and sys time of the command it waited for, children
// included: the getrusage(RUSAGE_CHILDREN) figure that Node does not expose. The marker keeps the
// line apart from whatever the tool itself writes to standard error (a progress bar, gRPC logs).
const RUSAGE_MARKER = '__ETCD_BENCHMARK_RUSAGE__';
const TIMED_SCRIPT = `TIMEFORMAT=$'\\n${RUSAGE_MARKER} user=%3U sys=%3S real=%3R'; time "$@"`;

/** Parses the line TIMED_SCRIPT prints; undefined when it is missing. */
export function parseRusageLine(stderr: string): { user: number; sys: number; real: number } | undefined {
  const matches = [...stderr.matchAll(new RegExp(String.raw`${RUSAGE_MARKER} user=(\d+\.\d+) sys=(\d+\.\d+) real=(\d+\.\d+)`, 'g'))];
  const last = matches.at(-1);
  if (!last) return undefined;
  return { user: Number(last[1]), sys: Number(last[2]), real: Number(last[3]) };
}

/**
 * Runs etcd's benchmark tool against the endpoints and returns what it measured, plus its CPU time.
 * Throws when the binary is missing (build it with bench/build-etcd-benchmark.sh), when the tool
 * exits non-zero or times out, or when its output cannot be parsed.
 */
export async function runEtcdBenchmark(options: EtcdBenchmarkOptions): Promise<EtcdBenchmarkResult> {
  const binary = options.binary ?? etcdBenchmarkBinary;
  if (!existsSync(binary)) {
    throw new Error(`etcd's benchmark tool not found at ${binary}: build it with \`bash bench/build-etcd-benchmark.sh\` (needs Go)`);
  }
  const args = etcdBenchmarkArgs(options);
  if (options.mix === 'range') await seedRangeKey(options.endpoints, options.rangeKey ?? defaultRangeKey, options.valueSize ?? 8);

  const timeoutMs = options.timeoutMs ?? 600_000;
  const { code, signal, stdout, stderr, timedOut } = await run('bash', ['-c', TIMED_SCRIPT, 'etcd-benchmark', binary, ...args], { timeoutMs });
  const command = [binary, ...args];
  if (timedOut) throw new Error(`${command.join(' ')} did not finish within ${timeoutMs} ms and was killed\n--- stderr (last lines) ---\n${tail(stripRusage(stderr), 15)}`);
  if (code !== 0) {
    throw new Error(
      `${command.join(' ')} failed (${signal ? `signal ${signal}` : `exit ${code}`})\n--- stderr (last lines) ---\n${tail(stripRusage(stderr), 15)}\n--- stdout (last lines) ---\n${tail(stdout, 10)}`,
    );
  }
  const summary = parseEtcdBenchmarkOutput(stdout);
  const rusage = parseRusageLine(stderr);
  if (!rusage) throw new Error(`no CPU time reported for ${command.join(' ')} (bash's \`time\` line is missing)\n--- stderr (last lines) ---\n${tail(stderr, 15)}`);
  return {
    requests: summary.requests,
    errors: summary.errors,
    seconds: summary.seconds,
    requestsPerSecond: summary.requestsPerSecond,
    p50Ms: summary.p50Ms,
    p99Ms: summary.p99Ms,
    cpuSeconds: rusage.user + rusage.sys,
    command,
    output: stdout,
  };
}

function stripRusage(stderr: string): string {
  return stderr.replace(new RegExp(String.raw`\n?${RUSAGE_MARKER}.*\n?`, 'g'), '\n');
}

/** Writes the key the range mix reads, so that each read returns a value of `valueSize` bytes. */
async function seedRangeKey(endpoints: string[], key: string, valueSize: number): Promise<void> {
  const hosts = endpoints.map((e) => (/^\w+:\/\//.test(e) ? e : `http://${e}`));
  const client = new Etcd3({ hosts, dialTimeout: 5000 });
  try {
    await client.put(key).value('v'.repeat(valueSize)).exec();
  } finally {
    client.close();
  }
}

interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

const MAX_STDERR = 256 * 1024;

/** Runs a command in a process group of its own, killed whole on timeout. */
function run(file: string, args: string[], opts: { timeoutMs?: number; inheritStderr?: boolean }): Promise<RunResult> {
  // etcd programs read ETCD_* variables as flags: never let the caller's environment configure them.
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('ETCD')));
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      if (opts.inheritStderr) process.stderr.write(chunk);
      stderr += chunk;
      // The tool's progress bar writes to stderr all along: keep only the end.
      if (stderr.length > 2 * MAX_STDERR) stderr = stderr.slice(-MAX_STDERR);
    });
    const timer =
      opts.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            timedOut = true;
            killGroup(child.pid);
          }, opts.timeoutMs);
    // If this process exits first (process.exit, an uncaught error), take the tool down with it.
    const onSignal = (): void => killGroup(child.pid);
    process.once('exit', onSignal);
    child.on('error', (error) => {
      clearTimeout(timer);
      process.off('exit', onSignal);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      process.off('exit', onSignal);
      resolve({ code, signal, stdout, stderr, timedOut });
    });
  });
}

function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // already gone
  }
}
