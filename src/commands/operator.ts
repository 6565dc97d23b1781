/**
 * `etcd-robustness operator`: the Kubernetes operator process (see src/controller/operator.ts), and
 * `etcd-robustness dev`: a local kube-apiserver with the CRDs installed and the operator running
 * against it with local members, for trying the samples with kubectl on one machine.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { KubeConfig } from '@kubernetes/client-node';
import { customResourceDefinitions, renderCrd } from '../controller/api/index.ts';
import { selfSignedCertificate, type ServingCertificate } from '../controller/kit/index.ts';
import { Operator } from '../controller/operator.ts';
import { ConfigMapReportStore, VolumeReportStore, type ReportStore } from '../controller/report-store/index.ts';
import { KubernetesPlacement } from '../controller/placement/kubernetes.ts';
import { LocalPlacement } from '../controller/placement/local.ts';
import type { AgentClientPods } from '../controller/placement/kubernetes-manifests.ts';
import { resourcesFromJson, type RunnerPodOptions } from '../controller/robustnessrun/runner-jobs.ts';
import type { EtcdCluster, MemberPlacement, ResourceRequirements } from '../domain/index.ts';
import { parseDuration } from '../duration.ts';
import { LocalApiserver } from '../local/kube-apiserver.ts';
import { claimFolder, createScratch, FolderBusyError, reclaimScratch, removeScratch } from '../local/scratch.ts';
import { logger, setLogFormat } from '../log.ts';
import { isLoopback } from '../loopback.ts';
import { imageNamed, KubeNode, readImagesManifest } from '../node/index.ts';
import { UsageError } from './usage.ts';

export const operatorUsage = `Usage: etcd-robustness operator [options]

Runs the operator: reconciles EtcdCluster and RobustnessRun resources. Only the replica holding the
leader-election Lease acts; it serves /metrics, /healthz and /readyz.

Options:
  --runtime kubernetes|local      where members run (default kubernetes): Pods, or local etcd processes
  --namespaces NS[,NS...]         namespaces to watch (default: all)
  --kubeconfig FILE               (default: in-cluster, then KUBECONFIG, then ~/.kube/config)
  --bind-address HOST             address of the metrics and health servers (default 127.0.0.1; the
                                  chart sets 0.0.0.0 so that Prometheus and the kubelet reach the Pod)
  --metrics-port PORT             /metrics and /gates/ (default 8080; 0: any free port)
  --metrics-secure[=false]        serve /metrics and /gates/ over HTTPS, each request authenticated
                                  (TokenReview) and authorized (SubjectAccessReview). Default: on for
                                  any address but loopback, where plain HTTP is allowed; off is refused
                                  for a non-loopback address
  --metrics-cert-dir DIR          the serving certificate (tls.crt, tls.key; e.g. a mounted
                                  kubernetes.io/tls Secret); default: a self-signed one made at start
  --health-port PORT              /healthz and /readyz, plain HTTP without authentication (default
                                  8081; 0: any free port; must differ from --metrics-port when secure)
  --leader-elect[=false]          campaign for the Lease before acting (default true)
  --leader-election-namespace NS  namespace of the Lease (default: POD_NAMESPACE, else default)
  --leader-election-id NAME       name of the Lease (default etcd-robustness-operator)
  --lease-duration DURATION       (default 15s)
  --report-dir DIR                store reports in DIR (a mounted volume) instead of ConfigMaps
  --agent-image IMAGE             image of the fault agent sidecar (kubernetes runtime)
  --member-network-policy LABELS  kubernetes runtime: give each EtcdCluster a NetworkPolicy that admits
                                  the agents' port only from Pods with LABELS (k=v,...: this operator's)
                                  in this operator's namespace (POD_NAMESPACE), the peer port only from
                                  the cluster's members (the chart sets it; enforced by the CNI plugin)
  --runner-service-account NAME   kubernetes runtime: run each RobustnessRun execution in a runner Pod
                                  of its own (a Job in this operator's namespace, POD_NAMESPACE) under
                                  this ServiceAccount; without it runs execute in the operator process
  --runner-image IMAGE            image of the runner Pods (default: --agent-image, the same image)
  --runner-pod-labels LABELS      labels of every runner Pod (k=v,...): the chart's PodMonitor selects
                                  them, and the members' NetworkPolicy admits them to the agents' port
  --runner-resources JSON         resources of a runner whose run does not set spec.runner.resources,
                                  e.g. {"requests":{"cpu":"100m","memory":"128Mi"}}
  --data-dir DIR                  local runtime: members' data and logs
  --log-format json|text          (default json)
  -h, --help
`;

export interface OperatorArgs {
  runtime: 'kubernetes' | 'local';
  namespaces: string[];
  kubeconfig: string | undefined;
  bindAddress: string;
  metricsPort: number;
  metricsSecure: boolean;
  metricsCertDir: string | undefined;
  healthPort: number;
  leaderElect: boolean;
  leaderElectionNamespace: string;
  leaderElectionId: string;
  leaseDurationMs: number;
  reportDir: string | undefined;
  agentImage: string;
  /** --member-network-policy: the operator Pods' labels (and the runner Pods'), when each cluster gets a NetworkPolicy. */
  memberNetworkPolicy: AgentClientPods | undefined;
  /** --runner-*: runs in runner Pods. */
  runners: Omit<RunnerPodOptions, 'agentImage'> | undefined;
  dataDir: string;
  logFormat: 'json' | 'text';
}

