/**
 * The runner Pod's work (`etcd-robustness runner`): one execution of one RobustnessRun, the one the
 * operator marked Running with this run number and this Job. It drives the run with ./run-driver.ts, as
 * the operator's process does without runner Pods, and serves the run's metrics on /metrics meanwhile.
 * SIGTERM (the Job deleted with its run, the Pod evicted, its node drained) stops the run early: it heals
 * its faults, checks what was recorded, stores the report and writes the run's end before the Pod goes.
 */
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { KubeConfig } from '@kubernetes/client-node';
import type { EtcdCluster, RobustnessRunResource } from '../../domain/index.ts';
import { etcdClusterPlural, robustnessGroup, robustnessRunPlural } from '../../domain/index.ts';
import { logger } from '../../log.ts';
import { Registry, type RunAbort } from '../../run/index.ts';
import { CachingReviewer, EventRecorder, KubeReviewer, ProbeServer, type ServingCertificate } from '../kit/index.ts';
import { CustomResources } from '../kube-api.ts';
import { KubernetesPlacement } from '../placement/kubernetes.ts';
import { ConfigMapReportStore } from '../report-store/index.ts';
import { driveRun, RunStopper } from './run-driver.ts';
import { prepareRun, runOfResource } from './run-status.ts';

export interface RunnerOptions {
  kubeConfig: KubeConfig;
  namespace: string;
  name: string;
  runNumber: number;
  /** The Job this Pod belongs to (its name must be the run's status.runnerJob). */
  job: string | undefined;
  agentImage: string;
  /** This Pod's name (the Events' reportingInstance). */
  identity: string;
  host: string;
  metricsPort: number;
  healthPort: number;
  /** HTTPS with authentication (TokenReview, SubjectAccessReview) on /metrics; absent: plain HTTP (loopback). */
  tls?: ServingCertificate;
  /** Resolves when the Pod is asked to stop (SIGTERM). */
  stopRequested: Promise<unknown>;
  /** How long /metrics stays up after the run, so that a scrape sees its last values (default 0). */
  lingerMs?: number;
}

/** Why the runner did nothing, or how its run ended. */
export type RunnerOutcome = { kind: 'driven' } | { kind: 'skipped'; why: string };

export class RunnerStartError extends Error {
  override name = 'RunnerStartError';
}

/** Why this runner must not drive the run as its status stands now (another execution, or none). */
function notOurs(resource: RobustnessRunResource, options: RunnerOptions): string | undefined {
  const status = resource.status ?? {};
  if (resource.metadata.deletionTimestamp !== undefined) return 'the RobustnessRun is being deleted';
  if (status.phase !== 'Running') return `the run is ${status.phase ?? 'Pending'}, not Running`;
  if (status.runNumber !== options.runNumber) return `status is at run ${status.runNumber ?? 0}, not ${options.runNumber}`;
  if (options.job !== undefined && status.runnerJob !== options.job) return `status names runner Job ${status.runnerJob ?? '(none)'}, not ${options.job}`;
  return undefined;
}

/** The abort of a SIGTERM: the run's deletion when that is why, else the Pod's own stop. */
async function stopReason(runs: CustomResources<RobustnessRunResource>, options: RunnerOptions): Promise<RunAbort> {
  const resource = await runs.get(options.namespace, options.name).catch(() => undefined);
  if (resource === undefined || resource.metadata.deletionTimestamp !== undefined) return { reason: 'Stopped', message: 'the RobustnessRun was deleted during the run' };
  return { reason: 'RunnerStopped', message: 'its runner Pod was stopped during the run (SIGTERM: its Job deleted, the Pod evicted or its node drained)' };
}

export async function runInRunnerPod(options: RunnerOptions): Promise<RunnerOutcome> {
  const { kubeConfig, namespace, name } = options;
  const key = `${namespace}/${name}`;
  const runs = new CustomResources<RobustnessRunResource>(kubeConfig, robustnessRunPlural);
  const clusters = new CustomResources<EtcdCluster>(kubeConfig, etcdClusterPlural);
  const resource = await runs.get(namespace, name);
  if (resource === undefined) return { kind: 'skipped', why: `RobustnessRun ${key} does not exist` };
  const stale = notOurs(resource, options);
  if (stale !== undefined) return { kind: 'skipped', why: stale };
  const { run } = prepareRun(runOfResource(resource));
  const clusterNamespace = run.spec.clusterRef?.namespace ?? namespace;
  const clusterName = run.spec.clusterRef?.name;
  if (clusterName === undefined) throw new RunnerStartError(`RobustnessRun ${key}: spec.clusterRef is required`);
  const cluster = await clusters.get(clusterNamespace, clusterName);
  if (cluster === undefined) throw new RunnerStartError(`RobustnessRun ${key}: EtcdCluster ${clusterNamespace}/${clusterName} does not exist`);

  const registry = new Registry();
  const probes = await ProbeServer.start({
    host: options.host,
    metricsPort: options.metricsPort,
    healthPort: options.healthPort,
    registry,
    readiness: {},
    ...(options.tls === undefined ? {} : { secure: { tls: options.tls, reviewer: new CachingReviewer(new KubeReviewer(kubeConfig)) } }),
  });
  const stopper = new RunStopper();
  void options.stopRequested.then(async () => stopper.stop(await stopReason(runs, options)));
  const workDir = mkdtempSync(path.join(os.tmpdir(), `robustnessrun-${name}-`));
  try {
    logger.info(`RobustnessRun ${key}: run ${options.runNumber} starts in this runner Pod`, { cluster: `${clusterNamespace}/${clusterName}`, metrics: probes.metricsUrl });
    await driveRun(
      {
        runs,
        clusters,
        placement: new KubernetesPlacement({ kubeConfig, operatorImage: options.agentImage }),
        events: new EventRecorder({ kubeConfig, controller: `${robustnessGroup}/runner`, instance: options.identity }),
        reports: new ConfigMapReportStore({ kubeConfig }),
        registry,
        countsRuns: false,
      },
      { key, resource, run, cluster, runNumber: options.runNumber, startTime: resource.status?.startTime ?? new Date().toISOString(), workDir },
      stopper,
    );
    if ((options.lingerMs ?? 0) > 0) {
      logger.info(`RobustnessRun ${key}: run ${options.runNumber} done; serving its last metrics for ${options.lingerMs} ms`);
      await Promise.race([options.stopRequested, new Promise((resolve) => setTimeout(resolve, options.lingerMs))]);
    }
    return { kind: 'driven' };
  } finally {
    await probes.close();
  }
}
