/**
 * Runner Pods: each execution of a RobustnessRun as a Job with one Pod (this project's image, the `runner`
 * command) in the operator's namespace, under the runner ServiceAccount the chart makes. The Job lives in
 * the operator's namespace, not the run's, so one ServiceAccount serves every watched namespace; it cannot
 * be owned by the run (no owner references across namespaces), so the operator deletes it with the run
 * and `ttlSecondsAfterFinished` removes finished ones. Labels name the run it executes.
 */
import { createHash } from 'node:crypto';
import { BatchV1Api, type KubeConfig, type V1Job, type V1Toleration } from '@kubernetes/client-node';
import { quantityPattern } from '../../api/index.ts';
import type { ResourceRequirements, RobustnessRunResource, RunnerPodSpec } from '../../domain/index.ts';
import { isConflict, isNotFound } from '../kube-api.ts';

/** How the operator makes runner Pods (operator flags --runner-*). */
export interface RunnerPodOptions {
  /** Where the Jobs go: the operator's namespace. */
  namespace: string;
  serviceAccount: string;
  image: string;
  /** The fault agent's image (members a fault recreates get it as a sidecar). */
  agentImage: string;
  /** Labels of every runner Pod (the chart's: its PodMonitor and the members' NetworkPolicy select them). */
  podLabels: Record<string, string>;
  /** Resources of a runner whose run does not say (spec.runner.resources). */
  resources?: ResourceRequirements;
  /** How long a finished Job stays for `kubectl logs` (default 1 h). */
  ttlSecondsAfterFinished?: number;
}

export const runnerLabelKeys = {
  component: 'app.kubernetes.io/component',
  runNamespace: 'etcd.robustness.io/run-namespace',
  run: 'etcd.robustness.io/run',
  runNumber: 'etcd.robustness.io/run-number',
} as const;

/** Ports the runner serves: /metrics (HTTPS, authenticated) and /healthz. */
export const runnerPorts = { metrics: 8443, health: 8081 } as const;

/** The runner has this long after SIGTERM to heal its faults, check what it recorded and store the report. */
export const runnerGracePeriodSeconds = 120;

/**
 * The Job's name: the run's name (shortened), a hash of namespace/name (runs of the same name in two
 * namespaces get two Jobs) and the run number; at most 63 characters (the job-name label's limit).
 */
export function runnerJobName(namespace: string, name: string, runNumber: number): string {
  const hash = createHash('sha256').update(`${namespace}/${name}`).digest('hex').slice(0, 8);
  const suffix = `-${hash}-${runNumber}`;
  // A DNS label (dots out): the Job's Pods take their hostnames from it.
  const head = name.replaceAll('.', '-').slice(0, 63 - suffix.length - 4).replace(/-+$/, '');
  return `run-${head}${suffix}`;
}

function tolerationsOf(runner: RunnerPodSpec | undefined): V1Toleration[] | undefined {
  return runner?.tolerations?.map((t) => ({ ...t }));
}

/** The Job that executes run `runNumber` of `resource` in one runner Pod, given up after `timeoutMs` plus a margin. */
export function runnerJob(resource: RobustnessRunResource, runNumber: number, timeoutMs: number, options: RunnerPodOptions): V1Job {
  const namespace = resource.metadata.namespace ?? 'default';
  const name = runnerJobName(namespace, resource.metadata.name, runNumber);
  const labels = {
    ...options.podLabels,
    [runnerLabelKeys.component]: 'runner',
    [runnerLabelKeys.runNamespace]: namespace,
    [runnerLabelKeys.run]: resource.metadata.name,
    [runnerLabelKeys.runNumber]: String(runNumber),
  };
  const runner = resource.spec.runner;
  const resources = runner?.resources ?? options.resources;
  const tolerations = tolerationsOf(runner);
  const field = (fieldPath: string): { valueFrom: { fieldRef: { fieldPath: string } } } => ({ valueFrom: { fieldRef: { fieldPath } } });
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name, namespace: options.namespace, labels },
    spec: {
      // A run is not retried: a second Pod would start a second run under the same number.
      backoffLimit: 0,
      activeDeadlineSeconds: Math.ceil(timeoutMs / 1000) + runnerGracePeriodSeconds + 60,
      ttlSecondsAfterFinished: options.ttlSecondsAfterFinished ?? 3600,
      template: {
        metadata: { labels, annotations: { 'kubectl.kubernetes.io/default-container': 'runner' } },
        spec: {
          restartPolicy: 'Never',
          serviceAccountName: options.serviceAccount,
          automountServiceAccountToken: true,
          terminationGracePeriodSeconds: runnerGracePeriodSeconds,
          securityContext: { runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, fsGroup: 65532, seccompProfile: { type: 'RuntimeDefault' } },
          ...(runner?.nodeSelector === undefined ? {} : { nodeSelector: { ...runner.nodeSelector } }),
          // Runs at once spread over the nodes they may use: each runner prefers a node without another.
          affinity: {
            podAntiAffinity: {
              preferredDuringSchedulingIgnoredDuringExecution: [
                { weight: 100, podAffinityTerm: { topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: { [runnerLabelKeys.component]: 'runner' } } } },
              ],
            },
          },
          ...(tolerations === undefined ? {} : { tolerations }),
          containers: [
            {
              name: 'runner',
              image: options.image,
              imagePullPolicy: 'IfNotPresent',
              args: [
                'runner',
                `--run=${namespace}/${resource.metadata.name}`,
                `--run-number=${runNumber}`,
                `--job=${name}`,
                `--agent-image=${options.agentImage}`,
                '--bind-address=0.0.0.0',
                `--metrics-port=${runnerPorts.metrics}`,
                `--health-port=${runnerPorts.health}`,
                // Two scrapes of the chart's PodMonitor (15 s) see the run's last values.
                '--linger=30s',
              ],
              env: [
                { name: 'POD_NAME', ...field('metadata.name') },
                { name: 'POD_NAMESPACE', ...field('metadata.namespace') },
                { name: 'POD_IP', ...field('status.podIP') },
              ],
              ports: [
                { name: 'https-metrics', containerPort: runnerPorts.metrics, protocol: 'TCP' },
                { name: 'http-health', containerPort: runnerPorts.health, protocol: 'TCP' },
              ],
              ...(resources === undefined ? {} : { resources: { ...resources } }),
              securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } },
              // The root filesystem is read-only: the run writes its history here before the report is stored.
              volumeMounts: [{ name: 'tmp', mountPath: '/tmp' }],
            },
          ],
          volumes: [{ name: 'tmp', emptyDir: {} }],
        },
      },
    },
  };
}

