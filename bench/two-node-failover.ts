/**
 * The two-node-plus-witness failover benchmark: the two-node-failover scenario
 * (config/samples/etcdcluster-two-node.yaml, two-node-failover.yaml) run long enough for the asked number of failovers, by the
 * operator on the local runtime against a real kube-apiserver (witness: a Lease, or the HTTP witness
 * process), or with `--runtime pods` on the real single-node cluster (src/node: a kubelet running the
 * member Pods, the chart installed by helm as the README says, the Lease witness). Reports, per fault, the time from the fault to the cluster being writable again (the first
 * write invoked after the fault that succeeded), the median and worst over the failovers (crash,
 * partition) and over the short kills, how many failovers the operator completed, and the checker's
 * verdict. Exits 1 when a violation is found or fewer failovers than asked happened.
 *
 *   node bench/two-node-failover.ts                     # at least 20 failovers (about 9 minutes)
 *   node bench/two-node-failover.ts --failovers 5 --seed 7 --witness http
 *   node bench/two-node-failover.ts --failovers 3 --keep   # keeps the operator's folders, the run's history under runs/
 *   node bench/two-node-failover.ts --runtime pods --failovers 10   # member Pods (needs npm run build:bins and build:images)
 *
 * Results go to bench/.results/two-node-failover-<date>.json.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { KubeConfig } from '@kubernetes/client-node';
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
import { KubeNode, readImagesManifest } from '../src/node/index.ts';
import { chartDir, TestHelm } from '../test/helpers/helm.ts';
import { setLogFormat } from '../src/log.ts';

const { values } = parseArgs({
  options: {
    failovers: { type: 'string', default: '20' },
    seed: { type: 'string', default: '2026' },
    grace: { type: 'string', default: '3s' },
    witness: { type: 'string', default: 'lease' },
    runtime: { type: 'string', default: 'local' },
    keep: { type: 'boolean', default: false },
  },
});
const wanted = Number(values.failovers);
const runtime = values.runtime === 'pods' ? 'pods' : 'local';
if (values.runtime !== runtime) throw new Error(`--runtime: "${values.runtime}" is neither local nor pods`);
const witnessKind = values.witness === 'http' ? 'http' : 'lease';
if (runtime === 'pods' && witnessKind === 'http') throw new Error('--runtime pods: the witness is the Lease (the HTTP witness is a local process)');
// A fault every ~21 s (interval 10-14 s after a 6-8 s fault); 5 of 6 choices fail over.
const durationS = Math.ceil((wanted * 1.3 * 21) / 10) * 10 + 30;
const namespace = 'bench';

interface RecoveredFault {
  fault: string;
  targets: string[];
  atMs: number;
  writableAfterMs?: number;
}

/** An API server with kubectl: the local kube-apiserver, or the real node's. */
interface Kubectl {
  kubectl(args: string[], stdin?: string): Promise<{ code: number; stdout: string; stderr: string }>;
}