export const defaultImage = 'ghcr.io/etcd-robustness/etcd-robustness-operator:0.1.0';

export function port(flag: string, text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n > 65535) throw new UsageError(`${flag}: "${text}" is not a port number`);
  return n;
}

export function parseOperatorArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): OperatorArgs | 'help' {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      runtime: { type: 'string', default: 'kubernetes' },
      namespaces: { type: 'string', default: '' },
      kubeconfig: { type: 'string' },
      'bind-address': { type: 'string', default: '127.0.0.1' },
      'metrics-port': { type: 'string', default: '8080' },
      'metrics-secure': { type: 'string' },
      'metrics-cert-dir': { type: 'string' },
      'health-port': { type: 'string', default: '8081' },
      'leader-elect': { type: 'string' },
      'leader-election-namespace': { type: 'string' },
      'leader-election-id': { type: 'string', default: 'etcd-robustness-operator' },
      'lease-duration': { type: 'string', default: '15s' },
      'report-dir': { type: 'string' },
      'agent-image': { type: 'string', default: env['OPERATOR_IMAGE'] ?? defaultImage },
      'member-network-policy': { type: 'string' },
      'runner-service-account': { type: 'string' },
      'runner-image': { type: 'string' },
      'runner-pod-labels': { type: 'string' },
      'runner-resources': { type: 'string' },
      'data-dir': { type: 'string' },
      'log-format': { type: 'string', default: 'json' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return 'help';
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const runtime = values.runtime;
  if (runtime !== 'kubernetes' && runtime !== 'local') throw new UsageError(`--runtime: "${runtime}" is not kubernetes or local`);
  const logFormat = values['log-format'];
  if (logFormat !== 'json' && logFormat !== 'text') throw new UsageError(`--log-format: "${logFormat}" is not json or text`);
  const leaderElectText = values['leader-elect'] ?? 'true';
  if (leaderElectText !== 'true' && leaderElectText !== 'false') throw new UsageError(`--leader-elect: "${leaderElectText}" is not true or false`);
  let leaseDurationMs: number;
  try {
    leaseDurationMs = parseDuration(values['lease-duration']);
  } catch (error) {
    throw new UsageError(`--lease-duration: ${(error as Error).message}`);
  }
  if (leaseDurationMs < 2000) throw new UsageError('--lease-duration: must be at least 2s');
  const bindAddress = values['bind-address'];
  const secureText = values['metrics-secure'];
  if (secureText !== undefined && secureText !== 'true' && secureText !== 'false') throw new UsageError(`--metrics-secure: "${secureText}" is not true or false`);
  const metricsSecure = secureText === undefined ? !isLoopback(bindAddress) : secureText === 'true';
  if (!metricsSecure && !isLoopback(bindAddress)) {
    throw new UsageError(`--metrics-secure=false: plain HTTP without authentication is served on loopback only, not on --bind-address ${bindAddress} (the gates reveal every namespace's verdicts)`);
  }
  const metricsPort = port('--metrics-port', values['metrics-port']);
  const healthPort = port('--health-port', values['health-port']);
  if (metricsSecure && metricsPort === healthPort && metricsPort !== 0) {
    throw new UsageError(`--health-port: must differ from --metrics-port (${metricsPort}) when metrics are served securely: the kubelet's probes carry no token`);
  }
  if (values['metrics-cert-dir'] !== undefined && !metricsSecure) throw new UsageError('--metrics-cert-dir: needs --metrics-secure');
  const runners = runnersOf(values, runtime, env);
  if (runners && values['report-dir'] !== undefined) {
    throw new UsageError('--report-dir: runner Pods store reports in ConfigMaps (they cannot mount the operator\'s report volume); leave out --runner-service-account to run runs in the operator process');
  }
  const memberNetworkPolicy = memberNetworkPolicyOf(values['member-network-policy'], env);
  return {
    runtime,
    namespaces: values.namespaces.split(',').map((s) => s.trim()).filter((s) => s !== ''),
    kubeconfig: values.kubeconfig,
    bindAddress,
    metricsPort,
    metricsSecure,
    metricsCertDir: values['metrics-cert-dir'],
    healthPort,
    leaderElect: leaderElectText === 'true',
    leaderElectionNamespace: values['leader-election-namespace'] ?? env['POD_NAMESPACE'] ?? 'default',
    leaderElectionId: values['leader-election-id'],
    leaseDurationMs,
    reportDir: values['report-dir'],
    agentImage: values['agent-image'],
    memberNetworkPolicy: memberNetworkPolicy && runners ? { ...memberNetworkPolicy, runnerPodLabels: runners.podLabels } : memberNetworkPolicy,
    runners,
    dataDir: values['data-dir'] ?? path.join(os.tmpdir(), `etcd-robustness-operator-${os.userInfo().uid}`),
    logFormat,
  };
}

/** Labels written k=v,k=v (flag: for the error). */
function labelsOf(flag: string, text: string, whose: string): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const pair of text.split(',').map((p) => p.trim()).filter((p) => p !== '')) {
    const match = /^([A-Za-z0-9][-A-Za-z0-9_./]*)=([-A-Za-z0-9_.]*)$/.exec(pair);
    if (!match) throw new UsageError(`${flag}: "${pair}" is not a label KEY=VALUE`);
    labels[match[1]!] = match[2]!;
  }
  if (Object.keys(labels).length === 0) throw new UsageError(`${flag}: name at least one label of the ${whose} Pods`);
  return labels;
}

