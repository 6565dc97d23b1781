/**
 * The two-node-plus-witness failover benchmark: the two-node-failover scenario
 * (config/samples/etcdcluster-two-node.yaml, two-node-failover.yaml) run long enough for the asked number of failovers, by the
 * operator on the local runtime against a real kube-apiserver (witness: a Lease, or the HTTP witness
 * process). Reports, per fault, the time from the fault to the cluster being writable again (the first
 * write invoked after the fault that succeeded), the median and worst over the failovers (crash,
 * partition) and over the short kills, how many failovers the operator completed, and the checker's
 * verdict. Exits 1 when a violation is found or fewer failovers than asked happened.
 *
 *   node bench/two-node-failover.ts                     # at least 20 failovers (about 9 minutes)
 *   node bench/two-node-failover.ts --failovers 5 --seed 7 --witness http
 *   node bench/two-node-failover.ts --failovers 3 --keep   # keeps the operator's folders, the run's history under runs/
 *
 * Results go to bench/.results/two-node-failover-<date>.json.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { Operator } from '../src/controller/operator.ts';
import { ConfigMapReportStore } from '../src/controller/report-store/index.ts';
import { LocalPlacement } from '../src/controller/placement/local.ts';
import type { EtcdCluster, RobustnessRunResource } from '../src/domain/index.ts';
import { LocalApiserver } from '../src/local/kube-apiserver.ts';
import { LocalWitness } from '../src/local/witness-process.ts';
import { setLogFormat } from '../src/log.ts';

const { values } = parseArgs({
  options: {
    failovers: { type: 'string', default: '20' },
    seed: { type: 'string', default: '2026' },
    grace: { type: 'string', default: '3s' },
    witness: { type: 'string', default: 'lease' },
    keep: { type: 'boolean', default: false },
  },
});
const wanted = Number(values.failovers);
const witnessKind = values.witness === 'http' ? 'http' : 'lease';
// A fault every ~21 s (interval 10-14 s after a 6-8 s fault); 5 of 6 choices fail over.
const durationS = Math.ceil((wanted * 1.3 * 21) / 10) * 10 + 30;
const namespace = 'bench';

interface RecoveredFault {
  fault: string;
  targets: string[];
  atMs: number;
  writableAfterMs?: number;
}

async function kubectl(apiserver: LocalApiserver, args: string[], stdin?: string): Promise<string> {
  const result = await apiserver.kubectl(args, stdin);
  if (result.code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${result.stderr}`);
  return result.stdout;
}

async function getJson<T>(apiserver: LocalApiserver, args: string[]): Promise<T> {
  return JSON.parse(await kubectl(apiserver, [...args, '-o', 'json'])) as T;
}

const median = (xs: number[]): number | undefined => {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return undefined;
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid] : Math.round((s[mid - 1]! + s[mid]!) / 2);
};

async function main(): Promise<number> {
  setLogFormat('text');
  const root = mkdtempSync(path.join(os.tmpdir(), 'bench-two-node-'));
  const apiserver = await LocalApiserver.start();
  let witness: LocalWitness | undefined;
  let operator: Operator | undefined;
  try {
    await kubectl(apiserver, ['apply', '--server-side', '-f', 'crds/']);
    await kubectl(apiserver, ['wait', '--for=condition=Established', '--timeout=60s', 'crd/etcdclusters.etcd.robustness.io', 'crd/robustnessruns.etcd.robustness.io']);
    await kubectl(apiserver, ['create', 'namespace', namespace]);
    if (witnessKind === 'http') {
      witness = new LocalWitness({ dataDir: path.join(root, 'witness') });
      witness.start();
      await witness.waitReady();
    }
    const placement = new LocalPlacement({ root: path.join(root, 'members') });
    const runsDir = path.join(root, 'runs');
    mkdirSync(runsDir, { recursive: true });
    operator = await Operator.start({
      kubeConfig: apiserver.kubeConfig,
      placement,
      reports: new ConfigMapReportStore({ kubeConfig: apiserver.kubeConfig }),
      namespaces: [namespace],
      identity: 'bench-operator',
      // A long Lease: this measures failovers, and a loaded machine must not cost the run its operator.
      leaderElection: { namespace, name: 'etcd-robustness-operator', leaseDurationMs: 30_000, renewDeadlineMs: 20_000, retryPeriodMs: 2000 },
      host: '127.0.0.1',
      metricsPort: 0,
      healthPort: 0,
      // --keep: the run's folder, its history among them, stays under root/runs for `etcd-robustness check`.
      workDir: runsDir,
      keepRunFolders: values.keep,
    });
    const clusterYaml = readFileSync('config/samples/etcdcluster-two-node.yaml', 'utf8');
    const runYaml = readFileSync('config/samples/two-node-failover.yaml', 'utf8');
    const witnessYaml = witness ? `kind: http\n        url: ${witness.url}` : 'kind: lease';
    await kubectl(apiserver, ['-n', namespace, 'apply', '-f', '-'], clusterYaml.replace('kind: lease', witnessYaml).replace('failoverGrace: 3s', `failoverGrace: ${values.grace}`));
    for (;;) {
      const c = await getJson<EtcdCluster>(apiserver, ['-n', namespace, 'get', 'etcdcluster', 'pair']);
      if (c.status?.witness?.phase === 'paired' && c.status.readyMembers === 2) break;
      await sleep(500);
    }
    console.log(`pair formed; running the scenario for ${durationS} s (seed ${values.seed}, grace ${values.grace}, ${witnessKind} witness)`);
    await kubectl(apiserver, ['-n', namespace, 'apply', '-f', '-'], runYaml.replace('duration: 5m', `duration: ${durationS}s`).replace('seed: 2026', `seed: ${values.seed}`));
    let run: RobustnessRunResource;
    for (;;) {
      run = await getJson<RobustnessRunResource>(apiserver, ['-n', namespace, 'get', 'robustnessrun', 'two-node-failover']);
      if (run.status?.lastRun?.endTime !== undefined) break;
      await sleep(2000);
    }
    const last = run.status.lastRun;
    const reportDir = path.join(root, 'report');
    await new ConfigMapReportStore({ kubeConfig: apiserver.kubeConfig }).fetch(namespace, last.report!, reportDir);
    const verdict = JSON.parse(readFileSync(path.join(reportDir, 'verdict.json'), 'utf8')) as {
      verdict: string;
      faults?: { recovery?: { faults: RecoveredFault[] } };
      live?: { lagP50Ms: number; lagP99Ms: number; worstLagP99Ms: number; peakWaitingForWatch: number; method: string; searchReason?: string };
      linearizability?: { verdict: string; method?: string; searchWindow?: unknown; checkMs: number };
    };
    const faults = verdict.faults?.recovery?.faults ?? [];
    const events = (await getJson<{ items: { reason: string; note: string; regarding: { name: string } }[] }>(apiserver, ['-n', namespace, 'get', 'events.events.k8s.io'])).items;
    const completed = events.filter((e) => e.regarding.name === 'pair' && e.reason === 'FailoverCompleted');
    const failoverFaults = faults.filter((f) => f.fault === 'crash' || f.fault === 'partition');
    const kills = faults.filter((f) => f.fault === 'kill');
    const times = (fs: RecoveredFault[]): number[] => fs.map((f) => f.writableAfterMs).filter((x): x is number => x !== undefined);
    const result = {
      date: new Date().toISOString(),
      seed: Number(values.seed),
      grace: values.grace,
      witness: witnessKind,
      durationS,
      phase: last.phase,
      verdict: verdict.verdict,
      failoversCompleted: completed.length,
      faults: faults.map((f) => ({ fault: f.fault, targets: f.targets, atS: Math.round(f.atMs / 100) / 10, writableAfterMs: f.writableAfterMs === undefined ? null : Math.round(f.writableAfterMs) })),
      failover: { count: failoverFaults.length, recovered: times(failoverFaults).length, medianMs: median(times(failoverFaults)), worstMs: Math.max(...times(failoverFaults)) },
      kill: { count: kills.length, medianMs: median(times(kills)), worstMs: kills.length > 0 ? Math.max(...times(kills)) : undefined },
      operations: run.status.operations,
      live: verdict.live,
      offlineCheck: verdict.linearizability,
    };
    console.log(JSON.stringify(result, null, 2));
    mkdirSync('bench/.results', { recursive: true });
    const out = `bench/.results/two-node-failover-${result.date.replace(/[:.]/g, '-')}.json`;
    writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
    console.log(
      `\n${result.failover.count} failover faults (${completed.length} failovers completed): fault → writable median ${result.failover.medianMs} ms, worst ${result.failover.worstMs} ms; ` +
        `${kills.length} short kills: median ${result.kill.medianMs ?? '-'} ms; verdict ${verdict.verdict}; ` +
        `live lag p99 ${verdict.live?.lagP99Ms.toFixed(0)} ms (worst interval ${verdict.live?.worstLagP99Ms.toFixed(0)} ms, ${verdict.live?.method}); ` +
        `offline check ${verdict.linearizability?.checkMs} ms (${verdict.linearizability?.method}); results in ${out}`,
    );
    return verdict.verdict === 'linearizable' && last.phase === 'Passed' && completed.length >= wanted ? 0 : 1;
  } finally {
    await operator?.close();
    await witness?.close();
    await apiserver.close();
    // --keep leaves the operator's folders (the run's history among them) for a closer look.
    if (values.keep) console.log(`kept ${root} (the run's history: ${path.join(root, 'runs')}/*/history)`);
    else rmSync(root, { recursive: true, force: true });
  }
}

process.exitCode = await main();
