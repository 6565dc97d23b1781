/**
 * A real single-node Kubernetes cluster on this machine, for the end-to-end tests and
 * `etcd-robustness dev --runtime=kubernetes`: etcd, kube-apiserver, controller-manager, scheduler,
 * containerd, kubelet, kube-proxy and CoreDNS as child processes, on a bridge of its own. Everything it
 * makes is in one well-known folder or recorded in its owner record, and close() — or the next start,
 * when the owner was killed — removes it all.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { nodeBinaries, type NodeBinaries } from '../local/binaries.ts';
import { LocalEtcdCluster } from '../local/etcd-cluster.ts';
import type { KubectlResult } from '../local/kube-apiserver.ts';
import { freeLoopbackPorts } from '../local/ports.ts';
import { ManagedProcess } from '../local/process.ts';
import { logger } from '../log.ts';
import { corednsRbacManifests } from './addons.ts';
import {
  apiserverArgs,
  apiserverUrl,
  containerdArgs,
  containerdEnv,
  controllerManagerArgs,
  corednsArgs,
  kubeletArgs,
  kubeProxyArgs,
  nodeName,
  schedulerArgs,
  systemEnv,
  type ComponentPorts,
  type KubeconfigFiles,
} from './components.ts';
import { cniConfig, containerdConfig, corefile, kubeletConfig, kubeProxyConfig } from './config-files.ts';
import { NodeBusyError, NodeCleanupError, NodeStartError } from './errors.ts';
import { run } from './host.ts';
import { importImageFiles, imageNamed, readImagesManifest } from './images.ts';
import { kubernetesServiceIp, nodeLayout, serviceCidr, type NodeLayout, type NodeNetwork } from './layout.ts';
import { pidsWithArgument } from './machine.ts';
import { chooseNetwork, createBridge } from './network.ts';
import { createOwner, outsideFolders, ownerAlive, processStartTime, readOwner, snapshotSysctls, updateOwner, type OwnerRecord } from './owner.ts';
import { createNodePki, kubeconfigYaml, type NodePki } from './pki.ts';
import { httpsGet, resolveWith, waitFor } from './readiness.ts';
import { PvReclaimer, storageManifests, type PvPool } from './storage.ts';
import { foreignProxyRules, killPodProcesses, nftTables, reclaimNode } from './teardown.ts';

export interface KubeNodeOptions {
  /** The Pods' sandbox image and its tarball; by default the pause image of `npm run build:images`. */
  pauseImage?: { name: string; file: string };
  /** More image tarballs to import before the node is returned. */
  images?: readonly string[];
  /** Pre-created `local` PVs (default 12 × 2Gi). */
  pvPool?: Partial<PvPool>;
  /** Whole start-up (default 180 s). */
  startTimeoutMs?: number;
  /** Progress lines ("containerd ready"...). */
  progress?: (line: string) => void;
}

/** The node's child processes, by component name. */
type Component = 'kube-apiserver' | 'containerd' | 'kube-controller-manager' | 'kube-scheduler' | 'kube-proxy' | 'coredns' | 'kubelet';

/** What a start has made so far: what a failed start, or close(), must stop. */
interface Parts {
  layout: NodeLayout;
  binaries: NodeBinaries;
  record: OwnerRecord;
  etcd?: LocalEtcdCluster;
  processes: Map<Component, ManagedProcess>;
}

const requiredTools = ['containerd', 'containerd-shim-runc-v2', 'ctr', 'runc', 'ip', 'nft', 'iptables', 'ip6tables', 'openssl', 'sysctl', 'umount', 'setpriv'];
const requiredCniPlugins = ['bridge', 'host-local', 'loopback'];

export class KubeNode {
  /** The API server, on the node's bridge. */
  readonly url: string;
  /** The admin (system:masters) kubeconfig file. */
  readonly kubeconfigPath: string;
  readonly kubeConfig: KubeConfig;
  readonly binaries: NodeBinaries;
  readonly nodeName = nodeName;
  readonly network: NodeNetwork;
  readonly serviceCidr = serviceCidr;
  /** The node's folder (logs in `logs/`). */
  readonly root: string;
  private readonly parts: Parts;
  private readonly reclaimer: PvReclaimer;
  private closing: Promise<void> | undefined;

  private constructor(parts: Parts, network: NodeNetwork, kubeConfig: KubeConfig, reclaimer: PvReclaimer) {
    this.parts = parts;
    this.network = network;
    this.kubeConfig = kubeConfig;
    this.reclaimer = reclaimer;
    this.binaries = parts.binaries;
    this.root = parts.layout.root;
    this.kubeconfigPath = parts.layout.adminKubeconfig;
    this.url = apiserverUrl(network);
  }

