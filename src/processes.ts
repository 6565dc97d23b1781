/**
 * Processes on this machine as /proc shows them: whether one is alive, and who owns something. An owner
 * is a pid and that process's start time, so that a pid the kernel recycled for another process is not
 * taken for the owner. Shared by the test node's owner record (src/node/owner.ts) and the transient
 * folders of run --local, the operator and dev (src/local/scratch.ts).
 */
import { readdirSync, readFileSync } from 'node:fs';

/** A process, told apart from a later one with the same pid by its start time. */
export interface ProcessIdentity {
  pid: number;
  /** The start time (field 22 of /proc/<pid>/stat, clock ticks since boot). */
  pidStart: string;
}

/**
 * The fields of /proc/<pid>/stat from field 3 (the state) on, or undefined when there is no such process.
 * The command name (field 2) may hold spaces: the fields are counted after its closing parenthesis.
 */
export function statFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** The process exists and is not a zombie (a killed container waiting for its reaper is gone for us). */
export function pidAlive(pid: number): boolean {
  const fields = statFields(pid);
  return fields !== undefined && fields[0] !== 'Z';
}

/** The start time of a live process, or undefined when there is none with this pid. */
export function processStartTime(pid: number): string | undefined {
  return statFields(pid)?.[19];
}

/**
 * The owner still runs: a process with its pid exists, started when the owner did (not a recycled pid),
 * and is not a zombie (it has exited; only its exit status waits for its parent).
 */
export function ownerAlive(owner: ProcessIdentity): boolean {
  const fields = statFields(owner.pid);
  return fields !== undefined && fields[0] !== 'Z' && fields[19] === owner.pidStart;
}

/** This process, or undefined where /proc cannot tell (then nobody's liveness can be judged either). */
export function currentProcess(): ProcessIdentity | undefined {
  const pidStart = processStartTime(process.pid);
  return pidStart === undefined ? undefined : { pid: process.pid, pidStart };
}

/** Pids whose command line mentions `needle` (e.g. a folder: the processes working in it), this one excepted. */
export function pidsWithArgument(needle: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (cmdline.includes(needle)) pids.push(pid);
    } catch {
      // Gone meanwhile.
    }
  }
  return pids;
}
