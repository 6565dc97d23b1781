/**
 * Reading the machine's state the node's clean-up needs: processes by command line or cgroup, mounts
 * under a folder, cgroup hierarchies.
 */
import { readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import path from 'node:path';
import { pidAlive, pidsWithArgument, statFields } from '../processes.ts';

// Shared with the transient folders' owners (src/processes.ts); the node's clean-up imports them from here.
export { pidAlive, pidsWithArgument, statFields };

/** The cgroup every Pod's processes live under (cgroupfs driver, default cgroupRoot). */
const podsCgroup = 'kubepods';

/** The file name of a process's executable ('' when it is gone); a binary replaced since it started still counts. */
export function executableName(pid: number): string {
  try {
    return path.basename(readlinkSync(`/proc/${pid}/exe`).replace(/ \(deleted\)$/, ''));
  } catch {
    return '';
  }
}

/** A pid's command line, spaces between arguments ('' when it is gone). */
export function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    return '';
  }
}

/** Decodes mountinfo's octal escapes (\040 for a space). */
function unescapeMount(text: string): string {
  return text.replace(/\\([0-7]{3})/g, (_m, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

interface MountEntry {
  mountPoint: string;
  fsType: string;
}

function mounts(): MountEntry[] {
  return readFileSync('/proc/self/mountinfo', 'utf8').trimEnd().split('\n').map((line) => {
    const fields = line.split(' ');
    const separator = fields.indexOf('-');
    return { mountPoint: unescapeMount(fields[4] ?? ''), fsType: fields[separator + 1] ?? '' };
  });
}

/** Mount points at or under `dir`, deepest first (the order to unmount them in). */
export function mountsUnder(dir: string): string[] {
  const prefix = dir.endsWith('/') ? dir : `${dir}/`;
  const found = mounts().map((m) => m.mountPoint).filter((p) => p === dir || p.startsWith(prefix));
  return [...new Set(found)].sort((a, b) => b.split('/').length - a.split('/').length || b.length - a.length);
}

/** The mount points of every cgroup hierarchy (v1 controllers, name=systemd, the unified one). */
function cgroupHierarchies(): string[] {
  return [...new Set(mounts().filter((m) => m.fsType === 'cgroup' || m.fsType === 'cgroup2').map((m) => m.mountPoint))];
}

/** Every folder of a cgroup tree, children before parents; empty when it does not exist. */
export function cgroupTree(root: string): string[] {
  let entries;
  try {
    entries = readdirSync(root, { withFileTypes: true });
  } catch {
    return [];
  }
  const children = entries.filter((e) => e.isDirectory()).flatMap((e) => cgroupTree(path.join(root, e.name)));
  return [...children, root];
}

/** The pids in a cgroup tree. */
export function pidsInCgroupTree(root: string): number[] {
  const pids: number[] = [];
  for (const dir of cgroupTree(root)) {
    try {
      for (const line of readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').split('\n')) {
        if (line.trim() !== '') pids.push(Number(line));
      }
    } catch {
      // Removed meanwhile.
    }
  }
  return pids;
}

/** The Pods' cgroup (kubepods) in each hierarchy where it exists. */
export function podCgroups(): string[] {
  return cgroupHierarchies().map((h) => path.join(h, podsCgroup)).filter((dir) => isDirectory(dir));
}

function isDirectory(dir: string): boolean {
  try {
    return statSync(dir).isDirectory();
  } catch {
    return false;
  }
}
