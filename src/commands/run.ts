/**
 * `etcd-robustness run --local [FILE]`: starts a local etcd cluster, runs a RobustnessRun against it
 * (FILE, or the built-in default run), serves /metrics, shows progress, stops cleanly on Ctrl-C and
 * writes a report directory. Exit codes as for `check`: 0 passed (src/run/outcome.ts: linearizable, and
 * nothing kept that verdict from standing), 1 violation, 2 inconclusive or stopped early, 64 usage or
 * manifest error (a fault aimed at a member the cluster does not have included).
 */
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseDuration } from '../duration.ts';
import { etcdFlagProblem, LocalMemberRuntime, reclaimScratch } from '../local/index.ts';
import { etcdBinariesAt, etcdReleaseBinaries } from '../local/release-binaries.ts';
import { logger } from '../log.ts';
import { executeRun } from '../run/engine.ts';
import { checkRunMembers, defaultRobustnessRun, ManifestError, parseRobustnessRun } from '../run/manifest.ts';
import { outcomeOfResult, type RunOutcome } from '../run/outcome.ts';
import { MetricsServer } from '../run/metrics-server.ts';
import { Registry, RunMetrics } from '../run/metrics.ts';
import { formatProgress } from '../run/progress.ts';
import { describeRecovery, writeRunReport } from '../run/report.ts';
import type { RobustnessRun } from '../domain/index.ts';
import { exitCodes } from './check.ts';
import { parseCommandArgs } from './parse-command-args.ts';
import { UsageError } from './usage.ts';

export const runUsage = `Usage: etcd-robustness run --local [FILE] [options]

Starts a local etcd cluster (real processes on 127.0.0.1), drives the traffic of the RobustnessRun in
FILE (or the built-in default: the etcd profile for 60s with seeded faults, two at a time), checks
every operation live, and writes a report directory (history, verdict.json, report.html).

Options:
  --local                 Run against a local cluster this command starts (the only target for now).
  --members N             Members of the local cluster: 1, 3 or 5 (default 3).
  --etcd VERSION|DIR      The etcd to run: a release built by test/bin/build-release.sh (e.g. v3.5.4)
                          or a folder holding etcd, etcdctl and etcdutl (default: the pinned v3.6).
  --duration DURATION     Override spec.duration (e.g. 30s).
  --seed N                Override spec.seed (traffic and fault plan are drawn from it).
  --qps N                 Override spec.traffic.qps.target (operations per second over all clients).
  --report DIR            Report directory (default ./etcd-robustness-reports/<run>-<time>).
  --metrics-port PORT     Serve /metrics on this port (default 0: a free port, printed).
  --metrics-address ADDR  Address to serve /metrics on (default 127.0.0.1).
  --progress-interval D   Progress line interval (default 1s on a terminal, 5s otherwise).
  --etcd-flag=--NAME=VALUE
                          An extra flag for every etcd member (repeatable), written with "=" after
                          --etcd-flag, e.g. --etcd-flag=--snapshot-count=10. It replaces a flag of the
                          same name the local runtime sets; the members' names, data folders, URLs and
                          cluster stay the runtime's. An etcd that does not know the flag refuses to start.

Exit code: 0 passed (linearizable, the faults applied, the traffic at its minimum, not stopped early),
1 violation, 2 inconclusive or stopped early (Ctrl-C), 64 usage or manifest error.
`;

/** The exit code of a run's outcome: 0 only when it passed. */
export function exitCodeOf(outcome: RunOutcome): number {
  if (outcome.phase === 'Passed') return exitCodes.ok;
  return outcome.phase === 'Failed' ? exitCodes.violation : exitCodes.inconclusive;
}

interface RunArgs {
  file: string | undefined;
  seed: number | undefined;
  etcd: string | undefined;
  members: number;
  durationMs: number | undefined;
  qps: number | undefined;
  reportDir: string | undefined;
  metricsPort: number;
  metricsAddress: string;
  progressIntervalMs: number;
  etcdFlags: string[];
}