interface RunnerFlags {
  'runner-service-account'?: string | undefined;
  'runner-image'?: string | undefined;
  'runner-pod-labels'?: string | undefined;
  'runner-resources'?: string | undefined;
  'agent-image': string;
}

function runnersOf(values: RunnerFlags, runtime: 'kubernetes' | 'local', env: NodeJS.ProcessEnv): OperatorArgs['runners'] {
  const serviceAccount = values['runner-service-account'];
  if (serviceAccount === undefined) {
    for (const flag of ['runner-image', 'runner-pod-labels', 'runner-resources'] as const) {
      if (values[flag] !== undefined) throw new UsageError(`--${flag}: needs --runner-service-account (runner Pods)`);
    }
    return undefined;
  }
  if (runtime !== 'kubernetes') throw new UsageError('--runner-service-account: runner Pods need --runtime kubernetes (the local runtime runs runs in its process)');
  const namespace = env['POD_NAMESPACE'];
  if (namespace === undefined || namespace === '') throw new UsageError("--runner-service-account: needs POD_NAMESPACE (the runner Jobs go in the operator's namespace)");
  const podLabels = values['runner-pod-labels'] === undefined ? {} : labelsOf('--runner-pod-labels', values['runner-pod-labels'], 'runner');
  let resources: ResourceRequirements | undefined;
  try {
    resources = values['runner-resources'] === undefined ? undefined : resourcesFromJson(values['runner-resources']);
  } catch (error) {
    throw new UsageError(`--runner-resources: ${(error as Error).message}`);
  }
  return { namespace, serviceAccount, image: values['runner-image'] ?? values['agent-image'], podLabels, ...(resources === undefined ? {} : { resources }) };
}