async function kubectl(apiserver: Kubectl, args: string[], stdin?: string): Promise<string> {
  const result = await apiserver.kubectl(args, stdin);
  if (result.code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${result.stderr}`);
  return result.stdout;
}

async function getJson<T>(apiserver: Kubectl, args: string[]): Promise<T> {
  return JSON.parse(await kubectl(apiserver, [...args, '-o', 'json'])) as T;
}

const median = (xs: number[]): number | undefined => {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return undefined;
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid] : Math.round((s[mid - 1]! + s[mid]!) / 2);
};

/** Where the scenario runs: an API server whose operator places the pair's members, and how to end it. */
interface Environment {
  apiserver: Kubectl;
  kubeConfig: KubeConfig;
  close(): Promise<void>;
}

/** The operator in this process with the local placement, against a local kube-apiserver. */
async function startLocal(root: string): Promise<Environment & { witness: LocalWitness | undefined }> {
  const apiserver = await LocalApiserver.start();
  let witness: LocalWitness | undefined;
  let operator: Operator | undefined;
  const close = async (): Promise<void> => {
    await operator?.close();
    await witness?.close();
    await apiserver.close();
  };
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
  } catch (error) {
    await close();
    throw error;
  }
  return { apiserver, kubeConfig: apiserver.kubeConfig, witness, close };
}

/** The real single-node cluster, the chart installed with helm (its default values name the imported images). */
async function startPods(): Promise<Environment> {
  const node = await KubeNode.start({ images: readImagesManifest().images.map((i) => i.file) });
  const helm = new TestHelm({ kubeconfigPath: node.kubeconfigPath });
  const close = async (): Promise<void> => {
    helm.close();
    await node.close();
  };
  try {
    const install = await helm.run(['install', 'bench', chartDir, '-n', 'etcd-robustness-system', '--create-namespace', '--wait', '--timeout', '5m'], 6 * 60_000);
    if (install.code !== 0) throw new Error(`helm install: ${install.stderr}`);
    await kubectl(node, ['create', 'namespace', namespace]);
  } catch (error) {
    await close();
    throw error;
  }
  return { apiserver: node, kubeConfig: node.kubeConfig, close };
}

async function main(): Promise<number> {
  setLogFormat('text');
  const root = mkdtempSync(path.join(os.tmpdir(), 'bench-two-node-'));
  let env: (Environment & { witness?: LocalWitness | undefined }) | undefined;
  try {
    env = runtime === 'pods' ? await startPods() : await startLocal(root);
    const { apiserver, witness } = env;
    const clusterYaml = readFileSync('config/samples/etcdcluster-two-node.yaml', 'utf8');
    const runYaml = readFileSync('config/samples/two-node-failover.yaml', 'utf8');
    const witnessYaml = witness ? `kind: http\n        url: ${witness.url}` : 'kind: lease';
    await kubectl(apiserver, ['-n', namespace, 'apply', '-f', '-'], clusterYaml.replace('kind: lease', witnessYaml).replace('failoverGrace: 3s', `failoverGrace: ${values.grace}`));
    for (;;) {
      const c = await getJson<EtcdCluster>(apiserver, ['-n', namespace, 'get', 'etcdcluster', 'pair']);
      if (c.status?.witness?.phase === 'paired' && c.status.readyMembers === 2) break;
      await sleep(500);
    }
    console.log(`pair formed; running the scenario for ${durationS} s (seed ${values.seed}, grace ${values.grace}, ${witnessKind} witness, ${runtime} runtime)`);
    await kubectl(apiserver, ['-n', namespace, 'apply', '-f', '-'], runYaml.replace('duration: 5m', `duration: ${durationS}s`).replace('seed: 2026', `seed: ${values.seed}`));
    let run: RobustnessRunResource;
    for (;;) {
      run = await getJson<RobustnessRunResource>(apiserver, ['-n', namespace, 'get', 'robustnessrun', 'two-node-failover']);
      if (run.status?.lastRun?.endTime !== undefined) break;
      await sleep(2000);
    }
    const last = run.status.lastRun;
    const reportDir = path.join(root, 'report');
    await new ConfigMapReportStore({ kubeConfig: env.kubeConfig }).fetch(namespace, last.report!, reportDir);
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
      runtime,
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
    const out = `bench/.results/two-node-failover-${runtime === 'pods' ? 'pods-' : ''}${result.date.replace(/[:.]/g, '-')}.json`;
    writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
    console.log(
      `\n${result.failover.count} failover faults (${completed.length} failovers completed): fault → writable median ${result.failover.medianMs} ms, worst ${result.failover.worstMs} ms; ` +
        `${kills.length} short kills: median ${result.kill.medianMs ?? '-'} ms; verdict ${verdict.verdict}; ` +
        `live lag p99 ${verdict.live?.lagP99Ms.toFixed(0)} ms (worst interval ${verdict.live?.worstLagP99Ms.toFixed(0)} ms, ${verdict.live?.method}); ` +
        `offline check ${verdict.linearizability?.checkMs} ms (${verdict.linearizability?.method}); results in ${out}`,
    );
    return verdict.verdict === 'linearizable' && last.phase === 'Passed' && completed.length >= wanted ? 0 : 1;
  } finally {
    await env?.close();
    // --keep leaves the operator's folders (the run's history among them) for a closer look.
    if (values.keep) console.log(`kept ${root} (the run's history: ${path.join(root, 'runs')}/*/history)`);
    else rmSync(root, { recursive: true, force: true });
  }
}

process.exitCode = await main();