function parseRunArgs(argv: string[]): RunArgs | 'help' {
  const { values, positionals } = parseCommandArgs('run', argv, {
    local: { type: 'boolean', default: false },
    members: { type: 'string', default: '3' },
    etcd: { type: 'string' },
    duration: { type: 'string' },
    seed: { type: 'string' },
    qps: { type: 'string' },
    report: { type: 'string' },
    'metrics-port': { type: 'string', default: '0' },
    'metrics-address': { type: 'string', default: '127.0.0.1' },
    'progress-interval': { type: 'string' },
    'etcd-flag': { type: 'string', multiple: true },
    help: { type: 'boolean', short: 'h', default: false },
  });
  if (values.help) return 'help';
  if (!values.local) throw new UsageError('run: only --local is available in this version (try `etcd-robustness run --local`)');
  if (positionals.length > 1) throw new UsageError(`run: at most one manifest file, got ${positionals.length}`);
  const members = Number(values.members);
  if (![1, 3, 5].includes(members)) throw new UsageError(`run: --members must be 1, 3 or 5, got "${values.members}"`);
  const port = Number(values['metrics-port']);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`run: --metrics-port must be a port number, got "${values['metrics-port']}"`);
  const etcdFlags = values['etcd-flag'] ?? [];
  for (const flag of etcdFlags) {
    const problem = etcdFlagProblem(flag);
    if (problem !== undefined) throw new UsageError(`run: --etcd-flag: ${problem}`);
  }
  const duration = (flag: string, text: string): number => {
    try {
      const ms = parseDuration(text);
      if (ms <= 0) throw new Error('must be positive');
      return ms;
    } catch (error) {
      throw new UsageError(`run: ${flag}: ${(error as Error).message}`);
    }
  };
  return {
    file: positionals[0],
    seed: values.seed === undefined ? undefined : parseSeed(values.seed),
    etcd: values.etcd,
    members,
    durationMs: values.duration === undefined ? undefined : duration('--duration', values.duration),
    qps: values.qps === undefined ? undefined : parseQps(values.qps),
    reportDir: values.report,
    metricsPort: port,
    metricsAddress: values['metrics-address'],
    progressIntervalMs: values['progress-interval'] === undefined ? (process.stderr.isTTY ? 1000 : 5000) : duration('--progress-interval', values['progress-interval']),
    etcdFlags,
  };
}

function parseQps(text: string): number {
  const qps = Number(text);
  if (!Number.isInteger(qps) || qps < 1 || qps > 100_000) throw new UsageError(`run: --qps must be an integer from 1 to 100000, got "${text}"`);
  return qps;
}

function parseSeed(text: string): number {
  const seed = Number(text);
  if (!Number.isInteger(seed) || seed < 0 || seed >= 2 ** 31) throw new UsageError(`run: --seed must be an integer from 0 to 2^31-1, got "${text}"`);
  return seed;
}

function loadRun(args: RunArgs): RobustnessRun {
  if (args.file === undefined) return defaultRobustnessRun({ name: 'local', defaultMode: 'exclusive' });
  let text: string;
  try {
    text = readFileSync(args.file, 'utf8');
  } catch (error) {
    throw new UsageError(`run: cannot read ${args.file}: ${(error as Error).message}`);
  }
  return parseRobustnessRun(text, { file: args.file, defaultMode: 'exclusive' });
}