function memberNetworkPolicyOf(text: string | undefined, env: NodeJS.ProcessEnv): OperatorArgs['memberNetworkPolicy'] {
  if (text === undefined) return undefined;
  const podLabels = labelsOf('--member-network-policy', text, "operator's");
  const namespace = env['POD_NAMESPACE'];
  if (namespace === undefined || namespace === '') throw new UsageError("--member-network-policy: needs POD_NAMESPACE (the operator Pods' namespace)");
  return { namespace, podLabels };
}

const booleanFlags = new Set(['--leader-elect', '--metrics-secure']);

/** --leader-elect and --metrics-secure are boolean flags that may also be written --flag=false. */
function normalizeArgv(argv: string[]): string[] {
  return argv.map((a, i) => (booleanFlags.has(a) && (argv[i + 1] === undefined || argv[i + 1]!.startsWith('-')) ? `${a}=true` : a));
}

export class MetricsCertificateError extends Error {
  override name = 'MetricsCertificateError';
}

/** The metrics serving certificate: tls.crt and tls.key of --metrics-cert-dir, else a self-signed one. */
export async function metricsCertificate(certDir: string | undefined, env: NodeJS.ProcessEnv = process.env): Promise<ServingCertificate> {
  if (certDir !== undefined) {
    const read = (file: string): string => {
      try {
        return readFileSync(path.join(certDir, file), 'utf8');
      } catch (error) {
        throw new MetricsCertificateError(`--metrics-cert-dir: cannot read ${path.join(certDir, file)}: ${(error as Error).message}`);
      }
    };
    return { cert: read('tls.crt'), key: read('tls.key') };
  }
  const hosts = [...new Set([os.hostname(), 'localhost', '127.0.0.1', ...(env['POD_IP'] === undefined || env['POD_IP'] === '' ? [] : [env['POD_IP']])])];
  return selfSignedCertificate('etcd-robustness-operator metrics', hosts);
}

export function loadKubeConfig(file: string | undefined): KubeConfig {
  const kc = new KubeConfig();
  if (file !== undefined) kc.loadFromFile(file);
  else kc.loadFromDefault();
  return kc;
}

export interface OperatorRuntimeParts {
  placement: MemberPlacement<EtcdCluster>;
  reports: ReportStore;
}

function partsFor(args: OperatorArgs, kubeConfig: KubeConfig): OperatorRuntimeParts {
  const placement =
    args.runtime === 'local'
      ? new LocalPlacement({ root: args.dataDir })
      : new KubernetesPlacement({ kubeConfig, operatorImage: args.agentImage, ...(args.memberNetworkPolicy === undefined ? {} : { agentClients: args.memberNetworkPolicy }) });
  const reports = args.reportDir === undefined ? new ConfigMapReportStore({ kubeConfig }) : new VolumeReportStore({ root: args.reportDir });
  return { placement, reports };
}

