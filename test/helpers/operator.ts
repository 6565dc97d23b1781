// Helpers of the operator's integration tests: kubectl with assertions, polling, and /metrics samples.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Operator } from '../../src/controller/operator.ts';
import { ConfigMapReportStore } from '../../src/controller/report-store/index.ts';
import { LocalPlacement } from '../../src/controller/placement/local.ts';
import { TestApiserver } from './kube-apiserver.ts';

/** Anything that runs kubectl against its cluster: the loopback apiserver or a whole test node. */
export type Kubectl = Pick<TestApiserver, 'kubectl'>;

/** Runs kubectl and fails the test on a non-zero exit; returns stdout. */
export async function kubectlOk(apiserver: Kubectl, args: string[], stdin?: string): Promise<string> {
  const result = await apiserver.kubectl(args, stdin);
  assert.equal(result.code, 0, `kubectl ${args.join(' ')} failed: ${result.stderr}`);
  return result.stdout;
}

/** `kubectl get -o json`; undefined when the object does not exist. */
export async function kubectlJson<T>(apiserver: Kubectl, args: string[]): Promise<T | undefined> {
  const result = await apiserver.kubectl([...args, '-o', 'json']);
  if (result.code !== 0) {
    if (/NotFound|not found/.test(result.stderr)) return undefined;
    throw new Error(`kubectl ${args.join(' ')} failed: ${result.stderr}`);
  }
  return JSON.parse(result.stdout) as T;
}

/**
 * The operator in this process with the local placement, watching `namespace`, with a short Lease
 * (4 s) so that tests of a replica's takeover stay quick; reports in ConfigMaps.
 */
export async function startLocalOperator(apiserver: TestApiserver, placement: LocalPlacement, namespace: string, identity: string): Promise<Operator> {
  return Operator.start({
    kubeConfig: apiserver.kubeConfig,
    placement,
    reports: new ConfigMapReportStore({ kubeConfig: apiserver.kubeConfig }),
    namespaces: [namespace],
    identity,
    leaderElection: { namespace, name: 'etcd-robustness-operator', leaseDurationMs: 4000, renewDeadlineMs: 3000, retryPeriodMs: 500 },
    host: '127.0.0.1',
    metricsPort: 0,
    healthPort: 0,
  });
}

/**
 * What the operator's end-to-end tests start with: a real kube-apiserver holding the CRDs and `namespace`,
 * and the operator (local runtime, members in a temporary folder) watching it. close() stops the operator
 * (its runs heal their faults, its members stop), then the API server, and deletes the folder.
 */
export class LocalOperatorEnvironment {
  readonly apiserver: TestApiserver;
  readonly placement: LocalPlacement;
  readonly operator: Operator;
  readonly root: string;

  private constructor(apiserver: TestApiserver, placement: LocalPlacement, operator: Operator, root: string) {
    this.apiserver = apiserver;
    this.placement = placement;
    this.operator = operator;
    this.root = root;
  }

  static async start(namespace: string, identity: string): Promise<LocalOperatorEnvironment> {
    const apiserver = await TestApiserver.start();
    const root = mkdtempSync(path.join(os.tmpdir(), `${identity}-`));
    try {
      await installCrds(apiserver);
      await kubectlOk(apiserver, ['create', 'namespace', namespace]);
      const placement = new LocalPlacement({ root });
      const operator = await startLocalOperator(apiserver, placement, namespace, identity);
      return new LocalOperatorEnvironment(apiserver, placement, operator, root);
    } catch (error) {
      await apiserver.close();
      rmSync(root, { recursive: true, force: true });
      throw error;
    }
  }

  async close(): Promise<void> {
    await this.operator.close();
    await this.apiserver.close();
    rmSync(this.root, { recursive: true, force: true });
  }
}

/** Installs the CRDs of crds/ the way a user does, and waits until the API server serves them. */
export async function installCrds(apiserver: TestApiserver): Promise<void> {
  await kubectlOk(apiserver, ['apply', '--server-side', '-f', 'crds/']);
  await kubectlOk(apiserver, ['wait', '--for=condition=Established', '--timeout=60s', 'crd/etcdclusters.etcd.robustness.io', 'crd/robustnessruns.etcd.robustness.io']);
}

/** Polls until `check` returns a value other than undefined, or fails with `describe()`'s last observation. */
export async function eventually<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined>, describe?: () => Promise<string>, intervalMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() >= deadline) break;
    await sleep(intervalMs);
  }
  assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}${describe ? `: ${await describe()}` : ''}`);
}

/** One sample of a Prometheus text exposition. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The samples of the exposition `text` named `name` (no escapes inside label values are expected). */
export function samples(text: string, name: string): Sample[] {
  const found: Sample[] = [];
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!match || match[1] !== name) continue;
    const labels: Record<string, string> = {};
    for (const pair of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="([^"]*)"/g)) labels[pair[1]!] = pair[2]!;
    found.push({ name, labels, value: Number(match[3]) });
  }
  return found;
}

export async function scrape(metricsUrl: string): Promise<string> {
  const response = await fetch(metricsUrl, { signal: AbortSignal.timeout(5000) });
  assert.equal(response.status, 200, `GET ${metricsUrl}`);
  return response.text();
}

/** controller_runtime_reconcile_total of a controller, summed over results, and how many samples there were. */
export async function reconcileTotal(metricsUrl: string, controller: string): Promise<{ total: number; samples: number }> {
  const found = samples(await scrape(metricsUrl), 'controller_runtime_reconcile_total').filter((s) => s.labels['controller'] === controller);
  return { total: found.reduce((sum, s) => sum + s.value, 0), samples: found.length };
}
