/**
 * The node's owner record (owner.json in the node's folder): who runs the node, and what it changed on
 * the machine outside its folder, so that close() — or the next start, after the owner was killed —
 * puts it back. Created with O_EXCL: it is also the machine-wide lock (one node at a time).
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import type { NodeNetwork } from './layout.ts';
import { ownerAlive, processStartTime } from '../processes.ts';

// The liveness check is shared with the transient folders' owners (src/processes.ts).
export { ownerAlive, processStartTime };

/**
 * Sysctls the node's components may change: the kubelet's "kernel tunables" (set unless
 * protectKernelDefaults), kube-proxy's route_localnet and conntrack settings, and forwarding.
 */
const watchedSysctls = [
  'vm.overcommit_memory',
  'vm.panic_on_oom',
  'kernel.panic',
  'kernel.panic_on_oops',
  'kernel.keys.root_maxkeys',
  'kernel.keys.root_maxbytes',
  'net.ipv4.ip_forward',
  'net.ipv4.conf.all.forwarding',
  'net.ipv4.conf.all.route_localnet',
  'net.bridge.bridge-nf-call-iptables',
  'net.bridge.bridge-nf-call-ip6tables',
  'net.netfilter.nf_conntrack_max',
  'net.netfilter.nf_conntrack_tcp_timeout_established',
  'net.netfilter.nf_conntrack_tcp_timeout_close_wait',
  'net.netfilter.nf_conntrack_tcp_be_liberal',
] as const;

/**
 * Folders outside the node's own that its components create when missing (removed again only then):
 * the kubelet's log links and device-plugin socket (both fixed paths), containerd 1.6's shim sockets,
 * the CNI result cache.
 */
export const outsideFolders = ['/var/log/containers', '/var/lib/kubelet', '/var/lib/kubelet/device-plugins', '/run/containerd', '/run/containerd/s', '/var/lib/cni', '/var/lib/cni/results'] as const;

export interface OwnerRecord {
  pid: number;
  /** The owner's start time (field 22 of /proc/<pid>/stat): a recycled pid is not the owner. */
  pidStart: string;
  startedAt: string;
  network?: NodeNetwork;
  /** Values before the node started. */
  sysctls: Record<string, string>;
  /** Which of outsideFolders existed before the node started. */
  existingFolders: string[];
  /** nftables tables (`family name`) that existed before the node started. */
  nftTables: string[];
}

export function sysctlPath(name: string): string {
  return `/proc/sys/${name.replaceAll('.', '/')}`;
}

export function readSysctl(name: string): string | undefined {
  try {
    return readFileSync(sysctlPath(name), 'utf8').trim();
  } catch {
    return undefined;
  }
}

export function snapshotSysctls(): Record<string, string> {
  const values: Record<string, string> = {};
  for (const name of watchedSysctls) {
    const value = readSysctl(name);
    if (value !== undefined) values[name] = value;
  }
  return values;
}

export function readOwner(file: string): OwnerRecord | undefined {
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as OwnerRecord;
  } catch {
    // Torn by a kill mid-write (it is written by rename, so this is unlikely): nothing to restore from it.
    return undefined;
  }
}

/** Creates the record; false if one exists already (another node, alive or dead). */
export function createOwner(file: string, record: OwnerRecord): boolean {
  try {
    writeFileSync(file, JSON.stringify(record, null, 2), { flag: 'wx', mode: 0o600 });
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  }
}

export function updateOwner(file: string, record: OwnerRecord): void {
  writeFileSync(`${file}.tmp`, JSON.stringify(record, null, 2), { mode: 0o600 });
  renameSync(`${file}.tmp`, file);
}