/** Runs until SIGTERM/SIGINT (exit 0 after a clean stop) or a lost lease (exit 1). */
export async function runOperator(argvIn: string[], out: (line: string) => void): Promise<number> {
  const args = parseOperatorArgs(normalizeArgv(argvIn));
  if (args === 'help') {
    out(operatorUsage);
    return 0;
  }
  setLogFormat(args.logFormat);
  const kubeConfig = loadKubeConfig(args.kubeconfig);
  const identity = process.env['POD_NAME'] ?? `${os.hostname()}-${process.pid}`;
  const { placement, reports } = partsFor(args, kubeConfig);
  // What killed predecessors left (runs' work folders, local members of a killed run --local or dev).
  reclaimScratch();
  const workDir = createScratch('runs');
  try {
    return await operate(args, { kubeConfig, identity, placement, reports, workDir }, out);
  } finally {
    removeScratch(workDir);
  }
}

async function operate(args: OperatorArgs, parts: OperatorRuntimeParts & { kubeConfig: KubeConfig; identity: string; workDir: string }, out: (line: string) => void): Promise<number> {
  const { kubeConfig, identity, placement, reports, workDir } = parts;
  let lost!: () => void;
  const lostLeadership = new Promise<void>((resolve) => (lost = resolve));
  const operator = await Operator.start({
    kubeConfig,
    placement,
    reports,
    workDir,
    namespaces: args.namespaces,
    identity,
    ...(args.leaderElect ? { leaderElection: { namespace: args.leaderElectionNamespace, name: args.leaderElectionId, leaseDurationMs: args.leaseDurationMs, renewDeadlineMs: Math.round(args.leaseDurationMs * 2 / 3), retryPeriodMs: Math.max(500, Math.round(args.leaseDurationMs / 7)) } } : {}),
    host: args.bindAddress,
    metricsPort: args.metricsPort,
    healthPort: args.healthPort,
    ...(args.metricsSecure ? { secureMetrics: { tls: await metricsCertificate(args.metricsCertDir) } } : {}),
    onLostLeadership: () => lost(),
    ...(args.runners === undefined ? {} : { runners: { ...args.runners, agentImage: args.agentImage } }),
  });
  logger.info('operator started', {
    identity,
    runtime: args.runtime,
    namespaces: args.namespaces.length === 0 ? 'all' : args.namespaces,
    metrics: operator.metricsUrl,
    metricsAuth: args.metricsSecure ? 'TokenReview and SubjectAccessReview' : 'none (loopback)',
    health: operator.healthUrl,
    leaderElection: args.leaderElect,
  });
  out(`metrics: ${operator.metricsUrl}`);
  out(`health: ${operator.healthUrl}/healthz`);
  const signals = stopSignals();
  try {
    const why = await Promise.race([signals.received, lostLeadership.then(() => 'lost' as const)]);
    logger.info(why === 'lost' ? 'leadership lost: stopping' : `${why}: stopping (runs heal their faults)`);
    await operator.close();
    return why === 'lost' ? 1 : 0;
  } finally {
    signals.dispose();
  }
}

/**
 * The first SIGTERM or SIGINT. Listeners stay registered (`on`, not `once`) until dispose(): the exit hook
 * of src/local/process.ts exits at once when it is the only listener of the signal left, and a `once`
 * listener is removed before the hook runs when the hook was registered after it (the local runtime's
 * first member starts after this), so a SIGTERM would exit 143 without stopping cleanly.
 */
export function stopSignals(): { received: Promise<NodeJS.Signals>; dispose: () => void } {
  let resolve!: (signal: NodeJS.Signals) => void;
  const received = new Promise<NodeJS.Signals>((r) => (resolve = r));
  const onTerm = (): void => resolve('SIGTERM');
  const onInt = (): void => resolve('SIGINT');
  process.on('SIGTERM', onTerm);
  process.on('SIGINT', onInt);
  return {
    received,
    dispose: () => {
      process.off('SIGTERM', onTerm);
      process.off('SIGINT', onInt);
    },
  };
}

