import { logTail } from '../local/process.ts';

/**
 * A node component (containerd, kubelet, the bridge...) could not be started or did not become ready.
 * The message names the component and carries the tail of its log when it has one.
 */
export class NodeStartError extends Error {
  override name = 'NodeStartError';
  readonly component: string;
  readonly logFile: string | undefined;
  constructor(component: string, reason: string, logFile?: string) {
    const tail = logFile === undefined ? '' : logTail(logFile, 25);
    super(`${component}: ${reason}${tail ? `\n--- ${logFile ?? ''} (last lines) ---\n${tail}` : ''}`);
    this.component = component;
    this.logFile = logFile;
  }
}

/** Another live process owns the machine's test node: only one runs at a time (one Service CIDR, one kube-proxy). */
export class NodeBusyError extends Error {
  override name = 'NodeBusyError';
  readonly ownerPid: number;
  constructor(ownerPid: number, detail: string) {
    super(`a test node is already running on this machine, owned by pid ${ownerPid} (${detail}); stop it first (only one node runs at a time)`);
    this.ownerPid = ownerPid;
  }
}

/** Teardown could not remove everything; the message lists what is left. */
export class NodeCleanupError extends Error {
  override name = 'NodeCleanupError';
  readonly leftovers: string[];
  constructor(leftovers: string[]) {
    super(`the test node left behind:\n  ${leftovers.join('\n  ')}`);
    this.leftovers = leftovers;
  }
}
