/**
 * What the operator itself costs, per EtcdCluster and per RobustnessRun, on the real single-node cluster
 * (src/node), the chart installed with helm as a user installs it (one operator replica, so the one
 * measured is the one acting). CPU and memory are read from the Pods' cgroups on this machine (cgroup v1,
 * cgroupfs: cpuacct.usage and memory.usage_in_bytes less inactive file pages, the kubelet's working set).
 *
 * Phases, each measured over --window:
 *   idle      the operator alone;
 *   clusters  --clusters single-member EtcdClusters, steady (their resync every 5 s);
 *   runs      --runs RobustnessRuns at once against them (--qps each), in runner Pods by default or in the
 *             operator's process with --in-process (the chart's runner.enabled=false).
 * Per cluster = (clusters - idle) / clusters; per run = (runs - clusters) / runs, for the operator and, with
 * runner Pods, for each runner. Prints the figures and writes them to bench/.results/ (or --out).
 *
 *   node bench/operator-cost.ts [--clusters 4] [--runs 3] [--window 60s] [--qps 50] [--in-process]
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { parseDuration } from '../src/duration.ts';
import { KubeNode, readImagesManifest } from '../src/node/index.ts';
import { chartDir, TestHelm } from '../test/helpers/helm.ts';

const { values } = parseArgs({
  options: {
    clusters: { type: 'string', default: '4' },
    runs: { type: 'string', default: '3' },
    window: { type: 'string', default: '60s' },
    qps: { type: 'string', default: '50' },
    'in-process': { type: 'boolean', default: false },
    out: { type: 'string' },
  },
});
const clusterCount = Number(values.clusters);
const runCount = Number(values.runs);
const windowMs = parseDuration(values.window);
const inProcess = values['in-process'];
const system = 'etcd-robustness-system';
const namespace = 'cost';

async function kubectl(node: KubeNode, args: string[], stdin?: string): Promise<string> {
  const result = await node.kubectl(args, stdin);
  if (result.code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${result.stderr}`);
  return result.stdout;
}

interface PodRef {
  name: string;
  uid: string;
}

async function pods(node: KubeNode, ns: string, selector: string): Promise<PodRef[]> {
  const list = JSON.parse(await kubectl(node, ['-n', ns, 'get', 'pods', '-l', selector, '-o', 'json'])) as { items: { metadata: { name: string; uid: string }; status?: { phase?: string } }[] };
  return list.items.filter((p) => p.status?.phase === 'Running').map((p) => ({ name: p.metadata.name, uid: p.metadata.uid }));
}

/** The Pod's cgroup folder under a v1 controller's kubepods tree (any QoS class). */
function podCgroup(controller: string, uid: string): string | undefined {
  const root = path.join('/sys/fs/cgroup', controller, 'kubepods');
  const want = `pod${uid}`;
  const search = (dir: string, depth: number): string | undefined => {
    if (depth > 2 || !existsSync(dir)) return undefined;
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (!entry.isDirectory()) continue;
      if (entry.name === want) return path.join(dir, entry.name);
      const found = search(path.join(dir, entry.name), depth + 1);
      if (found) return found;
    }
    return undefined;
  };
  return search(root, 0);
}

/** CPU seconds used so far and the working set now (bytes) of a Pod. */
function usage(uid: string): { cpuSeconds: number; workingSet: number } {
  const cpu = podCgroup('cpu,cpuacct', uid) ?? podCgroup('cpuacct', uid);
  const memory = podCgroup('memory', uid);
  if (!cpu || !memory) throw new Error(`no cgroup of Pod ${uid} (cgroup v1 with the cgroupfs driver expected)`);
  const cpuSeconds = Number(readFileSync(path.join(cpu, 'cpuacct.usage'), 'utf8')) / 1e9;
  const used = Number(readFileSync(path.join(memory, 'memory.usage_in_bytes'), 'utf8'));
  const inactive = Number(/^total_inactive_file (\d+)$/m.exec(readFileSync(path.join(memory, 'memory.stat'), 'utf8'))?.[1] ?? 0);
  return { cpuSeconds, workingSet: Math.max(0, used - inactive) };
}

interface Figures {
  /** Average CPU over the window, in millicores. */
  cpuMillicores: number;
  /** Working set at the window's end and its peak over the window's samples, MiB. */
  memoryMiB: number;
  peakMemoryMiB: number;
}