export const devUsage = `Usage: etcd-robustness dev [--runtime local|kubernetes] [--data-dir DIR]

--runtime local (the default): starts a local kube-apiserver (with its own etcd), installs the CRDs, runs
the operator against it with the local runtime (EtcdCluster members are etcd processes on this machine)
and prints the KUBECONFIG to use. Then, in another shell:

  export KUBECONFIG=<printed path>
  kubectl apply -f config/samples/etcdcluster.yaml
  kubectl apply -f config/samples/robustnessrun-against-cluster.yaml
  kubectl get etcdclusters,robustnessruns -w

Without --data-dir, dev starts from nothing every time: its data lives in a scratch folder under
\${TMPDIR:-/tmp}/etcd-robustness-<uid>/, removed when dev stops (or, if dev was killed, by the next dev,
run --local or operator). With --data-dir DIR (--dir is the same), dev keeps everything in DIR (the
apiserver's etcd data, the members' data, the kubeconfig): the next dev --data-dir DIR finds the same
EtcdClusters and RobustnessRuns, and the members start again on their data. One dev per DIR at a time.

--runtime kubernetes: starts a real single-node Kubernetes cluster on this machine (containerd, kubelet,
kube-proxy, CoreDNS, PVs; needs root and the packages of scripts/install-system-deps.sh), imports the
images of npm run build:images and prints the KUBECONFIG. Nothing else is installed: install the operator
the way a user does, then apply the samples:

  export KUBECONFIG=<printed path>
  helm install etcd-robustness charts/etcd-robustness-operator -n etcd-robustness-system --create-namespace
  kubectl apply -f config/samples/etcdcluster.yaml

Ctrl-C stops everything (members, operator, apiserver; with kubernetes, the whole node and everything it
made). Needs the binaries of npm run build:bins.
`;