  static async start(options: KubeNodeOptions = {}): Promise<KubeNode> {
    const progress = options.progress ?? ((line: string) => logger.info(`node: ${line}`));
    const deadline = Date.now() + (options.startTimeoutMs ?? 180_000);
    checkMachine();
    const binaries = nodeBinaries();
    const pause = options.pauseImage ?? defaultPauseImage();
    const layout = nodeLayout();
    const record = await acquire(layout, binaries, progress);
    const parts: Parts = { layout, binaries, record, processes: new Map() };
    try {
      const started = await startParts(parts, pause, options, deadline, progress);
      return new KubeNode(parts, started.network, started.kubeConfig, started.reclaimer);
    } catch (error) {
      // The start's own error is the one to report; the clean-up's problems are logged.
      try {
        const leftovers = await teardown(parts);
        if (leftovers.length > 0) logger.warn(`the failed node start left: ${leftovers.join('; ')}`);
      } catch (cleanupError) {
        logger.warn(`cleaning up after the failed node start: ${(cleanupError as Error).message}`);
      }
      throw error;
    }
  }

  /** Imports image tarballs into the node's containerd (the names inside them are what Pods use). */
  async importImages(files: readonly string[]): Promise<void> {
    await importImageFiles(this.parts.layout.containerdSocket, files);
  }

  /** Runs kubectl as admin; never throws for a non-zero exit. */
  async kubectl(args: readonly string[], stdin?: string): Promise<KubectlResult> {
    return kubectlAs(this.binaries.kubectl, this.kubeconfigPath, args, stdin);
  }

  /** Resident memory (MiB) of each component now, and of containerd's shims together. */
  memory(): Record<string, number> {
    const rss = (pid: number | undefined): number => {
      if (pid === undefined) return 0;
      try {
        const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
        return match ? Math.round(Number(match[1]) / 1024) : 0;
      } catch {
        return 0;
      }
    };
    const result: Record<string, number> = {};
    result['etcd'] = rss(this.parts.etcd?.members[0]?.pid);
    for (const [name, proc] of this.parts.processes) result[name] = rss(proc.pid);
    // containerd's own arguments name its config file, the shims' name its socket.
    result['shims'] = pidsWithArgument(this.parts.layout.containerdSocket).reduce((sum, pid) => sum + rss(pid), 0);
    return result;
  }

  /**
   * Stops the node and removes everything it made. Gracefully first: the Pods are deleted and the
   * kubelet tears their sandboxes down (CNI DEL); then whatever is left is killed and removed.
   * Throws NodeCleanupError listing anything that could not be removed.
   */
  async close(): Promise<void> {
    this.closing ??= this.closeOnce();
    return this.closing;
  }

  private async closeOnce(): Promise<void> {
    await this.reclaimer.stop();
    const { processes } = this.parts;
    // Nothing recreates or schedules Pods while they are being deleted.
    await Promise.all([processes.get('kube-controller-manager')?.stop(5000), processes.get('kube-scheduler')?.stop(5000)]);
    await this.deletePods(45_000);
    const leftovers = await teardown(this.parts);
    if (leftovers.length > 0) throw new NodeCleanupError(leftovers);
  }

  /**
   * Deletes every Pod (1 s grace) and waits until none is bound to the node and the kubelet released
   * their addresses. A Pod created meanwhile (an operator replacing its members) stays unscheduled: the
   * scheduler is stopped, so it has no sandbox to tear down.
   */
  private async deletePods(timeoutMs: number): Promise<void> {
    const kubelet = this.parts.processes.get('kubelet');
    if (!kubelet?.running || !this.parts.processes.get('kube-apiserver')?.running) return;
    await this.kubectl(['delete', 'pods', '--all', '--all-namespaces', '--grace-period=1', '--wait=false']);
    const api = this.kubeConfig.makeApiClient(CoreV1Api);
    const networks = path.join(this.parts.layout.cniNetworks, this.network.bridge);
    try {
      await waitFor({ component: 'kubelet (Pod teardown)', process: kubelet }, Date.now() + timeoutMs, async () => {
        const pods = await api.listPodForAllNamespaces({ fieldSelector: `spec.nodeName=${nodeName}` });
        const addresses = allocatedAddresses(networks);
        if (pods.items.length === 0 && addresses === 0) return true;
        return `${pods.items.length} Pods on the node, ${addresses} Pod addresses allocated`;
      });
    } catch (error) {
      logger.warn(`node: Pods were not torn down gracefully, forcing: ${(error as Error).message}`);
    }
  }
}