export async function runLocal(argv: string[], out: (line: string) => void): Promise<number> {
  const args = parseRunArgs(argv);
  if (args === 'help') {
    out(runUsage);
    return exitCodes.ok;
  }
  const run = loadRun(args);
  if (args.seed !== undefined) run.spec.seed = args.seed;
  if (args.qps !== undefined) {
    // A burst left at its default (the target) follows the new target.
    if (run.spec.traffic.qps.burst === run.spec.traffic.qps.target) run.spec.traffic.qps.burst = args.qps;
    run.spec.traffic.qps.target = args.qps;
    // The minimum stays what the manifest asked for, but never above the new target.
    run.spec.traffic.qps.min = Math.min(run.spec.traffic.qps.min, args.qps);
  }
  if (args.durationMs !== undefined) {
    const extra = run.spec.timeoutMs - run.spec.durationMs;
    run.spec.durationMs = args.durationMs;
    run.spec.timeoutMs = args.durationMs + extra;
  }
  // What killed runs (and dev, operators) left in the scratch folders: the members' data is ours to remove.
  reclaimScratch();
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const reportDir = path.resolve(args.reportDir ?? path.join('etcd-robustness-reports', `${run.metadata.name}-${stamp}`));
  const historyDir = path.join(reportDir, 'history');
  mkdirSync(reportDir, { recursive: true });

  // Fault agents (with peer proxies) beside each member when the run injects faults.
  const withFaults = run.spec.faults !== undefined && run.spec.faults.choices.length > 0;
  const binaries = args.etcd === undefined ? undefined : /^v\d/.test(args.etcd) ? etcdReleaseBinaries(args.etcd) : etcdBinariesAt(args.etcd);
  const runtime = new LocalMemberRuntime({
    size: args.members,
    failpoints: true,
    ...(withFaults ? { agents: {} } : {}),
    ...(binaries ? { binaries } : {}),
    ...(args.etcdFlags.length > 0 ? { etcdFlags: args.etcdFlags } : {}),
  });
  const registry = new Registry();
  const abort = new AbortController();
  let interrupts = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    interrupts++;
    if (interrupts > 1) {
      // A second Ctrl-C: give up on the clean stop (the members die with this process).
      process.stderr.write(`\netcd-robustness: ${signal} again, exiting now\n`);
      process.exit(130);
    }
    process.stderr.write(`\netcd-robustness: ${signal}: stopping the run, checking what was recorded and writing the report (again to exit now)\n`);
    abort.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let server: MetricsServer | undefined;
  try {
    server = await MetricsServer.start(registry, { host: args.metricsAddress, port: args.metricsPort });
    out(`metrics: ${server.url}`);
    await runtime.create();
    // Before any traffic: a fault aimed at a member this cluster does not have is a manifest error.
    checkRunMembers(run, runtime.members().map((m) => m.name), args.file);
    out(`cluster: ${runtime.clusterName}, etcd ${runtime.etcdVersion}, members ${runtime.members().map((m) => `${m.name}=${m.endpoint}`).join(' ')}`);
    if (args.etcdFlags.length > 0) out(`etcd flags: ${args.etcdFlags.join(' ')}`);
    const faults = run.spec.faults ? `faults ${run.spec.faults.choices.map((c) => c.fault).join(',')} (up to ${run.spec.faults.maxConcurrentFaults} at once)` : 'no faults';
    out(`run: ${run.metadata.name}, profile ${run.spec.traffic.profile}, ${run.spec.durationMs / 1000}s at ${run.spec.traffic.qps.target} QPS, ${faults}, seed ${run.spec.seed}, report ${reportDir}`);
    const tty = process.stderr.isTTY;
    const result = await executeRun({
      run,
      clusterName: runtime.clusterName,
      members: runtime.members(),
      historyDir,
      metrics: new RunMetrics(registry, { run: run.metadata.name, cluster: runtime.clusterName }),
      runtime,
      ...(runtime.agentToken === undefined ? {} : { agentToken: runtime.agentToken }),
      signal: abort.signal,
      progressIntervalMs: args.progressIntervalMs,
      onProgress: (p) => {
        const line = formatProgress(p);
        process.stderr.write(tty ? `\r\u001b[2K${line}` : `${line}\n`);
      },
    });
    if (tty) process.stderr.write('\n');
    const outcome = outcomeOfResult(result, run.spec, abort.signal.aborted ? { reason: 'Stopped', message: 'stopped by the user before the end of its duration' } : undefined);
    const summary = writeRunReport(reportDir, run, runtime.clusterName, result, historyDir, outcome);
    const ops = result.operations;
    out(`verdict: ${summary.verdict}${summary.reason ? ` (${summary.reason})` : ''}`);
    out(`outcome: ${outcome.phase}${outcome.phase === 'Passed' ? '' : ` (${outcome.reason}: ${outcome.message})`}`);
    out(`operations: ${ops.ok + ops.failed + ops.unknown} (ok ${ops.ok}, failed ${ops.failed}, unknown ${ops.unknown}), ${summary.qps.achieved} ops/s; watch events ${result.watch.events}`);
    if (result.faults.planned > 0 || result.faults.skipped) {
      out(`faults: ${result.faults.injected} injected, ${result.faults.failed} failed of ${result.faults.planned} planned${result.faults.skipped ? ` (skipped: ${result.faults.skipped})` : ''}`);
      if (result.faults.recovery) out(`fault to writable: ${describeRecovery(result.faults.recovery.summary)}`);
    }
    if (result.hashKv) out(`hashKV: ${result.hashKv.equal ? 'members agree' : result.hashKv.compared ? 'MEMBERS DIFFER' : 'not compared'} (${result.hashKv.detail})`);
    if (summary.qps.belowMinIntervals > 0) out(`warning: below the minimum of ${summary.qps.min} QPS in ${summary.qps.belowMinIntervals} intervals`);
    out(`report: ${reportDir}`);
    return exitCodeOf(outcome);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await runtime.close().catch((error: unknown) => logger.warn('could not stop the local cluster', { error: (error as Error).message }));
    await server?.close();
  }
}

export { ManifestError };