export class RunnerResourcesError extends Error {
  override name = 'RunnerResourcesError';
}

/** Resources written as JSON, {"requests": {...}, "limits": {...}}, each a map of quantities (a RunnerResourcesError says what is wrong). */
export function resourcesFromJson(text: string): ResourceRequirements {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new RunnerResourcesError(`not JSON: ${(error as Error).message}`);
  }
  const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);
  if (!isObject(parsed)) throw new RunnerResourcesError('must be a JSON object with requests and limits');
  const quantity = new RegExp(quantityPattern);
  const resources: ResourceRequirements = {};
  for (const [part, list] of Object.entries(parsed)) {
    if (part !== 'requests' && part !== 'limits') throw new RunnerResourcesError(`unknown field "${part}" (allowed: requests, limits)`);
    if (!isObject(list)) throw new RunnerResourcesError(`${part} must be an object of quantities`);
    const values: Record<string, string> = {};
    for (const [resource, value] of Object.entries(list)) {
      if (typeof value !== 'string' || !quantity.test(value)) throw new RunnerResourcesError(`${part}.${resource}: ${JSON.stringify(value)} is not a quantity (e.g. 250m, 1Gi)`);
      values[resource] = value;
    }
    resources[part] = values;
  }
  return resources;
}

/** A Job's end as its conditions say: undefined while it runs. */
export function jobEnd(job: V1Job): { succeeded: boolean; message: string } | undefined {
  for (const c of job.status?.conditions ?? []) {
    if (c.status !== 'True') continue;
    if (c.type === 'Complete') return { succeeded: true, message: 'completed' };
    if (c.type === 'Failed') return { succeeded: false, message: `${c.reason ?? 'Failed'}${c.message ? `: ${c.message}` : ''}` };
  }
  return undefined;
}

/** Creates, reads and deletes runner Jobs. */
export class RunnerJobs {
  readonly options: RunnerPodOptions;
  private readonly batch: BatchV1Api;

  private readonly cached: ((name: string) => V1Job | undefined) | undefined;

  /** `cached`: a Job informer's cache (the Jobs as JSON), asked before the API server. */
  constructor(kubeConfig: KubeConfig, options: RunnerPodOptions, cached?: (name: string) => V1Job | undefined) {
    this.options = options;
    this.batch = kubeConfig.makeApiClient(BatchV1Api);
    this.cached = cached;
  }

  /** Creates the Job; an existing one of that name (a create whose answer was lost) is kept. */
  async create(job: V1Job): Promise<void> {
    try {
      await this.batch.createNamespacedJob({ namespace: this.options.namespace, body: job });
    } catch (error) {
      if (!isConflict(error)) throw error;
    }
  }

  /** The Job: from the cache when it holds it, else from the API server (undefined: there is none). */
  async read(name: string): Promise<V1Job | undefined> {
    const cached = this.cached?.(name);
    if (cached !== undefined) return cached;
    try {
      return await this.batch.readNamespacedJob({ namespace: this.options.namespace, name });
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  /** Every runner Job of the run namespace/name (running or finished). */
  async jobsFor(namespace: string, name: string): Promise<V1Job[]> {
    const list = await this.batch.listNamespacedJob({ namespace: this.options.namespace, labelSelector: `${runnerLabelKeys.runNamespace}=${namespace},${runnerLabelKeys.run}=${name}` });
    return list.items;
  }

  /**
   * Deletes the Job: in the foreground while it runs (the Job stays until its Pod is gone: the runner gets
   * SIGTERM, heals and reports first), in the background once it ended (nothing to wait for).
   */
  async delete(name: string, running = true): Promise<void> {
    try {
      await this.batch.deleteNamespacedJob({ namespace: this.options.namespace, name, propagationPolicy: running ? 'Foreground' : 'Background' });
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
  }
}