/** The number of Pod addresses host-local still holds (one file per address, besides its lock and last-reserved files). */
function allocatedAddresses(dir: string): number {
  try {
    return readdirSync(dir).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f)).length;
  } catch {
    return 0;
  }
}

/** The pause image of `npm run build:images`. */
function defaultPauseImage(): { name: string; file: string } {
  const manifest = readImagesManifest();
  return imageNamed(manifest, manifest.pause);
}

/** Root, and the machine's tools the node runs. */
function checkMachine(): void {
  if (process.getuid?.() !== 0) throw new NodeStartError('node', 'needs root (it creates a bridge, cgroups and mounts, and runs containerd and the kubelet)');
  const dirs = systemEnv()['PATH']?.split(':') ?? [];
  const missing = requiredTools.filter((tool) => !dirs.some((d) => existsSync(path.join(d, tool))));
  missing.push(...requiredCniPlugins.filter((p) => !existsSync(path.join('/usr/lib/cni', p))).map((p) => `/usr/lib/cni/${p}`));
  if (missing.length > 0) throw new NodeStartError('node', `missing on this machine: ${missing.join(', ')} (run scripts/install-system-deps.sh)`);
}

/**
 * Takes the machine's node lock (the owner record, created exclusively). A live owner means another node
 * runs: refused. A dead one (killed -9) left things behind: they are removed first.
 */
async function acquire(layout: NodeLayout, binaries: NodeBinaries, progress: (line: string) => void): Promise<OwnerRecord> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const previous = readOwner(layout.ownerFile);
    if (previous && ownerAlive(previous)) throw new NodeBusyError(previous.pid, `its folder is ${layout.root}`);
    if (existsSync(layout.root) || previous) {
      progress(`removing what a previous node left (owner pid ${previous?.pid ?? 'unknown'}, no longer running)`);
      const left = await reclaimNode(layout, previous, binaries.kubeProxy);
      if (left.length > 0) throw new NodeStartError('node', `a previous node's leftovers could not be removed:\n  ${left.join('\n  ')}`);
    }
    const foreign = await foreignProxyRules();
    if (foreign) throw new NodeStartError('kube-proxy', `this machine already has Service rules of another cluster (${foreign}); the node's kube-proxy would fight them`);
    mkdirSync(layout.root, { recursive: true, mode: 0o755 });
    const record: OwnerRecord = {
      pid: process.pid,
      pidStart: processStartTime(process.pid) ?? '',
      startedAt: new Date().toISOString(),
      sysctls: snapshotSysctls(),
      existingFolders: outsideFolders.filter((f) => existsSync(f)),
      nftTables: await nftTables(),
    };
    if (createOwner(layout.ownerFile, record)) return record;
  }
  throw new NodeStartError('node', `could not take the node lock ${layout.ownerFile}`);
}

function kubectlAs(kubectl: string, kubeconfig: string, args: readonly string[], stdin?: string): Promise<KubectlResult> {
  return run(kubectl, [`--kubeconfig=${kubeconfig}`, ...args], { ...(stdin === undefined ? {} : { stdin }), env: { ...process.env, KUBECONFIG: kubeconfig } });
}

interface Started {
  network: NodeNetwork;
  kubeConfig: KubeConfig;
  reclaimer: PvReclaimer;
}