/** Samples the Pods' usage every 2 s over the window; figures per Pod. */
async function measure(uids: Map<string, string>, ms: number): Promise<Map<string, Figures>> {
  const first = new Map([...uids].map(([name, uid]) => [name, usage(uid)]));
  const peak = new Map([...uids].map(([name]) => [name, first.get(name)!.workingSet]));
  const started = Date.now();
  while (Date.now() - started < ms) {
    await sleep(2000);
    for (const [name, uid] of uids) {
      try {
        peak.set(name, Math.max(peak.get(name)!, usage(uid).workingSet));
      } catch {
        // a runner Pod that ended: its last sample stands
      }
    }
  }
  const seconds = (Date.now() - started) / 1000;
  const figures = new Map<string, Figures>();
  for (const [name, uid] of uids) {
    let last = first.get(name)!;
    try {
      last = usage(uid);
    } catch {
      // ended
    }
    figures.set(name, {
      cpuMillicores: Math.round(((last.cpuSeconds - first.get(name)!.cpuSeconds) / seconds) * 1000 * 10) / 10,
      memoryMiB: Math.round((last.workingSet / 2 ** 20) * 10) / 10,
      peakMemoryMiB: Math.round((peak.get(name)! / 2 ** 20) * 10) / 10,
    });
  }
  return figures;
}

const clusterYaml = (name: string): string => `apiVersion: etcd.robustness.io/v1alpha1
kind: EtcdCluster
metadata: {name: ${name}}
spec:
  replicas: 1
  storage: {size: 256Mi}
`;

const runYaml = (name: string, cluster: string, durationS: number): string => `apiVersion: etcd.robustness.io/v1alpha1
kind: RobustnessRun
metadata: {name: ${name}}
spec:
  clusterRef: {name: ${cluster}}
  mode: exclusive
  duration: ${durationS}s
  seed: 5
  traffic: {profile: etcd, qps: {target: ${values.qps}}}
`;

async function waitFor(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(2000);
  }
}