export async function runDev(argv: string[], out: (line: string) => void): Promise<number> {
  const { values } = parseArgs({ args: argv, strict: true, options: { runtime: { type: 'string', default: 'local' }, 'data-dir': { type: 'string' }, dir: { type: 'string' }, help: { type: 'boolean', short: 'h' } } });
  if (values.help) {
    out(devUsage);
    return 0;
  }
  if (values.runtime !== 'local' && values.runtime !== 'kubernetes') throw new UsageError(`--runtime: "${values.runtime}" is not local or kubernetes`);
  if (values['data-dir'] !== undefined && values.dir !== undefined) throw new UsageError('--dir is another name of --data-dir: give one of them');
  const dataDir = values['data-dir'] ?? values.dir;
  setLogFormat('text');
  if (values.runtime === 'kubernetes') {
    if (dataDir !== undefined) throw new UsageError('--data-dir applies to --runtime=local (the node keeps everything in its own folder)');
    return runDevNode(out);
  }
  // What killed predecessors left: a dev without --data-dir, its apiserver, runs, members.
  reclaimScratch();
  if (dataDir === undefined) {
    const dir = createScratch('dev');
    try {
      return await runDevLocal(dir, out);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  const dir = path.resolve(dataDir);
  let release: () => void;
  try {
    release = claimFolder(dir, 'etcd-robustness dev');
  } catch (error) {
    if (error instanceof FolderBusyError) throw new UsageError(`--data-dir: ${error.message}`, { cause: error });
    throw error;
  }
  try {
    return await runDevLocal(dir, out);
  } finally {
    release();
  }
}

/**
 * `dev --runtime=local` in `dir`: the apiserver's etcd data (dir/apiserver), the members' data
 * (dir/members), the kubeconfig. A kept dir (--data-dir) brings back the same resources and members at
 * the next start; the runs' work folders are scratch in any case.
 */
async function runDevLocal(dir: string, out: (line: string) => void): Promise<number> {
  out('starting a local kube-apiserver...');
  const apiserver = await LocalApiserver.start({ root: path.join(dir, 'apiserver') });
  const signals = stopSignals();
  const workDir = createScratch('runs');
  let operator: Operator | undefined;
  try {
    const crdFile = path.join(dir, 'crds.yaml');
    writeFileSync(crdFile, customResourceDefinitions().map((crd) => renderCrd(crd)).join('---\n'));
    const applied = await apiserver.kubectl(['apply', '--server-side', '-f', crdFile]);
    if (applied.code !== 0) throw new Error(`installing the CRDs failed: ${applied.stderr}`);
    const established = await apiserver.kubectl(['wait', '--for=condition=Established', '--timeout=60s', 'crd/etcdclusters.etcd.robustness.io', 'crd/robustnessruns.etcd.robustness.io']);
    if (established.code !== 0) throw new Error(`the CRDs did not become established: ${established.stderr}`);
    const kubeconfig = path.join(dir, 'kubeconfig');
    writeFileSync(kubeconfig, apiserver.kubeConfig.exportConfig(), { mode: 0o600 });
    operator = await Operator.start({
      kubeConfig: apiserver.kubeConfig,
      placement: new LocalPlacement({ root: path.join(dir, 'members') }),
      reports: new ConfigMapReportStore({ kubeConfig: apiserver.kubeConfig }),
      workDir,
      namespaces: [],
      identity: `dev-${process.pid}`,
      host: '127.0.0.1',
      metricsPort: 0,
      healthPort: 0,
    });
    out(`data: ${dir}`);
    out(`kube-apiserver: ${apiserver.url}`);
    out(`operator metrics: ${operator.metricsUrl}`);
    out(`export KUBECONFIG=${kubeconfig}`);
    out(`kubectl: ${apiserver.binaries.kubectl} (built by npm run build:bins; any kubectl works)`);
    out('ready: kubectl apply -f config/samples/etcdcluster.yaml (Ctrl-C stops everything)');
    const signal = await signals.received;
    out(`${signal}: stopping the operator, its members and the apiserver`);
    return 0;
  } finally {
    await operator?.close();
    await apiserver.close();
    signals.dispose();
    removeScratch(workDir);
  }
}

/**
 * `dev --runtime=kubernetes`: the test node with every image of `npm run build:images` imported, and
 * nothing installed on it; Ctrl-C or SIGTERM removes the node and everything it made.
 */
async function runDevNode(out: (line: string) => void): Promise<number> {
  // Before anything starts: a missing image fails with a message naming npm run build:images.
  const images = readImagesManifest();
  const pause = imageNamed(images, images.pause);
  // Registered first, so that a Ctrl-C during the start stops the node cleanly once it is up.
  const signals = stopSignals();
  try {
    out('starting a single-node Kubernetes cluster (etcd, kube-apiserver, controller-manager, scheduler, containerd, kubelet, kube-proxy, CoreDNS)...');
    const node = await KubeNode.start({
      pauseImage: pause,
      images: images.images.filter((i) => i !== pause).map((i) => i.file),
      progress: (line) => out(`  ${line}`),
    });
    try {
      out(`kube-apiserver: ${node.url}`);
      out(`node: ${node.nodeName} on bridge ${node.network.bridge} (${node.network.bridgeIp}); Services ${node.serviceCidr}; logs in ${node.root}/logs`);
      out(`images: ${images.images.map((i) => i.name).join(', ')}`);
      out(`export KUBECONFIG=${node.kubeconfigPath}`);
      out(`kubectl: ${node.binaries.kubectl}`);
      out(`helm: ${node.binaries.helm}`);
      out('ready: helm install etcd-robustness charts/etcd-robustness-operator -n etcd-robustness-system --create-namespace; then kubectl apply -f config/samples/etcdcluster.yaml (Ctrl-C stops everything)');
      const signal = await signals.received;
      out(`${signal}: stopping the node and removing everything it made`);
    } finally {
      await node.close();
    }
    out('stopped');
    return 0;
  } finally {
    signals.dispose();
  }
}