/** Starts every component in order, recording each in `parts` (for teardown if a later one fails). */
async function startParts(parts: Parts, pause: { name: string; file: string }, options: KubeNodeOptions, deadline: number, progress: (line: string) => void): Promise<Started> {
  const { layout, binaries, record, processes } = parts;
  for (const dir of [layout.logs, layout.etcd, layout.cniConfDir, layout.cniNetworks, layout.kubeletRoot, layout.podLogs, layout.volumePluginDir, layout.kubeconfigs, layout.manifests, layout.pvs, path.dirname(layout.containerdSocket)]) {
    mkdirSync(dir, { recursive: true });
  }
  const network = await chooseNetwork(serviceCidr);
  record.network = network;
  updateOwner(layout.ownerFile, record);
  await createBridge(network, serviceCidr);
  progress(`bridge ${network.bridge} ${network.bridgeIp}/24`);

  const pki = await createNodePki(layout.pki, { bridgeIp: network.bridgeIp, kubernetesServiceIp, nodeName });
  const url = apiserverUrl(network);
  const kubeconfigs = writeKubeconfigs(layout, url, pki);
  const [kubeletHealthz = 0, controllerManager = 0, scheduler = 0, proxyHealthz = 0, proxyMetrics = 0, corednsReady = 0] = await freeLoopbackPorts(6);
  const ports: ComponentPorts = { kubeletHealthz, controllerManager, scheduler, proxyHealthz, proxyMetrics, corednsReady };
  writeFileSync(path.join(layout.cniConfDir, `10-${network.bridge}.conflist`), cniConfig(layout, network, serviceCidr));
  writeFileSync(layout.containerdConfig, containerdConfig(layout, pause.name));
  writeFileSync(layout.kubeletConfig, kubeletConfig(layout, network, pki, ports.kubeletHealthz));
  writeFileSync(layout.kubeProxyConfig, kubeProxyConfig(kubeconfigs.kubeProxy, network, nodeName, ports.proxyHealthz, ports.proxyMetrics));
  writeFileSync(layout.corefile, corefile(network, kubeconfigs.coredns, ports.corednsReady));

  const launch = (name: Component, command: string, args: string[], env: NodeJS.ProcessEnv = systemEnv()): ManagedProcess => {
    const proc = new ManagedProcess(name, command, args, { logFile: logFileOf(layout, name), env, parentDeathSignal: 'SIGKILL' });
    processes.set(name, proc);
    return proc;
  };

  // containerd and etcd do not need each other: start both, then the API server.
  const containerd = launch('containerd', 'containerd', containerdArgs(layout), containerdEnv());
  parts.etcd = await LocalEtcdCluster.start({ size: 1, dataRoot: layout.etcd });
  const apiserver = launch('kube-apiserver', binaries.kubeApiserver, apiserverArgs({ layout, network, pki, etcdEndpoints: parts.etcd.endpoints, serviceCidr }));
  await waitFor({ component: 'containerd', process: containerd, logFile: logFileOf(layout, 'containerd') }, deadline, async () => {
    const version = await run('ctr', ['--address', layout.containerdSocket, 'version'], { timeoutMs: 5000 });
    return version.code === 0 ? true : version.stderr.trim();
  });
  try {
    await importImageFiles(layout.containerdSocket, [pause.file, ...(options.images ?? [])]);
  } catch (error) {
    throw new NodeStartError('containerd', `importing the images failed: ${(error as Error).message}`, logFileOf(layout, 'containerd'));
  }
  progress('containerd ready, images imported');
  await waitFor({ component: 'kube-apiserver', process: apiserver, logFile: logFileOf(layout, 'kube-apiserver') }, deadline, async () => {
    const answer = await httpsGet(`${url}/readyz`, pki.ca.cert, pki.admin);
    return answer.status === 200 ? true : `HTTP ${answer.status}: ${answer.text.slice(0, 200)}`;
  });
  progress(`kube-apiserver ready at ${url}`);

  launch('kube-controller-manager', binaries.kubeControllerManager, controllerManagerArgs({ layout, pki, kubeconfig: kubeconfigs.controllerManager, port: ports.controllerManager, serviceCidr, podCidr: network.podCidr }));
  launch('kube-scheduler', binaries.kubeScheduler, schedulerArgs({ kubeconfig: kubeconfigs.scheduler, port: ports.scheduler }));
  const kubeConfig = loadKubeConfig(layout.adminKubeconfig);
  const kubectl = (args: readonly string[]): Promise<KubectlResult> => kubectlAs(binaries.kubectl, layout.adminKubeconfig, args);
  await applyManifests(kubectl, layout, {
    'coredns-rbac.yaml': corednsRbacManifests(),
    'storage.yaml': storageManifests(layout.pvs, nodeName, { count: options.pvPool?.count ?? 12, size: options.pvPool?.size ?? '2Gi' }),
  });
  const coredns = launch('coredns', binaries.coredns, corednsArgs(layout));
  const kubeProxy = launch('kube-proxy', binaries.kubeProxy, kubeProxyArgs(layout));
  const kubelet = launch('kubelet', binaries.kubelet, kubeletArgs({ layout, network, kubeconfig: kubeconfigs.kubelet }));

  await waitForNode(kubeConfig, kubelet, layout, deadline);
  progress(`node ${nodeName} Ready`);
  const since = Date.now();
  const after = (what: string) => (): void => progress(`${what} (${((Date.now() - since) / 1000).toFixed(1)} s after the node was Ready)`);
  await Promise.all([
    waitFor({ component: 'coredns', process: coredns, logFile: logFileOf(layout, 'coredns') }, deadline, async () => {
      const addresses = await resolveWith(network.bridgeIp, 'kubernetes.default.svc.cluster.local');
      return addresses.includes(kubernetesServiceIp) ? true : `kubernetes.default.svc resolved to ${addresses.join(',')}`;
    }).then(after('CoreDNS answers')),
    // Through the Service IP: proves kube-proxy has programmed the kubernetes Service (the host routes
    // the Service CIDR to the bridge, so an unprogrammed IP goes nowhere).
    waitFor({ component: 'kube-proxy', process: kubeProxy, logFile: logFileOf(layout, 'kube-proxy') }, deadline, async () => {
      const answer = await httpsGet(`https://${kubernetesServiceIp}/readyz`, pki.ca.cert, pki.admin, 2000);
      return answer.status === 200 ? true : `HTTP ${answer.status}`;
    }).then(after('kube-proxy programmed the kubernetes Service')),
    waitFor({ component: 'kube-controller-manager', process: processes.get('kube-controller-manager'), logFile: logFileOf(layout, 'kube-controller-manager') }, deadline, async () => {
      const accounts = await kubectl(['get', 'serviceaccount', 'default', '-n', 'default', '-o', 'name']);
      return accounts.code === 0 ? true : accounts.stderr.trim();
    }).then(after('the default ServiceAccount exists')),
  ]);
  const reclaimer = new PvReclaimer(kubeConfig);
  reclaimer.start();
  return { network, kubeConfig, reclaimer };
}

