/**
 * Removing everything a node made, whether its owner closes it or was killed (-9) and the next start
 * reclaims it: processes (the node's components and containerd's shims by their command line, the
 * containers by their cgroup), mounts under the node's folder, the Pods' cgroups, kube-proxy's rules,
 * the bridge, changed sysctls, the few files outside the node's folder, then the folder itself.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readlinkSync, rmdirSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { onTimeout, pollUntil } from '../poll.ts';
import { run } from './host.ts';
import { bridgePrefix, type NodeLayout } from './layout.ts';
import { commandLine, executableName, mountsUnder, pidAlive, pidsInCgroupTree, pidsWithArgument, podCgroups, cgroupTree } from './machine.ts';
import { nodeBridges, removeBridge } from './network.ts';
import { outsideFolders, readSysctl, sysctlPath, type OwnerRecord } from './owner.ts';

/** What is left of a node on this machine; empty when nothing is. */
export async function nodeLeftovers(layout: NodeLayout): Promise<string[]> {
  const left: string[] = [];
  for (const pid of nodePids(layout)) left.push(`process ${pid}: ${commandLine(pid)}`);
  for (const mount of mountsUnder(layout.root)) left.push(`mount ${mount}`);
  for (const cgroup of podCgroups()) left.push(`cgroup ${cgroup}`);
  for (const bridge of await nodeBridges()) left.push(`bridge ${bridge}`);
  if (existsSync(layout.root)) left.push(`folder ${layout.root}`);
  return left;
}

/**
 * The programs of a node: only these are killed for naming the node's folder (a user's
 * `kubectl --kubeconfig=<node folder>/...` in another shell is not the node's).
 */
const nodeExecutables = new Set(['etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kubelet', 'kube-proxy', 'coredns', 'containerd', 'containerd-shim-runc-v2', 'runc']);

/** The node's processes: components and shims (their arguments name the node's folder) and the Pods' processes. */
function nodePids(layout: NodeLayout): number[] {
  const components = pidsWithArgument(layout.root).filter((pid) => nodeExecutables.has(executableName(pid)));
  return livePids([...components, ...podCgroups().flatMap((c) => pidsInCgroupTree(c))]);
}

/** The distinct pids that are alive and not this process. */
function livePids(pids: number[]): number[] {
  return [...new Set(pids)].filter((pid) => pid !== process.pid && pidAlive(pid));
}

/** SIGKILLs what `find` returns until it returns nothing (containers may fork while their siblings die). */
async function killUntilGone(find: () => number[], timeoutMs: number): Promise<void> {
  const gone = (): true | undefined => {
    const pids = find();
    if (pids.length === 0) return true;
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Gone meanwhile.
      }
    }
    return undefined;
  };
  // Past the timeout it gives up quietly (reclaimNode reports what is left).
  await pollUntil(gone, { timeoutMs, intervalMs: 100, timeout: 'the processes gone' }).catch(onTimeout(undefined));
}

/** SIGKILLs the Pods' processes and containerd's shims (not the node's components), until none is left. */
export async function killPodProcesses(layout: NodeLayout, timeoutMs = 15_000): Promise<void> {
  await killUntilGone(() => livePids([...pidsWithArgument(layout.containerdSocket), ...podCgroups().flatMap((c) => pidsInCgroupTree(c))]), timeoutMs);
}

/** Lazily unmounts everything under the node's folder (the kubelet's volumes, containers' root filesystems, netns). */
async function unmountAll(root: string): Promise<void> {
  for (let pass = 0; pass < 5; pass++) {
    const found = mountsUnder(root);
    if (found.length === 0) return;
    for (const mount of found) await run('umount', ['-l', mount]);
  }
}

/** Removes the Pods' cgroups in every hierarchy, children first (a cgroup just emptied may be busy briefly). */
async function removePodCgroups(): Promise<void> {
  for (let pass = 0; pass < 20; pass++) {
    const roots = podCgroups();
    if (roots.length === 0) return;
    for (const root of roots) {
      for (const dir of cgroupTree(root)) {
        try {
          rmdirSync(dir);
        } catch {
          // Busy or already gone: the next pass retries.
        }
      }
    }
    await sleep(100);
  }
}

const ownChains = /^(KUBE|CNI)-/;

/**
 * kube-proxy's own clean-up, then whatever it leaves (an empty chain, a jump): every KUBE-/CNI- rule and
 * chain in the iptables tables, and the nftables tables that appeared while the node ran and are empty now.
 */
async function removeProxyRules(kubeProxy: string | undefined, record: OwnerRecord | undefined): Promise<void> {
  if (kubeProxy !== undefined && existsSync(kubeProxy)) await run(kubeProxy, ['--cleanup', '--v=0'], { timeoutMs: 60_000 });
  for (const tool of ['iptables', 'ip6tables']) {
    for (const table of ['filter', 'nat', 'mangle', 'raw']) await removeOwnChains(tool, table);
  }
  const before = new Set(record?.nftTables ?? []);
  for (const table of await nftTables()) {
    if (before.has(table)) continue;
    const [family = '', name = ''] = table.split(' ');
    const listing = await run('nft', ['-j', 'list', 'table', family, name]);
    if (listing.code === 0 && !listing.stdout.includes('"rule"')) await run('nft', ['delete', 'table', family, name]);
  }
}