async function main(): Promise<number> {
  const node = await KubeNode.start({ images: readImagesManifest().images.map((i) => i.file) });
  const helm = new TestHelm({ kubeconfigPath: node.kubeconfigPath });
  try {
    const install = await helm.run(['install', 'cost', chartDir, '-n', system, '--create-namespace', '--wait', '--timeout', '5m', '--set', 'replicaCount=1', '--set', `runner.enabled=${!inProcess}`], 6 * 60_000);
    if (install.code !== 0) throw new Error(`helm install: ${install.stderr}`);
    await kubectl(node, ['create', 'namespace', namespace]);
    const [operator] = await pods(node, system, 'app.kubernetes.io/name=etcd-robustness-operator');
    if (!operator) throw new Error('no operator Pod');
    const operatorOnly = new Map([[operator.name, operator.uid]]);
    await sleep(15_000); // past the start (informers' first lists)
    const idle = (await measure(operatorOnly, windowMs)).get(operator.name)!;
    console.log(`idle: ${JSON.stringify(idle)}`);

    const clusters = Array.from({ length: clusterCount }, (_, i) => `c${i}`);
    await kubectl(node, ['-n', namespace, 'apply', '-f', '-'], clusters.map(clusterYaml).join('---\n'));
    await waitFor(`${clusterCount} clusters Available`, 10 * 60_000, async () => {
      const list = JSON.parse(await kubectl(node, ['-n', namespace, 'get', 'etcdclusters', '-o', 'json'])) as { items: { status?: { conditions?: { type: string; status: string }[] } }[] };
      return list.items.filter((c) => c.status?.conditions?.some((x) => x.type === 'Available' && x.status === 'True')).length === clusterCount;
    });
    await sleep(10_000);
    const steady = (await measure(operatorOnly, windowMs)).get(operator.name)!;
    console.log(`${clusterCount} clusters: ${JSON.stringify(steady)}`);

    const durationS = Math.round(windowMs / 1000) + 40;
    const runs = Array.from({ length: runCount }, (_, i) => `r${i}`);
    await kubectl(node, ['-n', namespace, 'apply', '-f', '-'], runs.map((r, i) => runYaml(r, clusters[i % clusterCount]!, durationS)).join('---\n'));
    let runners: PodRef[] = [];
    if (!inProcess) {
      await waitFor(`${runCount} runner Pods`, 5 * 60_000, async () => (runners = await pods(node, system, 'app.kubernetes.io/component=runner')).length === runCount);
    }
    await sleep(20_000); // the runs ramped up
    const measured = new Map([[operator.name, operator.uid], ...runners.map((p) => [p.name, p.uid] as const)]);
    const during = await measure(measured, windowMs);
    const operatorDuring = during.get(operator.name)!;
    console.log(`${runCount} runs: operator ${JSON.stringify(operatorDuring)}`);
    const runnerFigures = runners.map((p) => during.get(p.name)!);
    // What the operator logged meanwhile, by message: where its time went when the figure is high.
    const logs = await kubectl(node, ['-n', system, 'logs', operator.name, `--since=${Math.round(windowMs / 1000)}s`]);
    const byMessage = new Map<string, number>();
    for (const line of logs.split('\n').filter((l) => l !== '')) {
      let message = line.slice(0, 80);
      try {
        const msg = (JSON.parse(line) as { msg?: unknown }).msg;
        if (typeof msg === 'string') message = msg.replace(/[0-9]+/g, 'N').slice(0, 100);
      } catch {
        // not JSON
      }
      byMessage.set(message, (byMessage.get(message) ?? 0) + 1);
    }
    console.log(`operator log lines during the runs: ${JSON.stringify([...byMessage].sort((a, b) => b[1] - a[1]).slice(0, 15))}`);
    await waitFor('the runs to finish', 10 * 60_000, async () => {
      const list = JSON.parse(await kubectl(node, ['-n', namespace, 'get', 'robustnessruns', '-o', 'json'])) as { items: { status?: { phase?: string } }[] };
      return list.items.every((r) => r.status?.phase !== undefined && r.status.phase !== 'Running' && r.status.phase !== 'Pending');
    });
    const phases = (JSON.parse(await kubectl(node, ['-n', namespace, 'get', 'robustnessruns', '-o', 'json'])) as { items: { metadata: { name: string }; status?: { phase?: string; verdict?: string; operations?: { ok: number } } }[] }).items.map((r) => ({ run: r.metadata.name, phase: r.status?.phase, verdict: r.status?.verdict, ok: r.status?.operations?.ok }));

    const median = (xs: number[]): number => {
      const s = [...xs].sort((a, b) => a - b);
      return s.length === 0 ? 0 : s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
    };
    const result = {
      mode: inProcess ? 'in-process' : 'runner Pods',
      clusters: clusterCount,
      runs: runCount,
      qpsPerRun: Number(values.qps),
      windowS: windowMs / 1000,
      operator: { idle, clusters: steady, runs: operatorDuring },
      perCluster: { cpuMillicores: Math.round(((steady.cpuMillicores - idle.cpuMillicores) / clusterCount) * 10) / 10, memoryMiB: Math.round(((steady.memoryMiB - idle.memoryMiB) / clusterCount) * 10) / 10 },
      perRunInOperator: { cpuMillicores: Math.round(((operatorDuring.cpuMillicores - steady.cpuMillicores) / runCount) * 10) / 10, memoryMiB: Math.round(((operatorDuring.memoryMiB - steady.memoryMiB) / runCount) * 10) / 10 },
      perRunner: runnerFigures.length === 0 ? undefined : { cpuMillicoresMedian: median(runnerFigures.map((f) => f.cpuMillicores)), memoryMiBMedian: median(runnerFigures.map((f) => f.memoryMiB)), peakMemoryMiBMax: Math.max(...runnerFigures.map((f) => f.peakMemoryMiB)) },
      runOutcomes: phases,
    };
    console.log(JSON.stringify(result, null, 2));
    mkdirSync('bench/.results', { recursive: true });
    const out = values.out ?? `bench/.results/operator-cost-${inProcess ? 'in-process' : 'runner-pods'}-${new Date().toISOString().replace(/[:.]/g, '-')}.json`;
    writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
    console.log(`written to ${out}`);
    return phases.every((p) => p.phase === 'Passed') ? 0 : 1;
  } finally {
    await helm.run(['uninstall', 'cost', '-n', system, '--wait', '--timeout', '2m'], 3 * 60_000).catch(() => undefined);
    helm.close();
    await node.close();
  }
}

process.exitCode = await main();