function logFileOf(layout: NodeLayout, component: string): string {
  return path.join(layout.logs, `${component}.log`);
}

function loadKubeConfig(file: string): KubeConfig {
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(file);
  return kubeConfig;
}

/** One kubeconfig per identity, each with its client certificate embedded. */
function writeKubeconfigs(layout: NodeLayout, url: string, pki: NodePki): KubeconfigFiles {
  const write = (name: string, client: NodePki['admin'], user: string): string => {
    const file = path.join(layout.kubeconfigs, `${name}.kubeconfig`);
    writeFileSync(file, kubeconfigYaml(url, pki.ca.cert, client, user), { mode: 0o600 });
    return file;
  };
  write('admin', pki.admin, 'admin');
  return {
    kubelet: write('kubelet', pki.kubelet, `system:node:${nodeName}`),
    controllerManager: write('controller-manager', pki.controllerManager, 'system:kube-controller-manager'),
    scheduler: write('scheduler', pki.scheduler, 'system:kube-scheduler'),
    kubeProxy: write('kube-proxy', pki.kubeProxy, 'system:kube-proxy'),
    coredns: write('coredns', pki.coredns, 'system:coredns'),
  };
}

async function applyManifests(kubectl: (args: readonly string[]) => Promise<KubectlResult>, layout: NodeLayout, manifests: Record<string, string>): Promise<void> {
  for (const [name, text] of Object.entries(manifests)) {
    const file = path.join(layout.manifests, name);
    writeFileSync(file, text);
    const applied = await kubectl(['apply', '-f', file]);
    if (applied.code !== 0) throw new NodeStartError('kube-apiserver', `applying ${name} failed: ${applied.stderr.trim()}`);
  }
}

async function waitForNode(kubeConfig: KubeConfig, kubelet: ManagedProcess, layout: NodeLayout, deadline: number): Promise<void> {
  const api = kubeConfig.makeApiClient(CoreV1Api);
  await waitFor({ component: 'kubelet', process: kubelet, logFile: logFileOf(layout, 'kubelet') }, deadline, async () => {
    const found = await api.readNode({ name: nodeName });
    const ready = found.status?.conditions?.find((c) => c.type === 'Ready');
    return ready?.status === 'True' ? true : `Ready=${ready?.status ?? 'unknown'}: ${ready?.message ?? ''}`;
  });
}

/** Stops the node's processes (SIGTERM first), then removes everything of it; returns what is left. */
async function teardown(parts: Parts): Promise<string[]> {
  const { processes } = parts;
  const stop = async (name: Component, graceMs: number): Promise<void> => {
    await processes.get(name)?.stop(graceMs);
  };
  await Promise.all([stop('kube-controller-manager', 5000), stop('kube-scheduler', 5000)]);
  await stop('kubelet', 10_000);
  // The containers and their shims do not die with containerd: killed while it still runs, it sees them exit.
  await killPodProcesses(parts.layout);
  await stop('containerd', 10_000);
  await Promise.all([stop('kube-proxy', 5000), stop('coredns', 5000)]);
  await stop('kube-apiserver', 10_000);
  await parts.etcd?.close();
  return reclaimNode(parts.layout, parts.record, parts.binaries.kubeProxy);
}