/** Deletes the rules jumping to KUBE-/CNI- chains (by number, last first), then flushes and deletes those chains. */
async function removeOwnChains(tool: string, table: string): Promise<void> {
  const listing = await run(tool, ['-w', '-t', table, '-S']);
  if (listing.code !== 0) return;
  const chains = listing.stdout.split('\n').filter((l) => l.startsWith('-N ') || l.startsWith('-P ')).map((l) => l.split(' ')[1] ?? '');
  const own = chains.filter((c) => ownChains.test(c));
  for (const chain of chains.filter((c) => !ownChains.test(c))) {
    const numbered = await run(tool, ['-w', '-t', table, '-L', chain, '-n', '--line-numbers']);
    const jumps = numbered.stdout.split('\n').map((l) => l.trim().split(/\s+/)).filter((f) => /^\d+$/.test(f[0] ?? '') && ownChains.test(f[1] ?? '')).map((f) => Number(f[0]));
    for (const number of jumps.sort((a, b) => b - a)) await run(tool, ['-w', '-t', table, '-D', chain, String(number)]);
  }
  for (const chain of own) await run(tool, ['-w', '-t', table, '-F', chain]);
  for (const chain of own) await run(tool, ['-w', '-t', table, '-X', chain]);
}

/** `family name` of every nftables table. */
export async function nftTables(): Promise<string[]> {
  const listing = await run('nft', ['list', 'tables']);
  return listing.stdout.split('\n').map((l) => l.trim()).filter((l) => l.startsWith('table ')).map((l) => l.slice('table '.length));
}

/** Kube-proxy's Service rules of someone else (another cluster on this machine) would fight the node's kube-proxy. */
export async function foreignProxyRules(): Promise<string | undefined> {
  const nat = await run('iptables', ['-w', '-t', 'nat', '-S', 'KUBE-SERVICES']);
  if (nat.code === 0) return 'iptables chain nat/KUBE-SERVICES';
  if ((await nftTables()).some((t) => t.endsWith(' kube-proxy'))) return 'nftables table kube-proxy';
  return undefined;
}

function restoreSysctls(record: OwnerRecord | undefined): void {
  for (const [name, value] of Object.entries(record?.sysctls ?? {})) {
    if (readSysctl(name) === value) continue;
    try {
      writeFileSync(sysctlPath(name), value);
    } catch {
      // Vanished with its interface or module; nothing to restore.
    }
  }
}

/** The ids of every sandbox and container the node's containerd knew (its task and CRI sandbox folders). */
function containerIds(layout: NodeLayout): { namespace: string; id: string }[] {
  const tasks = path.join(layout.containerdState, 'io.containerd.runtime.v2.task');
  const sandboxes = path.join(layout.containerdRoot, 'io.containerd.grpc.v1.cri', 'sandboxes');
  return [
    ...safeList(tasks).flatMap((namespace) => safeList(path.join(tasks, namespace)).map((id) => ({ namespace, id }))),
    ...safeList(sandboxes).map((id) => ({ namespace: 'k8s.io', id })),
  ];
}

/**
 * containerd 1.6's shims put their sockets in /run/containerd/s (not under containerd's state folder),
 * named by sha256(<containerd address>/<namespace>/<id>); a killed shim leaves its socket there. The
 * CNI result cache (/var/lib/cni/results) keeps `<network>-<id>-<if>` until a CNI DEL that a forced
 * teardown never runs.
 */
function removeContainerFiles(layout: NodeLayout): void {
  for (const { namespace, id } of containerIds(layout)) {
    const socket = createHash('sha256').update(path.join(layout.containerdSocket, namespace, id)).digest('hex');
    rmSync(path.join('/run/containerd/s', socket), { force: true });
    rmSync(path.join('/var/lib/cni/results', `cni-loopback-${id}-lo`), { force: true });
  }
  for (const entry of safeList('/var/lib/cni/results')) {
    if (new RegExp(`^${bridgePrefix}\\d+-`).test(entry)) rmSync(path.join('/var/lib/cni/results', entry), { force: true });
  }
}

function safeList(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** Files of the node outside its folder: the kubelet's /var/log/containers links and device-plugin socket, containerd's and CNI's. */
function removeOutsideFiles(layout: NodeLayout, record: OwnerRecord | undefined): void {
  for (const entry of safeList('/var/log/containers')) {
    const link = path.join('/var/log/containers', entry);
    try {
      if (readlinkSync(link).startsWith(`${layout.podLogs}/`)) unlinkSync(link);
    } catch {
      // Not a link.
    }
  }
  removeContainerFiles(layout);
  const existed = new Set(record?.existingFolders ?? []);
  // The kubelet's device-plugin socket has a fixed path; it is the node's when the node made its folder.
  if (!existed.has('/var/lib/kubelet/device-plugins')) {
    for (const file of ['kubelet.sock', 'kubelet_internal_checkpoint']) rmSync(path.join('/var/lib/kubelet/device-plugins', file), { force: true });
  }
  // Deepest first, and only folders the node created that are empty now.
  for (const folder of [...outsideFolders].sort((a, b) => b.length - a.length)) {
    if (existed.has(folder)) continue;
    try {
      rmdirSync(folder);
    } catch {
      // Not empty (someone else's files) or absent.
    }
  }
}

/**
 * Removes everything of a node that is still there. `record` is its owner record when there is one;
 * `kubeProxy` the kube-proxy binary for its own clean-up. Returns what could not be removed.
 */
export async function reclaimNode(layout: NodeLayout, record: OwnerRecord | undefined, kubeProxy: string | undefined): Promise<string[]> {
  await killUntilGone(() => nodePids(layout), 15_000);
  await unmountAll(layout.root);
  await removePodCgroups();
  await removeProxyRules(kubeProxy, record);
  const bridges = new Set([...(record?.network ? [record.network.bridge] : []), ...(await nodeBridges())]);
  for (const bridge of bridges) await removeBridge(bridge);
  restoreSysctls(record);
  removeOutsideFiles(layout, record);
  // Never delete through a mount point that is still there: it could lead anywhere on the machine.
  if (mountsUnder(layout.root).length === 0) rmSync(layout.root, { recursive: true, force: true });
  return nodeLeftovers(layout);
}
