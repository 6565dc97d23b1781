/**
 * The fault agent's view of its member's etcd process: finding it in /proc by its data dir (its
 * `--data-dir` flag or ETCD_DATA_DIR), which works for a local process and for a container in a pod
 * that shares its process namespace, and signalling it.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { AgentHttpError } from './agent-request.ts';

function isEtcdExecutable(argv0: string | undefined): boolean {
  if (argv0 === undefined) return false;
  const base = path.basename(argv0);
  return base === 'etcd' || /^etcd[-_]v?\d/.test(base);
}

/** The data dir a command line gives etcd (`--data-dir=X`, `--data-dir X`, one dash too), if any. */
export function dataDirArgument(args: readonly string[]): string | undefined {
  for (let i = 1; i < args.length; i++) {
    const arg = args[i]!;
    const match = /^--?data-dir(?:=(.*))?$/.exec(arg);
    if (!match) continue;
    return match[1] ?? args[i + 1];
  }
  return undefined;
}

function readProcFile(procRoot: string, pid: number, file: string): string | undefined {
  try {
    return readFileSync(path.join(procRoot, String(pid), file), 'latin1');
  } catch {
    return undefined;
  }
}

/** The data dir of the etcd process `pid` (absolute), or undefined when it is not an etcd process. */
export function etcdDataDirOf(pid: number, procRoot = '/proc'): string | undefined {
  const cmdline = readProcFile(procRoot, pid, 'cmdline');
  if (!cmdline) return undefined; // gone, a kernel thread or a zombie
  const args = cmdline.split('\0');
  if (args.at(-1) === '') args.pop();
  if (!isEtcdExecutable(args[0])) return undefined;
  let dir = dataDirArgument(args);
  if (dir === undefined) {
    const environ = readProcFile(procRoot, pid, 'environ') ?? '';
    dir = environ.split('\0').find((e) => e.startsWith('ETCD_DATA_DIR='))?.slice('ETCD_DATA_DIR='.length);
  }
  if (dir === undefined || dir === '') return undefined;
  if (path.isAbsolute(dir)) return path.resolve(dir);
  try {
    return path.resolve(readlinkSync(path.join(procRoot, String(pid), 'cwd')), dir);
  } catch {
    return undefined;
  }
}

/** The pid of the etcd process that serves `dataDir`, found by scanning /proc; undefined if none runs. */
export function findEtcdProcess(dataDir: string, procRoot = '/proc'): number | undefined {
  const wanted = path.resolve(dataDir);
  let entries: string[];
  try {
    entries = readdirSync(procRoot);
  } catch {
    return undefined;
  }
  const pids = entries.filter((e) => /^\d+$/.test(e)).map(Number).sort((a, b) => a - b);
  return pids.find((pid) => pid !== process.pid && etcdDataDirOf(pid, procRoot) === wanted);
}

/** Signals a process; ESRCH (already gone) is not an error. */
export function signalProcess(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(pid, signal);
    return true;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ESRCH') return false;
    if (code === 'EPERM') throw new AgentHttpError(409, `not permitted to send ${signal} to etcd process ${pid} (the agent must run as etcd's user, sharing its process namespace)`);
    throw error;
  }
}
